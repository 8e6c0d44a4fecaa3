"""From the decoder's 256x256 logits to masks at the original image size.

The reference pipeline upsamples 256 -> 1024 (bilinear, align_corners=False, no
antialiasing), crops the padding away (``[:new_h, :new_w]``) and resizes to
H x W with the same filter. Every one of those steps is linear and separable, so
per axis it collapses into one fixed ``(out, 256)`` matrix: a mask becomes
``rows @ logits @ cols.T``, two small matrix products instead of three resizes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LOW_RES_SIZE",
    "MASK_THRESHOLD",
    "STABILITY_OFFSET",
    "bilinear_matrix",
    "stability_scores",
    "upsample_logits",
    "upsampling_matrices",
]

LOW_RES_SIZE = 256
MASK_THRESHOLD = 0.0
STABILITY_OFFSET = 1.0
_FRAME = 1024


def bilinear_matrix(in_size: int, out_size: int) -> NDArray[np.float64]:
    """The ``(out_size, in_size)`` matrix of PyTorch's 1-D bilinear resize.

    Matches ``F.interpolate(mode="bilinear", align_corners=False)`` along one
    axis: source position ``(i + 0.5) * in / out - 0.5`` clamped at 0, linear
    weights between its two neighbours, no antialiasing.
    """
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    lower = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    upper = np.minimum(lower + 1, in_size - 1)
    weight_upper = src - lower
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, lower), 1.0 - weight_upper)
    np.add.at(matrix, (rows, upper), weight_upper)
    return matrix


@lru_cache(maxsize=32)
def _axis_matrix(original: int, resized: int) -> NDArray[np.float32]:
    to_frame = bilinear_matrix(LOW_RES_SIZE, _FRAME)[:resized]
    to_original = bilinear_matrix(resized, original)
    combined = (to_original @ to_frame).astype(np.float32)
    combined.setflags(write=False)
    return combined


def upsampling_matrices(
    original_size: tuple[int, int], input_size: tuple[int, int]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Return ``(rows (H, 256), cols (W, 256))`` mapping low-res logits to H x W."""
    return (
        _axis_matrix(original_size[0], input_size[0]),
        _axis_matrix(original_size[1], input_size[1]),
    )


def upsample_logits(
    low_res: NDArray[np.float32], original_size: tuple[int, int], input_size: tuple[int, int]
) -> NDArray[np.float32]:
    """Upsample ``(..., 256, 256)`` logits to ``(..., H, W)`` at the original image size."""
    rows, cols = upsampling_matrices(original_size, input_size)
    lead = low_res.shape[:-2]
    flat = low_res.reshape(-1, LOW_RES_SIZE, LOW_RES_SIZE)
    out = np.empty((flat.shape[0], rows.shape[0], cols.shape[0]), dtype=np.float32)
    for index, logits in enumerate(flat):
        np.matmul(rows @ logits, cols.T, out=out[index])
    result: NDArray[np.float32] = out.reshape(*lead, rows.shape[0], cols.shape[0])
    return result


def stability_scores(
    logits: NDArray[np.float32],
    threshold: float = MASK_THRESHOLD,
    offset: float = STABILITY_OFFSET,
) -> NDArray[np.float32]:
    """Stability score of each ``(..., h, w)`` mask of logits.

    The IoU between the mask thresholded at ``threshold + offset`` and at
    ``threshold - offset``: ``count(logits > t + o) / count(logits > t - o)``.
    A mask that is empty at both thresholds scores 0.
    """
    intersections = np.asarray(np.count_nonzero(logits > threshold + offset, axis=(-2, -1)))
    unions = np.asarray(np.count_nonzero(logits > threshold - offset, axis=(-2, -1)))
    scores = np.zeros(intersections.shape, dtype=np.float64)
    np.divide(intersections, unions, out=scores, where=unions > 0)
    return scores.astype(np.float32)
