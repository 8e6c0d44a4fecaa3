"""Box IoU and greedy non-maximum suppression, as torchvision computes them.

segment_anything removes duplicate masks with ``torchvision.ops.batched_nms``
over their XYXY boxes. This is the same arithmetic in numpy:

- area = ``(x2 - x1) * (y2 - y1)`` (no +1), IoU = ``inter / (area_a + area_b - inter)``,
  all in float32 as torchvision's kernel computes it for float boxes; a pair
  with zero union has IoU NaN, which suppresses nothing;
- greedy: visit boxes by decreasing score, keep a box unless an already kept
  box of the same category overlaps it with IoU strictly greater than the
  threshold (compared in float64, as torchvision compares with its double
  threshold);
- equal scores are visited in index order (torchvision leaves that order to
  its sort, which is not stable), so results are deterministic.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import NDArray

from edgesam.errors import InvalidInputError

__all__ = ["batched_nms", "box_area", "box_iou", "nms"]


def _as_boxes(boxes: object, name: str) -> NDArray[np.float32]:
    array = np.asarray(boxes)
    if array.ndim != 2 or array.shape[1] != 4:
        raise InvalidInputError(f"{name} must have shape (N, 4), XYXY: got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InvalidInputError(f"{name} must be numbers: got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def box_area(boxes: object) -> NDArray[np.float32]:
    """Areas ``(x2 - x1) * (y2 - y1)`` of XYXY boxes.

    Parameters
    ----------
    boxes : ndarray, shape (N, 4)
        XYXY.

    Returns
    -------
    ndarray of float32, shape (N,)
    """
    array = _as_boxes(boxes, "boxes")
    areas: NDArray[np.float32] = (array[:, 2] - array[:, 0]) * (array[:, 3] - array[:, 1])
    return areas


def _iou_one_to_many(
    box: NDArray[np.float32],
    area: np.float32,
    others: NDArray[np.float32],
    other_areas: NDArray[np.float32],
) -> NDArray[np.float32]:
    zero = np.float32(0.0)
    width = np.maximum(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), zero)
    height = np.maximum(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), zero)
    inter = width * height
    union = (area + other_areas) - inter
    iou = np.full(inter.shape, np.nan, dtype=np.float32)
    np.divide(inter, union, out=iou, where=union != 0)
    return iou


def box_iou(boxes1: object, boxes2: object) -> NDArray[np.float32]:
    """Pairwise IoU of two sets of XYXY boxes (``torchvision.ops.box_iou``).

    Parameters
    ----------
    boxes1 : ndarray, shape (N, 4)
    boxes2 : ndarray, shape (M, 4)

    Returns
    -------
    ndarray of float32, shape (N, M)
        NaN where both boxes have zero area and do not overlap (zero union).
    """
    first = _as_boxes(boxes1, "boxes1")
    second = _as_boxes(boxes2, "boxes2")
    first_areas = box_area(first)
    second_areas = box_area(second)
    result = np.empty((first.shape[0], second.shape[0]), dtype=np.float32)
    for index in range(first.shape[0]):
        result[index] = _iou_one_to_many(first[index], first_areas[index], second, second_areas)
    return result


def _threshold(iou_threshold: object) -> float:
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real):
        raise InvalidInputError(f"iou_threshold must be a number: got {iou_threshold!r}")
    value = float(iou_threshold)
    if np.isnan(value):
        raise InvalidInputError("iou_threshold must be a number: got NaN")
    return value


def _scores(scores: object, count: int) -> NDArray[np.float64]:
    array = np.asarray(scores)
    if array.shape != (count,):
        raise InvalidInputError(
            f"scores must have one entry per box, shape ({count},): got shape {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InvalidInputError(f"scores must be numbers: got {array.dtype}")
    result: NDArray[np.float64] = array.astype(np.float64)
    if np.isnan(result).any():
        raise InvalidInputError("scores must not contain NaN")
    return result


def batched_nms(
    boxes: object, scores: object, idxs: object, iou_threshold: float
) -> NDArray[np.int64]:
    """Greedy NMS within each category (``torchvision.ops.batched_nms``).

    Parameters
    ----------
    boxes : ndarray, shape (N, 4)
        XYXY boxes.
    scores : ndarray, shape (N,)
        Higher is better.
    idxs : ndarray of int, shape (N,)
        Category of each box: boxes of different categories never suppress
        each other.
    iou_threshold : float
        A box is dropped when its IoU with a better kept box of its category is
        strictly greater than this.

    Returns
    -------
    ndarray of int64, shape (K,)
        Indices of the kept boxes, by decreasing score (ties in index order).
    """
    array = _as_boxes(boxes, "boxes")
    count = array.shape[0]
    score_array = _scores(scores, count)
    categories = np.asarray(idxs)
    if categories.shape != (count,):
        raise InvalidInputError(
            f"idxs must have one category per box, shape ({count},): got shape {categories.shape}"
        )
    threshold = _threshold(iou_threshold)
    order = np.argsort(-score_array, kind="stable")
    ordered = array[order]
    ordered_categories = categories[order]
    areas = box_area(ordered)
    suppressed = np.zeros(count, dtype=np.bool_)
    keep: list[int] = []
    for index in range(count):
        if suppressed[index]:
            continue
        keep.append(index)
        rest = slice(index + 1, count)
        iou = _iou_one_to_many(ordered[index], areas[index], ordered[rest], areas[rest])
        same = ordered_categories[rest] == ordered_categories[index]
        suppressed[rest] |= (iou.astype(np.float64) > threshold) & same
    kept: NDArray[np.int64] = order[np.asarray(keep, dtype=np.int64)].astype(np.int64)
    return kept


def nms(boxes: object, scores: object, iou_threshold: float) -> NDArray[np.int64]:
    """Greedy NMS over all boxes (``torchvision.ops.nms``); see :func:`batched_nms`."""
    count = _as_boxes(boxes, "boxes").shape[0]
    return batched_nms(boxes, scores, np.zeros(count, dtype=np.int64), iou_threshold)
