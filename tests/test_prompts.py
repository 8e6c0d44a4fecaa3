"""Prompt validation (every refusal names its argument) and the decoder's point encoding."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgesam import InvalidInputError, InvalidPromptError
from edgesam._prompts import (
    LABEL_BOX_BOTTOM_RIGHT,
    LABEL_BOX_TOP_LEFT,
    LABEL_PADDING,
    PromptBatch,
    encode_prompts,
    validate_prompts,
)

MASK = np.zeros((1, 256, 256), dtype=np.float32)


def _refused(match: str, **prompts: object) -> InvalidPromptError:
    with pytest.raises(InvalidPromptError, match=match) as info:
        validate_prompts(**prompts)  # type: ignore[arg-type]
    return info.value


def test_invalid_prompt_error_is_a_value_error() -> None:
    error = _refused("prompt")
    assert isinstance(error, ValueError)
    assert isinstance(error, InvalidInputError)


# -- refusals ------------------------------------------------------------------------------


def test_no_prompt_at_all() -> None:
    _refused("needs a prompt")


def test_mask_input_alone_is_not_a_prompt() -> None:
    _refused("mask_input alone", mask_input=MASK)


def test_points_without_labels() -> None:
    _refused("point_coords needs point_labels", point_coords=[[10, 20]])


def test_labels_without_points() -> None:
    _refused("point_labels was given without point_coords", point_labels=[1])


@pytest.mark.parametrize(
    "coords",
    [
        [10, 20, 30],  # (3,)
        [[10, 20, 30]],  # (1, 3)
        [[[10, 20, 30]]],  # (1, 1, 3)
        np.zeros((0, 2)),  # no points
        np.zeros((1, 0, 2)),  # a batch of no points
        np.zeros((1, 1, 1, 2)),  # 4-D
        [],  # empty list
        5.0,  # a scalar
    ],
)
def test_point_coords_of_wrong_shape(coords: object) -> None:
    error = _refused("point_coords must have shape", point_coords=coords, point_labels=[1])
    assert "(N, 2)" in str(error)


@pytest.mark.parametrize(
    ("coords", "labels"),
    [
        ([[10, 20], [30, 40]], [1, 0, 1]),  # 2 points, 3 labels
        ([[10, 20], [30, 40]], [1]),  # 2 points, 1 label
        ([[10, 20]], [[1, 0]]),  # 1 point, labels (1, 2)
        (np.zeros((2, 3, 2)), np.ones((2, 2))),  # batched, labels short
        (np.zeros((2, 3, 2)), np.ones((3,))),  # batched, labels not batched
        ([[10, 20]], np.ones((1, 1, 1))),  # labels 3-D
    ],
)
def test_point_labels_count_mismatch(coords: object, labels: object) -> None:
    _refused("point_labels must have one entry per point", point_coords=coords, point_labels=labels)


@pytest.mark.parametrize("label", [-2, 0.5, 4])
def test_point_labels_other_than_0_1_and_padding(label: float) -> None:
    error = _refused("point_labels must be 1", point_coords=[[1, 2]], point_labels=[label])
    assert repr(float(label)) in str(error)


def test_padding_points_even_out_batched_sets() -> None:
    # segment_anything's convention: -1 marks a point the decoder ignores
    batch = validate_prompts(
        point_coords=[[[10, 20], [30, 40]], [[50, 60], [0, 0]]], point_labels=[[1, 0], [1, -1]]
    )
    assert batch.point_labels is not None
    np.testing.assert_array_equal(batch.point_labels, [[1, 0], [1, -1]])
    encoded = encode_prompts(batch, (1200, 1800), (683, 1024))
    np.testing.assert_array_equal(encoded.point_labels, [[1, 0, -1], [1, -1, -1]])


def test_a_set_of_padding_points_alone_is_not_a_prompt() -> None:
    _refused(
        "prompt set 1 has only padding points",
        point_coords=[[[10, 20]], [[0, 0]]],
        point_labels=[[1], [-1]],
    )
    # with a box, padding points are harmless
    batch = validate_prompts(point_coords=[[0, 0]], point_labels=[-1], box=[1, 2, 3, 4])
    assert batch.size == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad: float) -> None:
    _refused("point_coords must be finite", point_coords=[[bad, 2.0]], point_labels=[1])
    _refused("point_labels must be finite", point_coords=[[1.0, 2.0]], point_labels=[bad])
    _refused("box must be finite", box=[0.0, 0.0, bad, 5.0])
    mask = MASK.copy()
    mask[0, 3, 4] = bad
    _refused("mask_input must be finite", box=[0, 0, 5, 5], mask_input=mask)


@pytest.mark.parametrize("value", [3e38, -2e6])
def test_mask_input_beyond_any_logit_is_refused(value: float) -> None:
    mask = MASK.copy()
    mask[0, 7, 9] = value
    _refused("mask_input must be low-resolution logits", box=[0, 0, 5, 5], mask_input=mask)
    mask[0, 7, 9] = 999_999.0
    assert validate_prompts(box=[0, 0, 5, 5], mask_input=mask).mask_input is not None


def test_coordinates_too_large_for_float32_are_refused() -> None:
    _refused("point_coords must be finite", point_coords=[[1e300, 2.0]], point_labels=[1])


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("point_coords", "10,20"),
        ("point_coords", [["10", "20"]]),
        ("point_coords", [[True, False]]),
        ("point_coords", [[1 + 2j, 3]]),
        ("point_labels", [True]),
        ("point_labels", "1"),
        ("box", "0 0 10 10"),
        ("box", [True, False, True, True]),
        ("mask_input", np.zeros((1, 256, 256), dtype=bool)),
    ],
)
def test_non_numeric_values(argument: str, value: object) -> None:
    prompts: dict[str, object] = {"point_coords": [[1, 2]], "point_labels": [1]}
    prompts[argument] = value
    error = _refused(f"{argument} must hold integers or floats", **prompts)
    assert "dtype" in str(error)


@pytest.mark.parametrize("argument", ["point_coords", "box"])
def test_ragged_lists(argument: str) -> None:
    ragged = [[1, 2], [3]] if argument == "point_coords" else [[0, 0, 5, 5], [1, 1]]
    prompts: dict[str, object] = {argument: ragged}
    if argument == "point_coords":
        prompts["point_labels"] = [1, 1]
    _refused(f"^{argument} must be a numeric array", **prompts)


def test_ragged_object_array_gets_a_hint() -> None:
    ragged = np.array([[1, 2], [3]], dtype=object)
    _refused(re.escape("ragged nested lists?"), point_coords=ragged, point_labels=[1, 1])


@pytest.mark.parametrize(
    "box",
    [
        [10, 10, 5, 20],  # x1 < x0
        [10, 10, 20, 5],  # y1 < y0
        [[0, 0, 5, 5], [10, 10, 5, 20]],  # the second of a batch
    ],
)
def test_inverted_box(box: object) -> None:
    error = _refused("box must be XYXY with x1 >= x0 and y1 >= y0", box=box)
    assert "[x, y, x + w, y + h]" in str(error)


def test_inverted_box_message_shows_the_offending_box() -> None:
    error = _refused("box", box=[[0, 0, 5, 5], [10, 10, 5, 20]])
    assert "[10.0, 10.0, 5.0, 20.0]" in str(error)


@pytest.mark.parametrize(
    "box",
    [
        [0, 0, 10],  # (3,)
        [[0, 0, 1], [10, 10, 1]],  # (2, 3)
        [[[0, 0, 10, 10]]],  # (1, 1, 4)
        np.zeros((0, 4)),  # no boxes
        [0, 0, 10, 10, 20],  # (5,)
        7,  # scalar
    ],
)
def test_box_of_wrong_shape(box: object) -> None:
    _refused(re.escape("box must have shape (4,) or (B, 4)"), box=box)


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((256, 256)),
        np.zeros((1, 1, 64, 64)),
        np.zeros((2, 256, 256)),
        np.zeros((1, 256, 128)),
        np.zeros((0, 1, 256, 256)),
        np.zeros((1, 2, 256, 256)),
        np.zeros((1, 1, 1, 256, 256)),
    ],
)
def test_mask_input_of_wrong_shape(mask: np.ndarray) -> None:
    error = _refused("mask_input must be low-resolution logits", box=[0, 0, 1, 1], mask_input=mask)
    assert str(mask.shape) in str(error)


@pytest.mark.parametrize(
    ("prompts", "detail"),
    [
        (
            {
                "point_coords": np.zeros((2, 1, 2)),
                "point_labels": np.ones((2, 1)),
                "box": np.tile([0, 0, 5, 5], (3, 1)),
            },
            "point_coords: 2, box: 3",
        ),
        (
            {"box": np.tile([0, 0, 5, 5], (2, 1)), "mask_input": np.zeros((3, 1, 256, 256))},
            "box: 2, mask_input: 3",
        ),
        (
            {"point_coords": [[1, 2]], "point_labels": [1], "box": np.tile([0, 0, 5, 5], (2, 1))},
            "point_coords: 1, box: 2",
        ),
    ],
)
def test_batch_sizes_must_agree(prompts: dict[str, object], detail: str) -> None:
    _refused(f"batch size B: got {detail}", **prompts)


# -- accepted forms ------------------------------------------------------------------------


def _check_float32(batch: PromptBatch) -> None:
    """Coordinates stay float64 until they are scaled; labels and masks are float32."""
    for array in (batch.point_coords, batch.boxes):
        if array is not None:
            assert array.dtype == np.float64
    for array in (batch.point_labels, batch.mask_input):
        if array is not None:
            assert array.dtype == np.float32


def test_lists_of_ints() -> None:
    batch = validate_prompts(point_coords=[[10, 20], [30, 40]], point_labels=[1, 0])
    _check_float32(batch)
    assert batch.point_coords is not None
    assert batch.point_labels is not None
    np.testing.assert_array_equal(batch.point_coords, [[[10, 20], [30, 40]]])
    np.testing.assert_array_equal(batch.point_labels, [[1, 0]])
    assert batch.boxes is None
    assert batch.mask_input is None
    assert batch.batched is False
    assert batch.size == 1


def test_tuples_and_floats() -> None:
    batch = validate_prompts(point_coords=((10.5, 20.25),), point_labels=(1.0,))
    _check_float32(batch)
    assert batch.point_coords is not None
    np.testing.assert_array_equal(batch.point_coords, [[[10.5, 20.25]]])


@pytest.mark.parametrize("labels", [1, [1], np.array(1), (1,)])
def test_single_point_as_x_y(labels: object) -> None:
    batch = validate_prompts(point_coords=[500, 375], point_labels=labels)
    assert batch.point_coords is not None
    assert batch.point_labels is not None
    assert batch.point_coords.shape == (1, 1, 2)
    np.testing.assert_array_equal(batch.point_coords, [[[500, 375]]])
    np.testing.assert_array_equal(batch.point_labels, [[1]])
    assert batch.batched is False


def test_numpy_integer_and_float64_arrays() -> None:
    batch = validate_prompts(
        point_coords=np.array([[1, 2]], dtype=np.int64),
        point_labels=np.array([0], dtype=np.uint8),
        box=np.array([0.5, 1.5, 2.5, 3.5], dtype=np.float64),
    )
    _check_float32(batch)
    assert batch.boxes is not None
    np.testing.assert_array_equal(batch.boxes, [[0.5, 1.5, 2.5, 3.5]])


@pytest.mark.parametrize("box", [[1, 2, 3, 4], [[1, 2, 3, 4]], np.array([[1.0, 2, 3, 4]])])
def test_one_box_as_4_or_1x4_is_unbatched(box: object) -> None:
    batch = validate_prompts(box=box)
    _check_float32(batch)
    assert batch.boxes is not None
    assert batch.boxes.shape == (1, 4)
    np.testing.assert_array_equal(batch.boxes, [[1, 2, 3, 4]])
    assert batch.point_coords is None
    assert batch.batched is False
    assert batch.size == 1


def test_zero_area_box_is_accepted() -> None:
    batch = validate_prompts(box=[5, 5, 5, 5])
    assert batch.boxes is not None


def test_several_boxes_are_batched() -> None:
    boxes = [[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4]]
    batch = validate_prompts(box=boxes)
    assert batch.boxes is not None
    assert batch.boxes.shape == (3, 4)
    assert batch.batched is True
    assert batch.size == 3


def test_batched_points() -> None:
    coords = np.arange(12, dtype=np.float64).reshape(3, 2, 2)
    labels = [[1, 0], [1, 1], [0, 1]]
    batch = validate_prompts(point_coords=coords, point_labels=labels)
    assert batch.point_coords is not None
    assert batch.point_labels is not None
    assert batch.point_coords.shape == (3, 2, 2)
    assert batch.point_labels.shape == (3, 2)
    assert batch.batched is True
    assert batch.size == 3


def test_batch_of_one_point_set_is_batched() -> None:
    batch = validate_prompts(point_coords=[[[1, 2]]], point_labels=[[1]])
    assert batch.batched is True
    assert batch.size == 1


def test_batched_points_with_boxes_and_masks() -> None:
    batch = validate_prompts(
        point_coords=np.zeros((2, 1, 2)),
        point_labels=np.ones((2, 1)),
        box=[[0, 0, 5, 5], [1, 1, 6, 6]],
        mask_input=np.zeros((2, 1, 256, 256)),
    )
    _check_float32(batch)
    assert batch.size == 2
    assert batch.batched is True
    assert batch.mask_input is not None
    assert batch.mask_input.shape == (2, 1, 256, 256)


def test_force_batch_adds_the_batch_axis_to_unbatched_prompts() -> None:
    batch = validate_prompts(point_coords=[[1, 2]], point_labels=[1], force_batch=True)
    assert batch.batched is True
    assert batch.size == 1
    box_batch = validate_prompts(box=[1, 2, 3, 4], force_batch=True)
    assert box_batch.batched is True


def test_unbatched_mask_input_with_a_point() -> None:
    batch = validate_prompts(point_coords=[[1, 2]], point_labels=[1], mask_input=MASK)
    assert batch.mask_input is not None
    assert batch.mask_input.shape == (1, 1, 256, 256)
    assert batch.batched is False


def test_validation_does_not_modify_caller_arrays() -> None:
    coords = np.array([500, 375], dtype=np.float32)
    validate_prompts(point_coords=coords, point_labels=1)
    assert coords.shape == (2,)


# -- encode_prompts ------------------------------------------------------------------------

ORIGINAL = (1200, 1800)
INPUT = (683, 1024)  # x * 1024 / 1800, y * 683 / 1200


def test_labels_constants() -> None:
    assert (LABEL_PADDING, LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT) == (-1.0, 2.0, 3.0)


def test_points_only_get_a_padding_point() -> None:
    prompts = validate_prompts(point_coords=[[900, 600], [180, 120]], point_labels=[1, 0])
    encoded = encode_prompts(prompts, ORIGINAL, INPUT)
    assert encoded.point_coords.dtype == np.float32
    assert encoded.point_labels.dtype == np.float32
    # 900 * 1024 / 1800 = 512, 600 * 683 / 1200 = 341.5; 180 -> 102.4, 120 -> 68.3
    np.testing.assert_allclose(
        encoded.point_coords, [[[512.0, 341.5], [102.4, 68.3], [0.0, 0.0]]], rtol=1e-6
    )
    np.testing.assert_array_equal(encoded.point_labels, [[1.0, 0.0, -1.0]])


def test_box_only_gives_two_corners_and_no_padding() -> None:
    prompts = validate_prompts(box=[180, 120, 1620, 1080])
    encoded = encode_prompts(prompts, ORIGINAL, INPUT)
    # (180, 120) -> (102.4, 68.3); (1620, 1080) -> (921.6, 614.7)
    np.testing.assert_allclose(encoded.point_coords, [[[102.4, 68.3], [921.6, 614.7]]], rtol=1e-6)
    np.testing.assert_array_equal(encoded.point_labels, [[2.0, 3.0]])


def test_points_then_box_corners_and_no_padding() -> None:
    prompts = validate_prompts(
        point_coords=[[900, 600], [0, 1200]], point_labels=[0, 1], box=[180, 120, 1620, 1080]
    )
    encoded = encode_prompts(prompts, ORIGINAL, INPUT)
    np.testing.assert_allclose(
        encoded.point_coords,
        [[[512.0, 341.5], [0.0, 683.0], [102.4, 68.3], [921.6, 614.7]]],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(encoded.point_labels, [[0.0, 1.0, 2.0, 3.0]])


def test_fractional_float64_coordinates_are_rounded_once_after_scaling() -> None:
    # segment_anything scales the caller's float64 values, then converts to float32.
    coords = np.array([[123.456789012345, 0.1], [1799.999999, 1199.7]])
    box = np.array([0.3, 0.7, 1000.123456789, 999.987654321])
    prompts = validate_prompts(point_coords=coords, point_labels=[1, 0], box=box)
    encoded = encode_prompts(prompts, ORIGINAL, INPUT)
    scale = np.array([INPUT[1] / ORIGINAL[1], INPUT[0] / ORIGINAL[0]])
    expected = np.concatenate([coords, box.reshape(2, 2)]) * scale
    np.testing.assert_array_equal(encoded.point_coords[0], expected.astype(np.float32))


def test_portrait_scaling() -> None:
    # (1800, 1200) -> (1024, 683): x * 683 / 1200, y * 1024 / 1800
    prompts = validate_prompts(point_coords=[[600, 900]], point_labels=[1])
    encoded = encode_prompts(prompts, (1800, 1200), (1024, 683))
    np.testing.assert_allclose(encoded.point_coords, [[[341.5, 512.0], [0.0, 0.0]]], rtol=1e-6)


def test_upscaled_small_image() -> None:
    # (37, 53) -> (715, 1024): x * 1024 / 53, y * 715 / 37
    prompts = validate_prompts(point_coords=[[26.5, 18.5]], point_labels=[1], box=[0, 0, 53, 37])
    encoded = encode_prompts(prompts, (37, 53), (715, 1024))
    np.testing.assert_allclose(
        encoded.point_coords, [[[512.0, 357.5], [0.0, 0.0], [1024.0, 715.0]]], rtol=1e-6
    )
    np.testing.assert_array_equal(encoded.point_labels, [[1.0, 2.0, 3.0]])


def test_batched_boxes() -> None:
    prompts = validate_prompts(box=[[0, 0, 1800, 1200], [900, 600, 900, 600]])
    encoded = encode_prompts(prompts, ORIGINAL, INPUT)
    assert encoded.point_coords.shape == (2, 2, 2)
    np.testing.assert_allclose(
        encoded.point_coords,
        [[[0.0, 0.0], [1024.0, 683.0]], [[512.0, 341.5], [512.0, 341.5]]],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(encoded.point_labels, [[2.0, 3.0], [2.0, 3.0]])


def test_batched_points_each_get_a_padding_point() -> None:
    prompts = validate_prompts(point_coords=[[[900, 600]], [[1800, 0]]], point_labels=[[1], [0]])
    encoded = encode_prompts(prompts, ORIGINAL, INPUT)
    np.testing.assert_allclose(
        encoded.point_coords,
        [[[512.0, 341.5], [0.0, 0.0]], [[1024.0, 0.0], [0.0, 0.0]]],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(encoded.point_labels, [[1.0, -1.0], [0.0, -1.0]])


def test_encoded_arrays_are_contiguous_and_writable() -> None:
    prompts = validate_prompts(box=[[0, 0, 5, 5], [1, 1, 6, 6]])
    encoded = encode_prompts(prompts, (10, 10), (1024, 1024))
    assert encoded.point_coords.flags.c_contiguous
    assert encoded.point_labels.flags.c_contiguous
    assert encoded.point_labels.flags.writeable
