"""SamPredictor on the tiny models: every transform is checked against what the graph computes.

The tiny decoder draws discs of known radii (in the 1024 frame) around the first
point and reports [number of points, sum of labels, sum of x, mean embedding] as
scores, so these tests see exactly what reached the decoder and where the masks
land after upsampling and cropping.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgesam import EdgeSam, ImageNotSetError, InvalidInputError, InvalidPromptError, SamPredictor
from edgesam import _transforms as transforms
from edgesam._postprocess import stability_scores
from edgesam._transforms import input_size_for, preprocess_image
from edgesam.errors import MaskInputUnavailableError
from tiny_models import RADII, expected_embedding


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def predictor(tiny_model: EdgeSam) -> SamPredictor:
    return SamPredictor(tiny_model)


def test_embedding_is_the_encoder_of_the_preprocessed_image(predictor: SamPredictor) -> None:
    image = random_image(300, 500)
    predictor.set_image(image)
    expected = expected_embedding(preprocess_image(image)[0])
    np.testing.assert_allclose(np.asarray(predictor.get_image_embedding()), expected, atol=1e-5)
    assert predictor.original_size == (300, 500)
    assert predictor.input_size == (614, 1024)


def test_one_predictor_through_images_of_changing_size(predictor: SamPredictor) -> None:
    # The predictor reuses its encoder input and clears only what the last image left
    # outside the new one: every embedding must still be that of a fresh input.
    sizes = [(300, 500), (500, 300), (37, 53), (37, 53), (900, 700)]
    for seed, (height, width) in enumerate(sizes):
        image = random_image(height, width, seed)
        predictor.set_image(image)
        expected = expected_embedding(preprocess_image(image)[0])
        np.testing.assert_allclose(np.asarray(predictor.get_image_embedding()), expected, atol=1e-5)


def test_a_preprocessing_failure_midway_leaves_no_stale_pixels(
    predictor: SamPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor.set_image(random_image(300, 500))

    def scribble_then_fail(rgb: object, channel: int, size: object, plane: np.ndarray) -> None:
        plane[...] = 9.0
        raise MemoryError("simulated")

    with monkeypatch.context() as patch:
        patch.setattr(transforms, "_channel_into", scribble_then_fail)
        with pytest.raises(MemoryError):
            predictor.set_image(random_image(1000, 1000))  # input_size (1024, 1024)
    image = random_image(300, 500, seed=1)
    predictor.set_image(image)
    expected = expected_embedding(preprocess_image(image)[0])
    np.testing.assert_allclose(np.asarray(predictor.get_image_embedding()), expected, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), [(300, 500), (500, 300), (37, 53), (1200, 1800)])
def test_point_reaches_decoder_in_1024_frame_with_padding_point(
    predictor: SamPredictor, height: int, width: int
) -> None:
    predictor.set_image(random_image(height, width))
    _new_h, new_w = input_size_for((height, width))
    x, y = width * 0.3, height * 0.6
    _, scores, _ = predictor.predict([[x, y]], [1], num_multimask_outputs=4)
    # scores[0] of the tiny decoder is the point count: ours + the padding point.
    assert scores[0] == 2
    # label sum: 1 (ours) + -1 (padding)
    assert scores[1] == 0
    # sum of x over points: ours scaled into the frame, padding x = 0
    assert scores[2] == pytest.approx(x * new_w / width, rel=1e-6)


def test_box_becomes_two_corner_points_and_no_padding(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(400, 800))
    _, scores, _ = predictor.predict(box=[100, 50, 300, 250], num_multimask_outputs=4)
    assert scores[0] == 2  # two corners, no padding point
    assert scores[1] == 2 + 3
    assert scores[2] == pytest.approx((100 + 300) * 1024 / 800)


def test_points_then_box(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(400, 800))
    _, scores, _ = predictor.predict(
        point_coords=[[10, 20], [30, 40]],
        point_labels=[1, 0],
        box=[100, 50, 300, 250],
        num_multimask_outputs=4,
    )
    assert scores[0] == 4
    assert scores[1] == 1 + 0 + 2 + 3
    assert scores[2] == pytest.approx((10 + 30 + 100 + 300) * 1024 / 800)
    masks, _, _ = predictor.predict(
        point_coords=[[10, 20], [30, 40]],
        point_labels=[1, 0],
        box=[100, 50, 300, 250],
        num_multimask_outputs=4,
    )
    # the disc is drawn around the first point, so the first point must be inside
    assert masks[:, 20, 10].all()


@pytest.mark.parametrize(("height", "width"), [(300, 500), (500, 300), (1200, 1800), (40, 1000)])
def test_masks_are_discs_at_the_click_in_original_pixels(
    predictor: SamPredictor, height: int, width: int
) -> None:
    predictor.set_image(random_image(height, width))
    x, y = int(width * 0.4), int(height * 0.5)
    masks, _, low_res = predictor.predict([[x, y]], [1], num_multimask_outputs=4)
    assert masks.shape == (4, height, width)
    assert masks.dtype == np.bool_
    assert low_res.shape == (4, 256, 256)
    scale = width / input_size_for((height, width))[1]  # original pixels per frame pixel
    for mask, radius in zip(masks, RADII, strict=True):
        assert mask[y, x]
        area = mask.sum()
        # the disc is clipped by the image border; compare with the clipped ideal disc
        yy, xx = np.mgrid[0:height, 0:width]
        ideal = ((xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2) <= (radius * scale) ** 2
        overlap = np.logical_and(mask, ideal).sum() / np.logical_or(mask, ideal).sum()
        assert overlap > 0.9, (radius, area, ideal.sum())


def test_padding_is_cropped_away(predictor: SamPredictor) -> None:
    # A click near the bottom edge of a wide image: the disc would extend into the
    # padded area of the 1024 frame; after cropping, the mask must still be centred.
    height, width = 200, 1000
    predictor.set_image(random_image(height, width))
    masks, _, _ = predictor.predict([[500, 190]], [1], num_multimask_outputs=1)
    rows = np.flatnonzero(masks[0].any(axis=1))
    cols = np.flatnonzero(masks[0].any(axis=0))
    radius = RADII[0] * width / 1024
    assert rows.max() == height - 1
    assert abs((cols.min() + cols.max()) / 2 - 500) <= 1.5
    assert abs(rows.min() - (190 - radius)) <= 2


def test_multimask_selection(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(512, 512))
    areas = {}
    for kwargs, count in (
        ({"multimask_output": False}, 1),
        ({"multimask_output": True}, 3),
        ({"num_multimask_outputs": 1}, 1),
        ({"num_multimask_outputs": 3}, 3),
        ({"num_multimask_outputs": 4}, 4),
    ):
        masks, scores, low_res = predictor.predict([[256, 256]], [1], **kwargs)
        assert masks.shape[0] == scores.shape[0] == low_res.shape[0] == count
        areas[tuple(kwargs.items())] = masks.sum(axis=(1, 2))
    all_four = areas[(("num_multimask_outputs", 4),)]
    # areas grow with the radii (60, 30, 90, 120): decoder order, not sorted
    assert np.argsort(all_four).tolist() == np.argsort(RADII).tolist()
    np.testing.assert_array_equal(areas[(("multimask_output", False),)], all_four[:1])
    np.testing.assert_array_equal(areas[(("multimask_output", True),)], all_four[1:])


def test_return_logits_and_threshold(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(300, 400))
    logits, _, _ = predictor.predict([[100, 100]], [1], return_logits=True)
    masks, _, _ = predictor.predict([[100, 100]], [1])
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(masks, logits > 0.0)
    # the disc logit is radius - distance (in frame pixels): at the click ~ radius
    assert logits[:, 100, 100] == pytest.approx(RADII[1:], abs=3.0)


def test_stability_scores_replace_decoder_scores(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(300, 400))
    _, scores, low_res = predictor.predict(
        [[100, 100]], [1], num_multimask_outputs=4, use_stability_score=True
    )
    # disc of radius r: stability = area(r - 1) / area(r + 1) ~ ((r-1)/(r+1))^2
    expected = ((RADII - 1) / (RADII + 1)) ** 2
    np.testing.assert_allclose(scores, expected, atol=0.02)
    np.testing.assert_allclose(scores, stability_scores(low_res), rtol=0, atol=0)


def test_predict_batch_keeps_batch_axis(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(300, 400))
    masks, scores, low_res = predictor.predict_batch(boxes=[[10, 10, 50, 50]])
    assert masks.shape == (1, 3, 300, 400)
    assert scores.shape == (1, 3)
    assert low_res.shape == (1, 3, 256, 256)
    masks, scores, _ = predictor.predict(box=np.array([[10, 10, 50, 50]]))
    assert masks.shape == (3, 300, 400)  # (1, 4) is one box, as in segment_anything


def test_batched_points_equal_single_calls(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(300, 400))
    coords = np.array([[[50, 60]], [[200, 100]], [[390, 290]]], dtype=np.float32)
    labels = np.ones((3, 1))
    masks, scores, low_res = predictor.predict(coords, labels, multimask_output=False)
    assert masks.shape == (3, 1, 300, 400)
    for index in range(3):
        single = predictor.predict(coords[index], labels[index], multimask_output=False)
        np.testing.assert_array_equal(masks[index], single[0])
        np.testing.assert_array_equal(scores[index], single[1])
        np.testing.assert_array_equal(low_res[index], single[2])


def test_predict_before_set_image(predictor: SamPredictor) -> None:
    with pytest.raises(ImageNotSetError, match="set_image"):
        predictor.predict([[1, 1]], [1])
    with pytest.raises(ImageNotSetError):
        predictor.get_image_embedding()
    assert isinstance(ImageNotSetError("x"), RuntimeError)


def test_reset_image_forgets_everything(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(30, 40))
    assert predictor.is_image_set
    predictor.reset_image()
    assert not predictor.is_image_set
    assert predictor.original_size is None
    assert predictor.input_size is None
    with pytest.raises(ImageNotSetError):
        predictor.predict([[1, 1]], [1])


def test_set_image_bgr_equals_rgb_reversed(predictor: SamPredictor) -> None:
    image = random_image(64, 96)
    predictor.set_image(image)
    rgb = np.asarray(predictor.get_image_embedding()).copy()
    predictor.set_image(np.ascontiguousarray(image[..., ::-1]), image_format="BGR")
    np.testing.assert_array_equal(np.asarray(predictor.get_image_embedding()), rgb)


@pytest.mark.parametrize("bad", [0, 2, 5, True, 3.5])
def test_num_multimask_outputs_validated(predictor: SamPredictor, bad: object) -> None:
    predictor.set_image(random_image(30, 40))
    with pytest.raises(InvalidInputError, match="num_multimask_outputs"):
        predictor.predict([[1, 1]], [1], num_multimask_outputs=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", ["multimask_output", "return_logits", "use_stability_score"])
@pytest.mark.parametrize("bad", ["False", "no", None, 2, 0.0])
def test_flags_must_be_booleans(predictor: SamPredictor, flag: str, bad: object) -> None:
    # A string such as "False" is truthy: taken as given it would flip the choice.
    predictor.set_image(random_image(30, 40))
    with pytest.raises(InvalidInputError, match=f"{flag} must be True or False"):
        predictor.predict([[1, 1]], [1], **{flag: bad})  # type: ignore[arg-type]


def test_flags_take_numpy_booleans_and_0_or_1(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(30, 40))
    masks, _, _ = predictor.predict([[1, 1]], [1], multimask_output=np.bool_(False))
    assert masks.shape == (1, 30, 40)
    logits, _, _ = predictor.predict([[1, 1]], [1], return_logits=1)
    assert logits.dtype == np.float32
    with pytest.raises(InvalidInputError, match="return_logits must be True or False"):
        predictor.upsample(np.zeros((256, 256), np.float32), return_logits="yes")  # type: ignore[arg-type]


def test_bad_prompt_is_package_error(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(30, 40))
    with pytest.raises(InvalidPromptError, match="point_labels"):
        predictor.predict([[1, 1]], [2])


def test_mask_input_without_means_is_clear_error(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(30, 40))
    with pytest.raises(MaskInputUnavailableError, match="checkpoint"):
        predictor.predict([[1, 1]], [1], mask_input=np.zeros((1, 256, 256), np.float32))


def test_native_mask_input_and_batch(tiny_full_model: EdgeSam) -> None:
    predictor = SamPredictor(tiny_full_model)
    assert tiny_full_model.native_mask_input
    assert tiny_full_model.batched_decoder
    predictor.set_image(random_image(256, 256))
    # A mask input that is +5000 everywhere makes every output all-true: proof it was used.
    mask = np.full((1, 256, 256), 5000.0, dtype=np.float32)
    masks, _, low_res = predictor.predict([[10, 10]], [1], mask_input=mask)
    assert masks.all()
    masks_without, _, low_res_without = predictor.predict([[10, 10]], [1])
    assert not masks_without.all()
    np.testing.assert_allclose(low_res - low_res_without, 5000.0, atol=1e-2)
    batch_masks, _batch_scores, _ = predictor.predict_batch(
        [[[10, 10]], [[200, 200]]], [[1], [1]], mask_input=np.concatenate([mask, -mask])[:, None]
    )
    assert batch_masks.shape == (2, 3, 256, 256)
    assert batch_masks[0].all()
    assert not batch_masks[1].any()


def test_models_and_predictor_repr(tiny_model: EdgeSam, tiny_full_model: EdgeSam) -> None:
    assert "mask_input=unavailable" in repr(tiny_model)
    assert "one prompt set per run" in repr(tiny_model)
    assert "mask_input=native" in repr(tiny_full_model)
    predictor = SamPredictor(tiny_model)
    assert "no image" in repr(predictor)
    assert predictor.providers == {
        "encoder": ["CPUExecutionProvider"],
        "decoder": ["CPUExecutionProvider"],
    }


def test_predictor_needs_a_model() -> None:
    with pytest.raises(InvalidInputError, match="EdgeSam"):
        SamPredictor("edge_sam_3x")  # type: ignore[arg-type]


def test_predict_low_res_equals_predict_without_upsampling(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(300, 500))
    masks, scores, low_res = predictor.predict([[120, 80]], [1], multimask_output=True)
    low_scores, low_logits = predictor.predict_low_res([[120, 80]], [1], multimask_output=True)
    np.testing.assert_array_equal(low_scores, scores)
    np.testing.assert_array_equal(low_logits, low_res)
    assert low_logits.shape == (3, 256, 256)
    np.testing.assert_array_equal(predictor.upsample(low_logits), masks)
    logits, _, _ = predictor.predict([[120, 80]], [1], return_logits=True)
    np.testing.assert_array_equal(predictor.upsample(low_logits, return_logits=True), logits)


def test_predict_low_res_batched_and_single_mask(predictor: SamPredictor) -> None:
    predictor.set_image(random_image(200, 200))
    boxes = np.array([[10, 10, 50, 60], [100, 100, 180, 190]])
    scores, logits = predictor.predict_low_res(box=boxes, multimask_output=False)
    assert scores.shape == (2, 1)
    assert logits.shape == (2, 1, 256, 256)
    masks, _, _ = predictor.predict_batch(boxes=boxes, multimask_output=False)
    np.testing.assert_array_equal(predictor.upsample(logits), masks)


def test_upsample_validates_its_input(predictor: SamPredictor) -> None:
    with pytest.raises(ImageNotSetError, match="set_image"):
        predictor.upsample(np.zeros((1, 256, 256), np.float32))
    predictor.set_image(random_image(64, 64))
    with pytest.raises(InvalidInputError, match="low_res_logits"):
        predictor.upsample(np.zeros((1, 128, 128), np.float32))
    with pytest.raises(InvalidInputError, match="low_res_logits"):
        predictor.upsample("not logits")
