"""From the decoder's 256x256 logits to masks at the original image size.

The reference pipeline upsamples 256 -> 1024 (bilinear, align_corners=False, no
antialiasing), crops the padding away (``[:new_h, :new_w]``) and resizes to
H x W with the same filter. Every one of those steps is linear and separable, so
per axis it collapses into one fixed ``(out, 256)`` matrix: a mask becomes
``rows @ logits @ cols.T``, two small matrix products instead of three resizes.

Those matrices are banded: each output row mixes at most four neighbouring
low-res values (two bilinear taps of two bilinear taps), so a block of
consecutive output rows only reads a narrow band of low-res rows. The products
are computed block by block over those bands: the same sums as the dense
products (the skipped terms are exact zeros) at a small fraction of the work,
and each block of boolean masks is thresholded while its float logits are
still in cache, so full-size float logits are never materialised for
:func:`upsample_masks`.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    "upsample_masks",
    "upsampling_matrices",
]

LOW_RES_SIZE = 256
MASK_THRESHOLD = 0.0
STABILITY_OFFSET = 1.0
_FRAME = 1024
# Each banded product below is cut into pieces of at most this many multiply-adds
# (M * N * K). OpenBLAS runs smaller GEMMs on the calling thread (its threshold is
# 65536 * 4); larger ones wake its thread pool, which on a shared or busy machine
# turned a 4 ms upsampling into anything up to 300 ms. Single-threaded pieces are
# steady, and the work is small enough that threads buy little.
_GEMM_LIMIT = 65536 * 4


def _taps(
    in_size: int, out_size: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """PyTorch's two bilinear taps per output index: ``(lower, upper, weight_upper)``.

    Rounded as PyTorch rounds them for float32 tensors: ``scale = in / out`` in
    float32, the source position ``scale * (i + 0.5) - 0.5`` rounded once to
    float32 (the float64 product of two float32 values is exact, so rounding it
    once reproduces the fused multiply-add), and the upper weight
    ``position - lower`` in float32. With float64 positions instead, logits move
    by up to 2e-4 and a few mask pixels near the threshold flip.
    """
    scale = float(np.float32(in_size) / np.float32(out_size))
    index = np.arange(out_size, dtype=np.float64)
    src = (scale * (index + 0.5) - 0.5).astype(np.float32).astype(np.float64)
    src = np.maximum(src, 0.0)
    lower = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    upper = np.minimum(lower + 1, in_size - 1)
    weight_upper = (src - lower).astype(np.float32).astype(np.float64)
    return lower, upper, weight_upper


def bilinear_matrix(in_size: int, out_size: int) -> NDArray[np.float64]:
    """The ``(out_size, in_size)`` matrix of PyTorch's 1-D bilinear resize.

    Matches ``F.interpolate(mode="bilinear", align_corners=False)`` along one
    axis: source position ``(i + 0.5) * in / out - 0.5`` (in float32, as PyTorch
    computes it) clamped at 0, linear weights between its two neighbours, no
    antialiasing.
    """
    lower, upper, weight_upper = _taps(in_size, out_size)
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, lower), 1.0 - weight_upper)
    np.add.at(matrix, (rows, upper), weight_upper)
    return matrix


@dataclass(frozen=True)
class _AxisMap:
    """One axis of the upsampling: the dense matrix and, per output index, its band."""

    matrix: NDArray[np.float32]  # (out, 256), read-only
    first: tuple[int, ...]  # first low-res index with a nonzero weight, per output index
    stop: tuple[int, ...]  # one past the last


@lru_cache(maxsize=32)
def _axis_map(original: int, resized: int) -> _AxisMap:
    # 256 -> 1024 frame, cropped to `resized`, then -> `original`: compose the two
    # 2-tap maps directly (4 taps) instead of multiplying the dense matrices.
    frame_lower, frame_upper, frame_weight = _taps(LOW_RES_SIZE, _FRAME)
    lower, upper, weight = _taps(resized, original)
    combined = np.zeros((original, LOW_RES_SIZE), dtype=np.float64)
    rows = np.arange(original)
    for index, outer in ((lower, 1.0 - weight), (upper, weight)):
        np.add.at(combined, (rows, frame_lower[index]), outer * (1.0 - frame_weight[index]))
        np.add.at(combined, (rows, frame_upper[index]), outer * frame_weight[index])
    matrix = combined.astype(np.float32)
    matrix.setflags(write=False)
    nonzero = matrix != 0.0
    first = np.argmax(nonzero, axis=1)
    stop = LOW_RES_SIZE - np.argmax(nonzero[:, ::-1], axis=1)
    return _AxisMap(matrix=matrix, first=tuple(first.tolist()), stop=tuple(stop.tolist()))


@lru_cache(maxsize=64)
def _blocks(original: int, resized: int, other: int) -> tuple[tuple[int, int, int, int], ...]:
    """Consecutive output indices grouped so that each group's GEMM stays small.

    Returns ``(start, stop, band_start, band_stop)`` per group: output indices
    ``start:stop`` read only low-res indices ``band_start:band_stop``. A group
    grows while ``rows * other * band`` stays within :data:`_GEMM_LIMIT`, where
    ``other`` is the length of the GEMM's remaining dimension.
    """
    axis = _axis_map(original, resized)
    groups: list[tuple[int, int, int, int]] = []
    start, low, high = 0, axis.first[0], axis.stop[0]
    for index in range(1, original):
        new_low, new_high = min(low, axis.first[index]), max(high, axis.stop[index])
        if (index + 1 - start) * other * (new_high - new_low) > _GEMM_LIMIT:
            groups.append((start, index, low, high))
            start, new_low, new_high = index, axis.first[index], axis.stop[index]
        low, high = new_low, new_high
    groups.append((start, original, low, high))
    return tuple(groups)


def upsampling_matrices(
    original_size: tuple[int, int], input_size: tuple[int, int]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Return ``(rows (H, 256), cols (W, 256))`` mapping low-res logits to H x W."""
    return (
        _axis_map(original_size[0], input_size[0]).matrix,
        _axis_map(original_size[1], input_size[1]).matrix,
    )


def _flatten(low_res: NDArray[np.float32]) -> NDArray[np.float32]:
    if low_res.shape[-2:] != (LOW_RES_SIZE, LOW_RES_SIZE):
        raise ValueError(
            f"low-res logits must have shape (..., {LOW_RES_SIZE}, {LOW_RES_SIZE}): "
            f"got {low_res.shape}"
        )
    flat: NDArray[np.float32] = np.ascontiguousarray(
        low_res.reshape(-1, LOW_RES_SIZE, LOW_RES_SIZE), dtype=np.float32
    )
    return flat


def _columns_upsampled(
    low_res: NDArray[np.float32], original_width: int, resized_width: int
) -> NDArray[np.float32]:
    """``low_res @ cols.T`` for ``(n, 256, 256)`` logits: ``(n, 256, W)``, band by band."""
    transposed = _axis_map(original_width, resized_width).matrix.T
    result = np.empty((low_res.shape[0], LOW_RES_SIZE, original_width), dtype=np.float32)
    for start, stop, band_start, band_stop in _blocks(original_width, resized_width, LOW_RES_SIZE):
        np.matmul(
            low_res[:, :, band_start:band_stop],
            transposed[band_start:band_stop, start:stop],
            out=result[:, :, start:stop],
        )
    return result


def upsample_logits(
    low_res: NDArray[np.float32], original_size: tuple[int, int], input_size: tuple[int, int]
) -> NDArray[np.float32]:
    """Upsample ``(..., 256, 256)`` logits to ``(..., H, W)`` at the original image size."""
    lead = low_res.shape[:-2]
    flat = _flatten(low_res)
    height, width = original_size
    out = np.empty((flat.shape[0], height, width), dtype=np.float32)
    if flat.shape[0]:
        narrow = _columns_upsampled(flat, width, input_size[1])
        rows = _axis_map(height, input_size[0]).matrix
        for start, stop, band_start, band_stop in _blocks(height, input_size[0], width):
            np.matmul(
                rows[start:stop, band_start:band_stop],
                narrow[:, band_start:band_stop],
                out=out[:, start:stop],
            )
    result: NDArray[np.float32] = out.reshape(*lead, height, width)
    return result


def upsample_masks(
    low_res: NDArray[np.float32],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    threshold: float = MASK_THRESHOLD,
) -> NDArray[np.bool_]:
    """Binary masks ``upsample_logits(low_res, ...) > threshold``, without the float logits.

    Each block of rows is upsampled into a small scratch buffer and thresholded
    at once, so the ``(..., H, W)`` float32 array (4x the boolean one) never
    exists; the result is identical to thresholding :func:`upsample_logits`.
    """
    lead = low_res.shape[:-2]
    flat = _flatten(low_res)
    height, width = original_size
    masks = np.empty((flat.shape[0], height, width), dtype=np.bool_)
    if flat.shape[0]:
        narrow = _columns_upsampled(flat, width, input_size[1])
        rows = _axis_map(height, input_size[0]).matrix
        blocks = _blocks(height, input_size[0], width)
        scratch = np.empty(
            (flat.shape[0], max(stop - start for start, stop, _, _ in blocks), width),
            dtype=np.float32,
        )
        for start, stop, band_start, band_stop in blocks:
            logits = scratch[:, : stop - start]
            np.matmul(
                rows[start:stop, band_start:band_stop],
                narrow[:, band_start:band_stop],
                out=logits,
            )
            np.greater(logits, threshold, out=masks[:, start:stop])
    result: NDArray[np.bool_] = masks.reshape(*lead, height, width)
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
