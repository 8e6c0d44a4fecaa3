"""Per-mask measurements and crop bookkeeping for the automatic mask generator.

segment_anything's ``utils/amg.py`` semantics, in numpy: the stability score of
full-resolution logits (:func:`edgesam._postprocess.stability_scores` under
segment_anything's name), XYXY boxes around masks (inclusive right/bottom
pixel, ``[0, 0, 0, 0]`` for an empty mask), the filter for boxes that end at a
crop's inner edge, and the moves from a crop's frame back to the image's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from edgesam._postprocess import stability_scores
from edgesam.errors import InvalidInputError

__all__ = [
    "box_xyxy_to_xywh",
    "calculate_stability_score",
    "is_box_near_crop_edge",
    "masks_to_boxes",
    "uncrop_boxes_xyxy",
    "uncrop_masks",
    "uncrop_points",
]


def _box4(box: Sequence[int] | NDArray[np.integer], name: str) -> tuple[int, int, int, int]:
    values = np.asarray(box)
    if values.shape != (4,):
        raise InvalidInputError(f"{name} must be 4 numbers, XYXY: got shape {values.shape}")
    x0, y0, x1, y1 = (int(value) for value in values)
    return x0, y0, x1, y1


def calculate_stability_score(
    logits: NDArray[np.floating], mask_threshold: float, threshold_offset: float
) -> NDArray[np.float32]:
    """Stability score of each mask of logits (segment_anything's definition).

    The IoU between the mask thresholded at ``mask_threshold + threshold_offset``
    and at ``mask_threshold - threshold_offset``; since one contains the other it
    is ``count(logits > t + o) / count(logits > t - o)``.

    Parameters
    ----------
    logits : ndarray of float32, shape (..., H, W)
        Mask logits, e.g. a stack (B, H, W) at full image resolution.
    mask_threshold : float
        The logit at which masks are binarised (0.0 for EdgeSAM).
    threshold_offset : float
        How far to move the threshold each way (``stability_score_offset``).

    Returns
    -------
    ndarray of float32, shape (...)
        The scores, divided in float32 as torch divides the int32 counts. A
        mask that is empty even at the low threshold scores 0.0 (torch gives
        NaN; both fail any positive ``stability_score_thresh``).
    """
    return stability_scores(logits, mask_threshold, threshold_offset)


def masks_to_boxes(masks: NDArray[np.bool_]) -> NDArray[np.int64]:
    """XYXY boxes around binary masks (segment_anything's ``batched_mask_to_box``).

    Parameters
    ----------
    masks : ndarray of bool, shape (..., H, W)

    Returns
    -------
    ndarray of int64, shape (..., 4)
        ``[x0, y0, x1, y1]`` with ``x1``/``y1`` the last column/row that holds
        a set pixel (inclusive), so a one-pixel mask at (x, y) is
        ``[x, y, x, y]``; ``[0, 0, 0, 0]`` for an empty mask.
    """
    array = np.asarray(masks)
    if array.ndim < 2:
        raise InvalidInputError(f"masks must have shape (..., H, W): got shape {array.shape}")
    if array.dtype != np.bool_:
        array = array != 0
    lead = array.shape[:-2]
    height, width = array.shape[-2:]
    boxes = np.zeros((*lead, 4), dtype=np.int64)
    if array.size == 0:
        return boxes
    rows: NDArray[np.bool_] = np.any(array, axis=-1)  # (..., H)
    cols: NDArray[np.bool_] = np.any(array, axis=-2)  # (..., W)
    present = np.any(rows, axis=-1)
    boxes[..., 0] = np.argmax(cols, axis=-1)
    boxes[..., 1] = np.argmax(rows, axis=-1)
    boxes[..., 2] = width - 1 - np.argmax(cols[..., ::-1], axis=-1)
    boxes[..., 3] = height - 1 - np.argmax(rows[..., ::-1], axis=-1)
    boxes[~present] = 0
    return boxes


def box_xyxy_to_xywh(boxes: NDArray[np.integer]) -> NDArray[np.integer]:
    """``[x0, y0, x1, y1]`` -> ``[x0, y0, x1 - x0, y1 - y0]`` along the last axis."""
    array = np.array(boxes, copy=True)
    if array.shape[-1:] != (4,):
        raise InvalidInputError(f"boxes must have shape (..., 4): got shape {array.shape}")
    array[..., 2] -= array[..., 0]
    array[..., 3] -= array[..., 1]
    return array


def uncrop_boxes_xyxy(
    boxes: NDArray[np.integer], crop_box: Sequence[int] | NDArray[np.integer]
) -> NDArray[np.integer]:
    """Move XYXY boxes (..., 4) from a crop's frame to the image's."""
    x0, y0, _, _ = _box4(crop_box, "crop_box")
    array = np.asarray(boxes)
    shifted: NDArray[np.integer] = array + np.array([x0, y0, x0, y0], dtype=array.dtype)
    return shifted


def uncrop_points(
    points: NDArray[np.floating], crop_box: Sequence[int] | NDArray[np.integer]
) -> NDArray[np.floating]:
    """Move (x, y) points (..., 2) from a crop's frame to the image's."""
    x0, y0, _, _ = _box4(crop_box, "crop_box")
    array = np.asarray(points)
    shifted: NDArray[np.floating] = array + np.array([x0, y0], dtype=array.dtype)
    return shifted


def uncrop_masks(
    masks: NDArray[np.bool_],
    crop_box: Sequence[int] | NDArray[np.integer],
    orig_h: int,
    orig_w: int,
) -> NDArray[np.bool_]:
    """Place crop-sized masks (..., h, w) into zero masks (..., orig_h, orig_w).

    Returns the input itself when the crop is the whole image.
    """
    x0, y0, x1, y1 = _box4(crop_box, "crop_box")
    array = np.asarray(masks)
    if array.shape[-2:] != (y1 - y0, x1 - x0):
        raise InvalidInputError(
            f"masks must be crop-sized, (..., {y1 - y0}, {x1 - x0}): got shape {array.shape}"
        )
    if (x0, y0, x1, y1) == (0, 0, orig_w, orig_h):
        return array
    full = np.zeros((*array.shape[:-2], orig_h, orig_w), dtype=array.dtype)
    full[..., y0:y1, x0:x1] = array
    return full


def is_box_near_crop_edge(
    boxes: NDArray[np.integer],
    crop_box: Sequence[int] | NDArray[np.integer],
    orig_box: Sequence[int] | NDArray[np.integer],
    atol: float = 20.0,
) -> NDArray[np.bool_]:
    """Which boxes end within ``atol`` pixels of a crop edge that is not an image edge.

    A mask cut by a crop's inner edge is probably part of something larger, so
    the generator drops it (a better copy comes from a crop that holds it whole).

    Parameters
    ----------
    boxes : ndarray, shape (N, 4)
        XYXY boxes in the crop's frame.
    crop_box : sequence of int
        The crop, XYXY in the image's frame.
    orig_box : sequence of int
        The whole image, ``[0, 0, W, H]``.
    atol : float
        Distance in pixels that counts as "at" an edge.

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    crop = np.asarray(_box4(crop_box, "crop_box"), dtype=np.float32)
    image = np.asarray(_box4(orig_box, "orig_box"), dtype=np.float32)
    array = np.asarray(boxes)
    if array.ndim != 2 or array.shape[1] != 4:
        raise InvalidInputError(f"boxes must have shape (N, 4): got shape {array.shape}")
    uncropped = uncrop_boxes_xyxy(array, crop_box).astype(np.float32)
    near_crop = np.abs(uncropped - crop[None, :]) <= atol
    near_image = np.abs(uncropped - image[None, :]) <= atol
    near: NDArray[np.bool_] = np.any(near_crop & ~near_image, axis=1)
    return near
