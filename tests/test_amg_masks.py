"""Stability score, mask boxes, crop-edge filter and uncropping, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam import InvalidInputError
from edgesam.amg import (
    box_xyxy_to_xywh,
    calculate_stability_score,
    is_box_near_crop_edge,
    masks_to_boxes,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)


def test_stability_score_by_hand() -> None:
    logits = np.array(
        [
            [[2.0, 0.5, -0.5], [1.5, -2.0, 1.0]],  # > 1: 2 pixels; > -1: 5 pixels
            [[-3.0, -3.0, -3.0], [-3.0, -3.0, -3.0]],  # empty at both thresholds
            [[5.0, 5.0, 5.0], [5.0, 5.0, -1.0]],  # > 1: 5; > -1: 5 (-1 is not > -1)
        ],
        dtype=np.float32,
    )
    scores = calculate_stability_score(logits, 0.0, 1.0)
    assert scores.dtype == np.float32
    assert scores.shape == (3,)
    assert scores[0] == np.float32(2) / np.float32(5)
    assert scores.tolist()[1:] == [0.0, 1.0]


def test_stability_score_of_empty_windows_is_zero() -> None:
    # The generator scores a mask with no pixel near the threshold as a (0, 0) window.
    empty = calculate_stability_score(np.zeros((0, 0), dtype=np.float32), 0.0, 1.0)
    assert empty.shape == ()
    assert empty == 0.0
    assert calculate_stability_score(np.zeros((2, 0, 5), dtype=np.float32), 0.0, 1.0).tolist() == [
        0.0,
        0.0,
    ]


def test_stability_score_keeps_leading_axes_and_threshold() -> None:
    logits = np.zeros((2, 3, 4, 4), dtype=np.float32)
    logits[1, 2, :2] = 10.0  # 8 pixels > 9.5, 8 > 8.5 at threshold 9 offset 0.5
    logits[0, 0, :, 0] = 9.0  # > 8.5 only
    scores = calculate_stability_score(logits, 9.0, 0.5)
    assert scores.shape == (2, 3)
    assert scores[1, 2] == 1.0
    assert scores[0, 0] == 0.0
    assert scores[0, 1] == 0.0


@pytest.mark.torch
def test_stability_score_matches_segment_anythings_torch_formula() -> None:
    torch = pytest.importorskip("torch")
    logits = np.random.default_rng(0).normal(0, 3, size=(5, 37, 53)).astype(np.float32)
    tensor = torch.from_numpy(logits)
    intersections = (tensor > 1.0).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    unions = (tensor > -1.0).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    expected = (intersections / unions).numpy()
    np.testing.assert_array_equal(calculate_stability_score(logits, 0.0, 1.0), expected)


def test_boxes_are_xyxy_with_inclusive_edges() -> None:
    masks = np.zeros((3, 4, 5), dtype=bool)
    masks[0, 1, 2] = True
    masks[0, 3, 4] = True
    masks[1, 2, 3] = True  # one pixel
    boxes = masks_to_boxes(masks)  # masks[2] is empty
    assert boxes.dtype == np.int64
    assert boxes.tolist() == [[2, 1, 4, 3], [3, 2, 3, 2], [0, 0, 0, 0]]


def test_boxes_keep_leading_axes() -> None:
    masks = np.zeros((2, 3, 6, 7), dtype=bool)
    masks[1, 2, 1:4, 2:6] = True
    boxes = masks_to_boxes(masks)
    assert boxes.shape == (2, 3, 4)
    assert boxes[1, 2].tolist() == [2, 1, 5, 3]
    assert not boxes[0].any()
    assert masks_to_boxes(np.zeros((0, 6, 7), dtype=bool)).shape == (0, 4)


def test_xyxy_to_xywh() -> None:
    assert box_xyxy_to_xywh(np.array([2, 1, 4, 3])).tolist() == [2, 1, 2, 2]
    boxes = np.array([[0, 0, 9, 4], [5, 5, 5, 5]])
    assert box_xyxy_to_xywh(boxes).tolist() == [[0, 0, 9, 4], [5, 5, 0, 0]]
    assert boxes.tolist() == [[0, 0, 9, 4], [5, 5, 5, 5]]  # input untouched


def test_near_crop_edge_by_hand() -> None:
    crop, image = [100, 100, 300, 300], [0, 0, 1000, 1000]
    boxes = np.array(
        [
            [0, 50, 50, 100],  # x0 lands on the crop's left edge (100)
            [50, 50, 150, 150],  # well inside
            [30, 30, 181, 181],  # x1 = 281 is 19 px from the crop's right edge
            [30, 30, 179, 179],  # 21 px: not near
        ]
    )
    assert is_box_near_crop_edge(boxes, crop, image).tolist() == [True, False, True, False]


def test_crop_edges_that_are_image_edges_do_not_count() -> None:
    crop, image = [0, 0, 200, 200], [0, 0, 200, 400]
    boxes = np.array(
        [
            [0, 0, 50, 50],  # at the crop's left/top, which are the image's too
            [150, 0, 199, 50],  # right edge 200 is the image's right edge
            [10, 150, 50, 195],  # bottom 200 is inside the image (400)
        ]
    )
    assert is_box_near_crop_edge(boxes, crop, image).tolist() == [False, False, True]


def test_whole_image_crop_flags_nothing() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 99, 49]])
    assert not is_box_near_crop_edge(boxes, [0, 0, 100, 50], [0, 0, 100, 50]).any()


def test_uncrop_boxes_and_points() -> None:
    crop = [10, 20, 110, 220]
    assert uncrop_boxes_xyxy(np.array([[1, 2, 3, 4]]), crop).tolist() == [[11, 22, 13, 24]]
    shifted = uncrop_points(np.array([[0.5, 1.5]]), crop)
    assert shifted.tolist() == [[10.5, 21.5]]


def test_uncrop_masks_places_the_crop() -> None:
    masks = np.ones((2, 2, 2), dtype=bool)  # crop x 1..3, y 2..4 of a 5 x 4 image
    full = uncrop_masks(masks, [1, 2, 3, 4], 5, 4)
    assert full.shape == (2, 5, 4)
    expected = np.zeros((5, 4), dtype=bool)
    expected[2:4, 1:3] = True
    np.testing.assert_array_equal(full[0], expected)
    np.testing.assert_array_equal(full[1], expected)


def test_uncrop_masks_whole_image_is_a_no_op() -> None:
    masks = np.zeros((1, 5, 4), dtype=bool)
    assert uncrop_masks(masks, [0, 0, 4, 5], 5, 4) is masks


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="crop-sized"):
        uncrop_masks(np.zeros((1, 3, 3), dtype=bool), [0, 0, 2, 2], 5, 5)
    with pytest.raises(InvalidInputError, match="crop_box"):
        uncrop_points(np.zeros((1, 2)), [0, 0, 1])
    with pytest.raises(InvalidInputError, match=r"\(N, 4\)"):
        is_box_near_crop_edge(np.zeros((2, 3)), [0, 0, 1, 1], [0, 0, 1, 1])
    with pytest.raises(InvalidInputError, match=r"\(\.\.\., H, W\)"):
        calculate_stability_score(np.zeros(3, dtype=np.float32), 0.0, 1.0)
