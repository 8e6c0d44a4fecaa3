"""Post-processing: PyTorch-style bilinear resize matrices, upsampling, stability scores.

Hand values are derived in the comments from PyTorch's rule for
``align_corners=False``: output pixel ``i`` samples source position
``(i + 0.5) * in / out - 0.5``, clamped at 0, with linear weights between its two
neighbours. PyTorch computes that position in float32 for float32 tensors; the
torch comparisons (``F.interpolate`` itself, on float32) and the naive numpy
resize below both include that rounding, which moves logits by up to 2e-4 when
left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesam import _postprocess
from edgesam._postprocess import (
    bilinear_matrix,
    stability_scores,
    upsample_logits,
    upsampling_matrices,
)

# -- an independent numpy bilinear resize (gather + lerp, no matrices) ---------------------


def _torch_source_position(i: int, in_size: int, out_size: int) -> float:
    """Where output pixel ``i`` samples, rounded exactly as PyTorch rounds it for float32.

    PyTorch computes ``scale = float(in) / out`` in float32, then
    ``scale * (i + 0.5) - 0.5`` with one rounding to float32 (a fused multiply-add).
    The float64 product of two float32 numbers is exact, so rounding it once emulates
    that. Checked against ``torch.nn.functional.interpolate`` by the torch tests.
    """
    scale = float(np.float32(in_size) / np.float32(out_size))
    return float(np.float32(scale * (i + 0.5) - 0.5))


def _resize_axis(values: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    moved = np.moveaxis(values.astype(np.float64), axis, -1)
    in_size = moved.shape[-1]
    result = np.empty((*moved.shape[:-1], out_size), dtype=np.float64)
    for i in range(out_size):
        src = max(_torch_source_position(i, in_size, out_size), 0.0)
        low = min(int(np.floor(src)), in_size - 1)
        high = min(low + 1, in_size - 1)
        lam = float(np.float32(src - low))
        result[..., i] = (1.0 - lam) * moved[..., low] + lam * moved[..., high]
    return np.moveaxis(result, -1, axis)


def _naive_resize(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of the last two axes, as PyTorch does with align_corners=False."""
    return _resize_axis(_resize_axis(image.astype(np.float64), out_h, -2), out_w, -1)


def _naive_postprocess(
    low_res: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]
) -> np.ndarray:
    frame = _naive_resize(low_res, 1024, 1024)
    cropped = frame[..., : input_size[0], : input_size[1]]
    return _naive_resize(cropped, *original_size)


# -- bilinear_matrix: hand values ----------------------------------------------------------


def test_bilinear_matrix_upscale_2_to_4() -> None:
    # scale 0.5: sources -0.25 -> 0, 0.25, 0.75, 1.25 (past the last pixel: all weight on it)
    expected = np.array([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]])
    np.testing.assert_allclose(bilinear_matrix(2, 4), expected, rtol=0, atol=1e-6)


def test_bilinear_matrix_upscale_1_to_3_repeats_the_pixel() -> None:
    np.testing.assert_allclose(bilinear_matrix(1, 3), np.ones((3, 1)), rtol=0, atol=1e-6)


def test_bilinear_matrix_upscale_3_to_5() -> None:
    # scale 0.6: sources (i + 0.5) * 0.6 - 0.5 = -0.2 -> 0, 0.4, 1.0, 1.6, 2.2
    expected = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.6, 0.4, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.4, 0.6],
            [0.0, 0.0, 1.0],
        ]
    )
    np.testing.assert_allclose(bilinear_matrix(3, 5), expected, rtol=0, atol=1e-6)


def test_bilinear_matrix_downscale_4_to_2_does_not_antialias() -> None:
    # scale 2: sources 0.5 and 2.5: the mean of two neighbours, not of all four pixels
    expected = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
    np.testing.assert_allclose(bilinear_matrix(4, 2), expected, rtol=0, atol=1e-6)


def test_bilinear_matrix_downscale_3_to_2() -> None:
    # scale 1.5: sources 0.25 and 1.75
    expected = np.array([[0.75, 0.25, 0.0], [0.0, 0.25, 0.75]])
    np.testing.assert_allclose(bilinear_matrix(3, 2), expected, rtol=0, atol=1e-6)


def test_bilinear_matrix_downscale_5_to_1_takes_the_centre() -> None:
    # scale 5: source 0.5 * 5 - 0.5 = 2, exactly the middle pixel
    np.testing.assert_allclose(
        bilinear_matrix(5, 1), [[0.0, 0.0, 1.0, 0.0, 0.0]], rtol=0, atol=1e-6
    )


def test_bilinear_matrix_downscale_8_to_2_skips_pixels() -> None:
    # scale 4: sources 1.5 and 5.5; pixels 0, 3, 4 and 7 get no weight (no antialiasing)
    expected = np.zeros((2, 8))
    expected[0, 1:3] = 0.5
    expected[1, 5:7] = 0.5
    np.testing.assert_allclose(bilinear_matrix(8, 2), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [1, 2, 7, 256, 1024])
def test_bilinear_matrix_identity_when_sizes_match(size: int) -> None:
    np.testing.assert_allclose(bilinear_matrix(size, size), np.eye(size), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("in_size", "out_size"), [(256, 1024), (683, 1200), (715, 37), (9, 4)])
def test_bilinear_matrix_rows_are_convex_weights(in_size: int, out_size: int) -> None:
    matrix = bilinear_matrix(in_size, out_size)
    assert matrix.shape == (out_size, in_size)
    assert np.all(matrix >= 0.0)
    assert np.all(np.count_nonzero(matrix, axis=1) <= 2)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("in_size", "out_size"), [(2, 4), (3, 5), (4, 2), (8, 2), (9, 4)])
def test_bilinear_matrix_agrees_with_naive_resize(in_size: int, out_size: int) -> None:
    identity = np.eye(in_size)
    naive = _resize_axis(identity, out_size, axis=0)  # column j = the resize of e_j
    np.testing.assert_allclose(bilinear_matrix(in_size, out_size), naive, rtol=0, atol=1e-6)


# -- bilinear_matrix vs torch ---------------------------------------------------------------


def _torch_matrix(in_size: int, out_size: int) -> np.ndarray:
    """PyTorch's own (out, in) weights: resize the rows of an identity matrix.

    float32, as the logits are: PyTorch then computes source positions in float32
    too, and that rounding is part of what the reference pipeline did.
    """
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("torch.nn.functional")
    identity = torch.eye(in_size, dtype=torch.float32)[None, None]
    with torch.no_grad():
        resized = functional.interpolate(
            identity, size=(out_size, in_size), mode="bilinear", align_corners=False
        )
    return np.asarray(resized[0, 0].numpy(), dtype=np.float64)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("in_size", "out_size"),
    [
        (2, 4),
        (3, 5),
        (4, 2),
        (9, 4),
        (256, 1024),  # low-res logits -> 1024 frame
        (683, 1200),  # crop -> truck height
        (1024, 1800),  # crop -> truck width
        (684, 534),  # crop -> groceries height (down)
        (1024, 800),  # crop -> groceries width (down)
        (715, 37),  # crop -> tiny height (down)
        (1024, 53),  # crop -> tiny width (down)
        (768, 480),
    ],
)
def test_bilinear_matrix_equals_torch_interpolate(in_size: int, out_size: int) -> None:
    torch_matrix = _torch_matrix(in_size, out_size)
    assert np.max(np.abs(bilinear_matrix(in_size, out_size) - torch_matrix)) <= 1e-5


@pytest.mark.torch
@pytest.mark.parametrize(
    ("in_hw", "out_hw"), [((5, 7), (3, 11)), ((4, 4), (4, 4)), ((1, 3), (5, 2)), ((6, 2), (2, 6))]
)
def test_bilinear_matrices_act_separably_like_torch_2d(
    in_hw: tuple[int, int], out_hw: tuple[int, int]
) -> None:
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("torch.nn.functional")
    image = np.random.default_rng(5).normal(size=in_hw)
    with torch.no_grad():
        expected = functional.interpolate(
            torch.from_numpy(image)[None, None], size=out_hw, mode="bilinear", align_corners=False
        )[0, 0].numpy()
    rows = bilinear_matrix(in_hw[0], out_hw[0])
    cols = bilinear_matrix(in_hw[1], out_hw[1])
    assert np.max(np.abs(rows @ image @ cols.T - expected)) <= 1e-5


# -- upsample_logits -------------------------------------------------------------------------

_CASES = [
    ((37, 53), (715, 1024)),  # small image: the crop shrinks 715x1024 -> 37x53
    ((53, 37), (1024, 715)),  # the same, portrait
    ((480, 640), (768, 1024)),  # shrink by 1.6
    ((1200, 1800), (683, 1024)),  # large image: the crop grows 683x1024 -> 1200x1800
    ((2048, 100), (1024, 50)),  # growth by exactly 2
]


def _random_logits(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * 4.0).astype(np.float32)


@pytest.mark.torch
@pytest.mark.parametrize(("original_size", "input_size"), _CASES)
def test_upsample_logits_equals_torch_three_step_path(
    original_size: tuple[int, int], input_size: tuple[int, int]
) -> None:
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("torch.nn.functional")
    low_res = _random_logits((3, 256, 256), seed=original_size[0])
    with torch.no_grad():
        tensor = torch.from_numpy(low_res)[None]
        frame = functional.interpolate(tensor, (1024, 1024), mode="bilinear", align_corners=False)
        cropped = frame[..., : input_size[0], : input_size[1]]
        expected = functional.interpolate(
            cropped, original_size, mode="bilinear", align_corners=False
        )[0].numpy()
    result = upsample_logits(low_res, original_size, input_size)
    assert result.shape == (3, *original_size)
    assert result.dtype == np.float32
    # float32 arithmetic leaves a few 1e-6; a different resize rule leaves 1e-4 or more.
    assert np.max(np.abs(result - expected)) <= 2e-5


@pytest.mark.parametrize(("original_size", "input_size"), _CASES[:3])
def test_upsample_logits_equals_naive_numpy_three_step_path(
    original_size: tuple[int, int], input_size: tuple[int, int]
) -> None:
    low_res = _random_logits((2, 256, 256), seed=7)
    expected = _naive_postprocess(low_res, original_size, input_size)
    result = upsample_logits(low_res, original_size, input_size)
    assert result.shape == (2, *original_size)
    assert result.dtype == np.float32
    assert np.max(np.abs(result - expected)) <= 2e-5


def test_upsample_logits_keeps_leading_axes() -> None:
    low_res = _random_logits((2, 3, 256, 256), seed=3)
    result = upsample_logits(low_res, (37, 53), (715, 1024))
    assert result.shape == (2, 3, 37, 53)
    for b in range(2):
        for c in range(3):
            single = upsample_logits(low_res[b, c], (37, 53), (715, 1024))
            np.testing.assert_allclose(result[b, c], single, rtol=0, atol=1e-6)


def test_upsample_logits_of_constant_is_constant() -> None:
    low_res = np.full((1, 256, 256), -3.25, dtype=np.float32)
    result = upsample_logits(low_res, (480, 640), (768, 1024))
    np.testing.assert_allclose(result, -3.25, rtol=0, atol=1e-5)


def test_upsample_logits_crops_the_padding_away() -> None:
    # For (480, 640) -> (768, 1024) the image fills rows 0..767 of the 1024 frame, i.e.
    # low-res rows 0..191. Logits that are +10 there and -10 below must give an
    # all-positive mask: nothing of the padded rows may leak in.
    low_res = np.full((1, 256, 256), -10.0, dtype=np.float32)
    low_res[0, :192, :] = 10.0
    result = upsample_logits(low_res, (480, 640), (768, 1024))
    assert np.all(result[0, :-2] > 9.99)
    assert np.all(result > 0.0)


def test_upsampling_matrices_shapes_and_rows_sum_to_one() -> None:
    rows, cols = upsampling_matrices((1200, 1800), (683, 1024))
    assert rows.shape == (1200, 256)
    assert cols.shape == (1800, 256)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(cols.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("original_size", "input_size"), _CASES)
def test_upsample_logits_equals_the_dense_matrix_products(
    original_size: tuple[int, int], input_size: tuple[int, int]
) -> None:
    low_res = _random_logits((2, 256, 256), seed=11)
    rows, cols = upsampling_matrices(original_size, input_size)
    expected = rows.astype(np.float64) @ low_res.astype(np.float64) @ cols.T.astype(np.float64)
    result = upsample_logits(low_res, original_size, input_size)
    assert np.max(np.abs(result - expected)) <= 1e-5


def test_upsample_logits_of_an_empty_batch() -> None:
    result = upsample_logits(np.zeros((0, 256, 256), dtype=np.float32), (37, 53), (715, 1024))
    assert result.shape == (0, 37, 53)


@pytest.mark.parametrize("shape", [(1, 128, 128), (256,), (1, 256, 255)])
def test_upsample_logits_refuses_other_low_res_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="256"):
        upsample_logits(np.zeros(shape, dtype=np.float32), (37, 53), (715, 1024))


@pytest.mark.parametrize(("original_size", "input_size"), _CASES)
def test_upsample_masks_equal_thresholded_logits(
    original_size: tuple[int, int], input_size: tuple[int, int]
) -> None:
    # Four masks of a 1200x1800 image are processed in many row blocks: every block
    # boundary must give the same pixels as thresholding the full logits.
    low_res = _random_logits((4, 256, 256), seed=13)
    masks = _postprocess.upsample_masks(low_res, original_size, input_size)
    logits = upsample_logits(low_res, original_size, input_size)
    assert masks.dtype == np.bool_
    assert masks.shape == (4, *original_size)
    np.testing.assert_array_equal(masks, logits > 0.0)


def test_upsample_masks_threshold_and_leading_axes() -> None:
    low_res = _random_logits((2, 3, 256, 256), seed=17)
    masks = _postprocess.upsample_masks(low_res, (480, 640), (768, 1024), threshold=1.5)
    assert masks.shape == (2, 3, 480, 640)
    np.testing.assert_array_equal(masks, upsample_logits(low_res, (480, 640), (768, 1024)) > 1.5)


@pytest.mark.reference
def test_upsample_masks_reproduce_reference_masks(reference_dir: Path) -> None:
    manifest = json.loads((reference_dir / "vectors.json").read_text())
    vectors = np.load(reference_dir / "vectors.npz")
    for name, info in manifest["images"].items():
        original_size = tuple(info["original_size"])
        input_size = tuple(info["input_size"])
        for prompt in "abcde":
            low_res = vectors[f"{name}/{prompt}/low_res_logits"]
            reference = vectors[f"{name}/{prompt}/masks"]
            masks = _postprocess.upsample_masks(low_res, original_size, input_size)  # type: ignore[arg-type]
            logits = upsample_logits(low_res, original_size, input_size)  # type: ignore[arg-type]
            differ = masks != reference
            assert np.all(np.abs(logits[differ]) < 1e-5), (name, prompt)


@pytest.mark.reference
def test_upsample_logits_reproduces_reference_masks(reference_dir: Path) -> None:
    manifest = json.loads((reference_dir / "vectors.json").read_text())
    vectors = np.load(reference_dir / "vectors.npz")
    for name, info in manifest["images"].items():
        original_size = tuple(info["original_size"])
        input_size = tuple(info["input_size"])
        for prompt in "abcde":
            low_res = vectors[f"{name}/{prompt}/low_res_logits"]
            reference = vectors[f"{name}/{prompt}/masks"]
            logits = upsample_logits(low_res, original_size, input_size)  # type: ignore[arg-type]
            differ = (logits > 0.0) != reference
            # "Must match to the pixel": a pixel may differ only where its logit is within
            # float32 noise (a few 1e-6) of the threshold.
            assert np.all(np.abs(logits[differ]) < 1e-5), (name, prompt, logits[differ])


# -- stability_scores ------------------------------------------------------------------------


def test_stability_score_hand_counted() -> None:
    logits = np.array([[3.0, 1.0, 0.5], [-0.5, -1.0, -3.0]], dtype=np.float32)
    # > +1: {3.0} -> 1 (1.0 is not > 1); > -1: {3.0, 1.0, 0.5, -0.5} -> 4 (-1.0 is not > -1)
    score = stability_scores(logits)
    assert score.dtype == np.float32
    assert score.shape == ()
    assert float(score) == pytest.approx(0.25)


def test_stability_score_all_negative_mask_is_zero() -> None:
    score = stability_scores(np.full((4, 4), -5.0, dtype=np.float32))
    assert float(score) == 0.0
    assert np.isfinite(score)


def test_stability_score_all_confident_mask_is_one() -> None:
    assert float(stability_scores(np.full((3, 3), 2.0, dtype=np.float32))) == 1.0


def test_stability_score_custom_threshold_and_offset() -> None:
    logits = np.array([[3.0, 1.0, 0.5], [-0.5, -1.0, -3.0]], dtype=np.float32)
    # threshold 0.5, offset 0.5: > 1.0 -> {3.0}; > 0.0 -> {3.0, 1.0, 0.5}: 1 / 3
    score = stability_scores(logits, threshold=0.5, offset=0.5)
    assert float(score) == pytest.approx(1.0 / 3.0, abs=1e-7)


def test_stability_scores_with_batch_axes() -> None:
    masks = np.full((2, 3, 4, 4), -5.0, dtype=np.float32)
    masks[0, 0] = 5.0  # 16 / 16 = 1
    masks[0, 1, :2] = 5.0  # > 1: 8; > -1: 8 -> 1
    masks[0, 1, 2:3] = 0.0  # > -1 gains 4 -> 8 / 12
    masks[1, 2, 0, 0] = 2.0  # 1 / 1
    masks[1, 2, 0, 1] = 0.5  # > -1 gains 1 -> 1 / 2
    scores = stability_scores(masks)
    assert scores.shape == (2, 3)
    assert scores.dtype == np.float32
    expected = np.array([[1.0, 8.0 / 12.0, 0.0], [0.0, 0.0, 0.5]])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-7)


@pytest.mark.reference
def test_stability_scores_match_reference(reference_dir: Path) -> None:
    vectors = np.load(reference_dir / "vectors.npz")
    keys = [key for key in vectors.files if key.endswith("/stability_scores")]
    assert keys
    for key in keys:
        low_res = vectors[key.replace("stability_scores", "low_res_logits")]
        np.testing.assert_allclose(stability_scores(low_res), vectors[key], rtol=0, atol=1e-6)
