"""ResizeLongestSide: sizes, the encoder input, and coordinates in the 1024 frame.

Expected values are worked out by hand in the comments, or come from the
authors' reference pipeline (``vectors.npz``), never from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgesam import InvalidImageError
from edgesam._transforms import (
    IMAGE_SIZE,
    apply_coords,
    input_size_for,
    preprocess_image,
)

MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])


def _denormalise(planes: np.ndarray) -> np.ndarray:
    """Back from the normalised (3, h, w) planes to 0..255 values, in float64."""
    return planes.astype(np.float64) * STD[:, None, None] + MEAN[:, None, None]


# -- input_size_for ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        # 1200 * 1024 / 1800 = 682.67 -> 683
        ((1200, 1800), (683, 1024)),
        # 534 * 1024 / 800 = 683.52 -> 684
        ((534, 800), (684, 1024)),
        # 37 * 1024 / 53 = 714.87 -> 715
        ((37, 53), (715, 1024)),
        # 480 * 1024 / 640 = 768 exactly
        ((480, 640), (768, 1024)),
        # portrait: 1200 * 1024 / 1800 = 682.67 -> 683 on the width
        ((1800, 1200), (1024, 683)),
        # square, already at size, upscaled and downscaled
        ((1024, 1024), (1024, 1024)),
        ((1, 1), (1024, 1024)),
        ((3000, 3000), (1024, 1024)),
        # long side already 1024: unchanged
        ((683, 1024), (683, 1024)),
        # 20 * 1024 / 10000 = 2.048 -> 2
        ((10000, 20), (1024, 2)),
        ((20, 10000), (2, 1024)),
        # 1 * 1024 / 2 = 512
        ((1, 2), (512, 1024)),
        ((2, 1), (1024, 512)),
    ],
)
def test_input_size_for_hand_computed(original: tuple[int, int], expected: tuple[int, int]) -> None:
    assert input_size_for(original) == expected


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        # Exact halves round up (int(x + 0.5)), not to even as round() would:
        # 1 * 1024 / 2048 = 0.5 -> 1; round(0.5) would give 0
        ((1, 2048), (1, 1024)),
        # 5 * 1024 / 2048 = 2.5 -> 3; round(2.5) would give 2
        ((5, 2048), (3, 1024)),
        # 2047 * 1024 / 2048 = 1023.5 -> 1024
        ((2047, 2048), (1024, 1024)),
        # 683 * 1024 / 2048 = 341.5 -> 342 (portrait too)
        ((2048, 683), (1024, 342)),
        # 3 * 1024 / 6144 = 0.5 -> 1; 9 * 1024 / 6144 = 1.5 -> 2
        ((3, 6144), (1, 1024)),
        ((6144, 9), (1024, 2)),
    ],
)
def test_input_size_for_rounds_exact_halves_up(
    original: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert input_size_for(original) == expected


def test_input_size_for_returns_python_ints() -> None:
    new_h, new_w = input_size_for((np.int64(1200), np.int64(1800)))  # type: ignore[arg-type]
    assert (new_h, new_w) == (683, 1024)
    assert type(new_h) is int
    assert type(new_w) is int


@pytest.mark.reference
def test_input_size_for_matches_reference_manifest(reference_dir: Path) -> None:
    manifest = json.loads((reference_dir / "vectors.json").read_text())
    assert manifest["images"], "the manifest lists no images"
    for name, info in manifest["images"].items():
        original = tuple(info["original_size"])
        assert input_size_for(original) == tuple(info["input_size"]), name  # type: ignore[arg-type]


# -- preprocess_image ---------------------------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize("name", ["truck", "groceries", "synthetic", "tiny"])
def test_preprocess_image_matches_reference_statistics(reference_dir: Path, name: str) -> None:
    manifest = json.loads((reference_dir / "vectors.json").read_text())
    info = manifest["images"][name]
    with Image.open(reference_dir / info["file"]) as opened:
        rgb = np.asarray(opened.convert("RGB"), dtype=np.uint8)
    vectors = np.load(reference_dir / "vectors.npz")

    image_input, input_size = preprocess_image(rgb)

    assert image_input.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert image_input.dtype == np.float32
    assert input_size == tuple(info["input_size"])
    planes = image_input[0].astype(np.float64)
    np.testing.assert_allclose(
        planes.mean(axis=(1, 2)), vectors[f"{name}/input_channel_mean"], rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        planes.std(axis=(1, 2)), vectors[f"{name}/input_channel_std"], rtol=0, atol=1e-5
    )
    rows, cols = vectors[f"{name}/input_samples_yx"].T
    np.testing.assert_allclose(
        image_input[0][:, rows, cols].T, vectors[f"{name}/input_samples"], rtol=0, atol=1e-5
    )


def test_constant_image_normalises_to_value_minus_mean_over_std() -> None:
    # 480x640 -> 768x1024 (upscale); a constant image stays constant through bilinear.
    rgb = np.empty((480, 640, 3), dtype=np.uint8)
    rgb[...] = (200, 100, 0)
    image_input, input_size = preprocess_image(rgb)
    assert input_size == (768, 1024)
    expected = (np.array([200.0, 100.0, 0.0]) - MEAN) / STD
    inside = image_input[0, :, :768, :1024]
    for channel in range(3):
        np.testing.assert_allclose(inside[channel], expected[channel], rtol=0, atol=1e-6)
    # The padding below the image is exactly zero, after normalisation.
    assert np.all(image_input[0, :, 768:, :] == 0.0)


def test_padding_is_exactly_zero_for_portrait_image() -> None:
    rgb = np.full((1800, 1200, 3), 255, dtype=np.uint8)
    image_input, input_size = preprocess_image(rgb)
    assert input_size == (1024, 683)
    assert np.all(image_input[0, :, :, 683:] == 0.0)
    # 255 normalised is positive in every channel, so the image area is not zero.
    expected = (255.0 - MEAN) / STD
    for channel in range(3):
        np.testing.assert_allclose(image_input[0, channel, :, :683], expected[channel], atol=1e-6)


def test_image_already_at_size_is_only_normalised() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(512, 1024, 3), dtype=np.uint8)
    image_input, input_size = preprocess_image(rgb)
    assert input_size == (512, 1024)
    expected = (rgb.transpose(2, 0, 1).astype(np.float64) - MEAN[:, None, None]) / STD[
        :, None, None
    ]
    np.testing.assert_allclose(image_input[0, :, :512, :], expected, rtol=0, atol=1e-5)
    assert np.all(image_input[0, :, 512:, :] == 0.0)


def test_downscale_uses_antialiased_bilinear() -> None:
    # Vertical stripes of period 4 (0, 0, 255, 255, ...) on a 1024x2048 image, shrunk 2x.
    # PIL's bilinear filter widens its triangle to 2 source pixels each side when it
    # shrinks by 2: output column j is centred on source position 2j + 1 (in pixel-edge
    # units), weights 1/8, 3/8, 3/8, 1/8 on columns 2j-1 .. 2j+2. Even j sees
    # (255, 0, 0, 255) -> 63.75 -> 64; odd j sees (0, 255, 255, 0) -> 191.25 -> 191.
    # A resize without antialiasing would give pure 0 / 255 stripes instead.
    columns = np.arange(2048)
    row = np.where(columns % 4 >= 2, 255, 0).astype(np.uint8)
    rgb = np.ascontiguousarray(np.broadcast_to(row[None, :, None], (1024, 2048, 3)))
    image_input, input_size = preprocess_image(rgb)
    assert input_size == (512, 1024)
    values = _denormalise(image_input[0, :, :512, :])
    interior = values[:, :, 1:-1]
    expected_row = np.where(np.arange(1, 1023) % 2 == 0, 64.0, 191.0)
    np.testing.assert_allclose(interior, np.broadcast_to(expected_row, interior.shape), atol=1e-4)


def test_output_is_float32_and_fresh_buffer_by_default() -> None:
    rgb = np.zeros((10, 20, 3), dtype=np.uint8)
    first, _ = preprocess_image(rgb)
    second, _ = preprocess_image(rgb)
    assert first.dtype == np.float32
    assert second.dtype == np.float32
    assert first.shape == (1, 3, 1024, 1024)
    assert not np.shares_memory(first, second)


def test_buffer_reuse_leaves_no_stale_pixels() -> None:
    buffer = np.zeros((1, 3, 1024, 1024), dtype=np.float32)
    # A square image fills the whole 1024x1024 frame with non-zero values ...
    big = np.full((100, 100, 3), 255, dtype=np.uint8)
    filled, size = preprocess_image(big, out=buffer)
    assert filled is buffer
    assert size == (1024, 1024)
    assert np.all(buffer != 0.0)
    # ... then a small portrait image must leave zeros everywhere outside itself.
    small = np.full((60, 30, 3), 255, dtype=np.uint8)
    image_input, input_size = preprocess_image(small, out=buffer)
    assert image_input is buffer
    assert input_size == (1024, 512)
    assert np.all(buffer[0, :, :, 512:] == 0.0)
    expected = (255.0 - MEAN) / STD
    for channel in range(3):
        np.testing.assert_allclose(buffer[0, channel, :, :512], expected[channel], atol=1e-6)


def test_buffer_reuse_gives_same_result_as_fresh_buffer() -> None:
    rng = np.random.default_rng(1)
    buffer = np.full((1, 3, 1024, 1024), 7.0, dtype=np.float32)  # garbage from before
    rgb = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    reused, _ = preprocess_image(rgb, out=buffer)
    fresh, _ = preprocess_image(rgb)
    np.testing.assert_array_equal(reused, fresh)


def test_preprocess_does_not_modify_the_image() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, size=(1024, 700, 3), dtype=np.uint8)
    before = rgb.copy()
    preprocess_image(rgb)
    np.testing.assert_array_equal(rgb, before)


def _one_pillow_call(rgb: np.ndarray) -> np.ndarray:
    """The reference definition: one Pillow bilinear resize, normalised in float32."""
    new_h, new_w = input_size_for(rgb.shape[:2])
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR))
    planes = np.zeros((1, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for channel in range(3):
        plane = np.subtract(resized[:, :, channel], np.float32(MEAN[channel]), dtype=np.float32)
        planes[0, channel, :new_h, :new_w] = plane / np.float32(STD[channel])
    return planes


@pytest.mark.parametrize(
    "shape",
    [
        (1200, 1800),  # landscape photo
        (1800, 1200),  # portrait photo
        (1800, 2700),
        (2400, 1080),  # over twice as tall as wide: Pillow 13 goes vertical first
        (5000, 300),
        (10000, 20),
        (20, 10000),
        (37, 53),  # enlarged
        (600, 1024),  # already 1024 on the long side: both sides kept, no resize
        (1024, 600),  # the same, portrait
        (50, 1030),  # 50 * 1024 / 1030 = 49.7 -> 50: height kept, horizontal pass only
        (1030, 50),  # width kept: vertical pass only
        (1, 1500),  # 1 * 1024 / 1500 = 0.68 -> 1: height kept, horizontal pass only
        (1500, 1),  # width kept: vertical pass only
        (1023, 1025),
        (2, 1),
    ],
)
def test_preprocess_equals_one_pillow_call_normalised_in_float32(shape: tuple[int, int]) -> None:
    # The reference pipeline's resize, bit for bit, whatever Pillow's pass order.
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    image_input, _ = preprocess_image(rgb)
    np.testing.assert_array_equal(image_input, _one_pillow_call(rgb))


def test_one_buffer_serves_images_of_any_size_in_turn() -> None:
    # As in a labelling session: the padded input is reused for images larger and
    # smaller than the previous one, landscape and portrait (stale values must not show).
    buffer = np.full((1, 3, IMAGE_SIZE, IMAGE_SIZE), 7.0, dtype=np.float32)
    shapes = [(1200, 1800), (1800, 1200), (300, 500), (300, 500), (2000, 1000), (37, 53)]
    for index, shape in enumerate(shapes):
        rgb = np.random.default_rng(index).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
        image_input, _ = preprocess_image(rgb, out=buffer)
        assert image_input is buffer
        np.testing.assert_array_equal(image_input, _one_pillow_call(rgb))


@pytest.mark.parametrize("shape", [(10000, 20, 3), (20, 10000, 3), (1, 2, 3), (2, 1, 3)])
def test_extreme_but_valid_aspect_ratios(shape: tuple[int, int, int]) -> None:
    rgb = np.full(shape, 128, dtype=np.uint8)
    image_input, input_size = preprocess_image(rgb)
    new_h, new_w = input_size
    assert input_size == input_size_for(shape[:2])
    assert max(input_size) == 1024
    assert min(input_size) >= 1
    expected = (128.0 - MEAN) / STD
    for channel in range(3):
        np.testing.assert_allclose(
            image_input[0, channel, :new_h, :new_w], expected[channel], atol=1e-6
        )
    assert np.all(image_input[0, :, new_h:, :] == 0.0)
    assert np.all(image_input[0, :, :, new_w:] == 0.0)


@pytest.mark.parametrize("shape", [(1, 3000, 3), (3000, 1, 3), (1, 2049, 3)])
def test_too_elongated_image_is_refused(shape: tuple[int, int, int]) -> None:
    # 1 * 1024 / 2049 = 0.49976 -> int(0.99976) = 0 pixels on the short side.
    rgb = np.zeros(shape, dtype=np.uint8)
    with pytest.raises(InvalidImageError, match="elongated"):
        preprocess_image(rgb)


# -- apply_coords ---------------------------------------------------------------------------


def test_apply_coords_landscape() -> None:
    # (1200, 1800) -> (683, 1024): x * 1024 / 1800, y * 683 / 1200
    coords = np.array([[900.0, 600.0], [0.0, 0.0], [1800.0, 1200.0], [180.0, 120.0]])
    result = apply_coords(coords, (1200, 1800), (683, 1024))
    expected = np.array([[512.0, 341.5], [0.0, 0.0], [1024.0, 683.0], [102.4, 68.3]])
    assert result.dtype == np.float32
    assert result.shape == (4, 2)
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_apply_coords_portrait() -> None:
    # (1800, 1200) -> (1024, 683): x * 683 / 1200, y * 1024 / 1800
    coords = np.array([[600.0, 900.0], [1200.0, 1800.0], [120.0, 180.0]], dtype=np.float32)
    result = apply_coords(coords, (1800, 1200), (1024, 683))
    expected = np.array([[341.5, 512.0], [683.0, 1024.0], [68.3, 102.4]])
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_apply_coords_upscale_and_batched_shape() -> None:
    # (37, 53) -> (715, 1024): x * 1024 / 53, y * 715 / 37
    coords = np.array([[[53.0, 37.0]], [[26.5, 18.5]]])  # (B=2, N=1, 2)
    result = apply_coords(coords, (37, 53), (715, 1024))
    assert result.shape == (2, 1, 2)
    np.testing.assert_allclose(result, [[[1024.0, 715.0]], [[512.0, 357.5]]], rtol=1e-6)


def test_apply_coords_accepts_integers_and_leaves_input_alone() -> None:
    coords = np.array([[10, 20]], dtype=np.int64)
    result = apply_coords(coords, (480, 640), (768, 1024))  # scale 1.6 both ways
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [[16.0, 32.0]], rtol=1e-6)
    floats = np.array([[10.0, 20.0]], dtype=np.float32)
    apply_coords(floats, (480, 640), (768, 1024))
    np.testing.assert_array_equal(floats, [[10.0, 20.0]])


@pytest.mark.parametrize(
    ("original_size", "input_size"),
    [((1200, 1800), (683, 1024)), ((1800, 1200), (1024, 683)), ((37, 53), (715, 1024))],
)
def test_apply_coords_scales_in_float64_like_segment_anything(
    original_size: tuple[int, int], input_size: tuple[int, int]
) -> None:
    # ResizeLongestSide.apply_coords: coords.astype(float) * (new_w / old_w), then the
    # predictor's torch.as_tensor(..., dtype=torch.float): one rounding to float32.
    rng = np.random.default_rng(0)
    height, width = original_size
    coords = rng.uniform(0, 1, size=(500, 2)) * [width, height]
    coords[:250] = np.round(coords[:250])  # whole pixels, and fractional ones
    expected = coords.copy()
    expected[:, 0] = expected[:, 0] * (input_size[1] / width)
    expected[:, 1] = expected[:, 1] * (input_size[0] / height)
    expected = expected.astype(np.float32)
    np.testing.assert_array_equal(apply_coords(coords, original_size, input_size), expected)
    # The check has teeth: rounding to float32 before scaling lands elsewhere.
    scale = np.array([input_size[1] / width, input_size[0] / height], dtype=np.float32)
    assert np.any(coords.astype(np.float32) * scale != expected)
