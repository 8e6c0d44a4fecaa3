"""Box IoU and NMS: hand-computed cases, then a brute-force exact reference."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edgesam import InvalidInputError
from edgesam.amg import batched_nms, box_area, box_iou, nms


def test_box_area_has_no_plus_one() -> None:
    np.testing.assert_array_equal(box_area([[0, 0, 2, 3], [1, 1, 1, 5]]), [6.0, 0.0])


def test_box_iou_by_hand() -> None:
    iou = box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [2, 2, 4, 4], [0, 0, 2, 2], [0, 0, 1, 2]])
    # overlap 1 of union 4 + 4 - 1; touching only; identical; half of it
    np.testing.assert_allclose(iou, [[1 / 7, 0.0, 1.0, 0.5]], rtol=1e-7)
    assert iou.dtype == np.float32
    assert iou.shape == (1, 4)


def test_zero_union_is_nan_like_torchvision() -> None:
    assert np.isnan(box_iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0])


def test_nms_by_hand() -> None:
    boxes = [
        [0, 0, 10, 10],  # A, 0.9
        [1, 1, 11, 11],  # B, 0.8: IoU(A, B) = 81 / 119 = 0.68
        [0, 0, 10, 9],  # C, 0.85: IoU(A, C) = 90 / 100 = 0.9
        [20, 20, 30, 30],  # D, 0.1: far away
    ]
    scores = [0.9, 0.8, 0.85, 0.1]
    assert nms(boxes, scores, 0.7).tolist() == [0, 1, 3]
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]
    assert nms(boxes, scores, 0.95).tolist() == [0, 2, 1, 3]  # by decreasing score


def test_iou_equal_to_threshold_is_not_suppressed() -> None:
    boxes = [[0, 0, 4, 1], [0, 0, 2, 1]]  # IoU exactly 0.5
    assert nms(boxes, [1.0, 0.5], 0.5).tolist() == [0, 1]
    assert nms(boxes, [1.0, 0.5], 0.49).tolist() == [0]


def test_ties_keep_index_order() -> None:
    boxes = [[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10], [50, 50, 60, 61]]
    assert nms(boxes, [0.5, 0.5, 0.5, 0.5], 0.7).tolist() == [0, 1]
    assert nms(boxes, [0.5, 0.5, 0.6, 0.5], 0.7).tolist() == [2, 1]


def test_categories_do_not_suppress_each_other() -> None:
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]]
    assert batched_nms(boxes, [0.9, 0.8, 0.7], [0, 1, 0], 0.5).tolist() == [0, 1]


def test_empty_input() -> None:
    keep = nms(np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.float32), 0.7)
    assert keep.dtype == np.int64
    assert keep.shape == (0,)


def _exact_iou(a: list[int], b: list[int]) -> Fraction | None:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return None if union == 0 else Fraction(inter, union)


def _reference_nms(
    boxes: list[list[int]], scores: list[float], categories: list[int], threshold: float
) -> list[int]:
    """The greedy definition, literally: best remaining box (lowest index on ties) wins."""
    remaining = list(range(len(boxes)))
    keep = []
    while remaining:
        best = max(remaining, key=lambda i: (scores[i], -i))
        keep.append(best)
        survivors = []
        for other in remaining:
            if other == best:
                continue
            iou = _exact_iou(boxes[best], boxes[other])
            same = categories[other] == categories[best]
            if not (same and iou is not None and iou > Fraction(threshold)):
                survivors.append(other)
        remaining = survivors
    return keep


@pytest.mark.parametrize("seed", range(6))
def test_batched_nms_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 60))
    corners = rng.integers(0, 30, size=(count, 2))
    sizes = rng.integers(0, 15, size=(count, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    # coarse scores so that ties happen
    scores = (rng.integers(0, 8, size=count) / 8).astype(np.float32)
    categories = rng.integers(0, 3, size=count)
    for threshold in (0.0, 0.3, 0.5, 0.7, 1.0):
        expected = _reference_nms(boxes.tolist(), scores.tolist(), categories.tolist(), threshold)
        assert batched_nms(boxes, scores, categories, threshold).tolist() == expected


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"\(N, 4\)"):
        nms([[0, 0, 1]], [1.0], 0.5)
    with pytest.raises(InvalidInputError, match="one entry per box"):
        nms([[0, 0, 1, 1]], [1.0, 2.0], 0.5)
    with pytest.raises(InvalidInputError, match="one category per box"):
        batched_nms([[0, 0, 1, 1]], [1.0], [0, 1], 0.5)
    with pytest.raises(InvalidInputError, match="iou_threshold"):
        nms([[0, 0, 1, 1]], [1.0], "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="NaN"):
        nms([[0, 0, 1, 1]], [float("nan")], 0.5)
