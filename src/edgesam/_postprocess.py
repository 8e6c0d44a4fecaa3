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

:func:`window_logits` runs the same banded products over only the window of
output pixels that can exceed a threshold. Upsampling is a convex combination
per pixel (bilinear weights are non-negative and sum to 1), so a pixel whose
low-res taps all lie at or below that *floor* is itself at or below it: the
automatic mask generator upsamples each mask only where it can matter.

:func:`stability_scores` measures how much a mask moves when its threshold does.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from edgesam.errors import InvalidInputError

__all__ = [
    "LOW_RES_SIZE",
    "MASK_THRESHOLD",
    "STABILITY_OFFSET",
    "LogitWindow",
    "bilinear_matrix",
    "stability_scores",
    "upsample_logits",
    "upsample_masks",
    "upsampling_matrices",
    "window_logits",
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
# A window's products go in blocks of this many outputs: small blocks keep each band
# narrow (~8 low-res rows), large ones cut per-call overhead; 24-48 are equally fast
# for 1200x1800.
_WINDOW_BLOCK = 32


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
    stop: tuple[int, ...]  # one past the last; both never decrease along the output

    def outputs_touching(self, low: int, high: int) -> tuple[int, int]:
        """Output range ``[start, end)`` whose bands meet low-res ``[low, high)``."""
        start = bisect.bisect_right(self.stop, low)
        end = bisect.bisect_left(self.first, high)
        return start, max(start, end)


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
def _blocks(original: int, resized: int, other: int) -> tuple[tuple[int, int], ...]:
    """Consecutive output indices grouped so that each group's GEMM stays small.

    Returns ``(start, stop)`` per group. A group grows while
    ``rows * other * band`` stays within :data:`_GEMM_LIMIT`, where ``other`` is
    the length of the GEMM's remaining dimension and ``band`` the number of
    low-res indices the group's outputs read.
    """
    axis = _axis_map(original, resized)
    first, stop = axis.first, axis.stop
    groups: list[tuple[int, int]] = []
    start = 0
    for index in range(1, original):
        if (index + 1 - start) * other * (stop[index] - first[start]) > _GEMM_LIMIT:
            groups.append((start, index))
            start = index
    groups.append((start, original))
    return tuple(groups)


def _bands(
    original: int,
    resized: int,
    other: int,
    start: int = 0,
    end: int | None = None,
    block: int | None = None,
) -> list[tuple[int, int, int, int]]:
    """The banded GEMMs of output indices ``[start, end)`` along one axis.

    Returns ``(first, stop, band_start, band_stop)`` per group: outputs
    ``first:stop`` read only low-res indices ``band_start:band_stop`` (bands
    never move backwards along the output, so a group's band runs from its
    first output's first tap to its last output's last one). Groups are
    :func:`_blocks`' (sized for a GEMM whose remaining dimension is ``other``),
    or ``block`` outputs each.
    """
    end = original if end is None else end
    axis = _axis_map(original, resized)
    if block is None:
        groups = [
            (max(first, start), min(stop, end))
            for first, stop in _blocks(original, resized, other)
            if first < end and stop > start
        ]
    else:
        groups = [(first, min(first + block, end)) for first in range(start, end, block)]
    return [(first, stop, axis.first[first], axis.stop[stop - 1]) for first, stop in groups]


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
    for start, stop, band_start, band_stop in _bands(original_width, resized_width, LOW_RES_SIZE):
        np.matmul(
            low_res[:, :, band_start:band_stop],
            transposed[band_start:band_stop, start:stop],
            out=result[:, :, start:stop],
        )
    return result


def _rows_upsampled(
    source: NDArray[np.float32],
    source_start: int,
    original: int,
    resized: int,
    start: int,
    end: int,
    out: NDArray[np.float32],
    block: int | None = None,
) -> None:
    """``out[..., :, :] = matrix[start:end] @ source`` along one axis, band by band.

    ``source`` holds the low-res rows from ``source_start`` on (at least those
    that outputs ``start:end`` read); ``out`` has ``end - start`` rows. ``block``
    as in :func:`_bands`.
    """
    matrix = _axis_map(original, resized).matrix
    for first, stop, band_start, band_stop in _bands(
        original, resized, source.shape[-1], start, end, block
    ):
        np.matmul(
            matrix[first:stop, band_start:band_stop],
            source[..., band_start - source_start : band_stop - source_start, :],
            out=out[..., first - start : stop - start, :],
        )


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
        _rows_upsampled(narrow, 0, height, input_size[0], 0, height, out)
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
            (flat.shape[0], max(stop - start for start, stop in blocks), width), dtype=np.float32
        )
        for start, stop, band_start, band_stop in _bands(height, input_size[0], width):
            logits = scratch[:, : stop - start]
            np.matmul(
                rows[start:stop, band_start:band_stop],
                narrow[:, band_start:band_stop],
                out=logits,
            )
            np.greater(logits, threshold, out=masks[:, start:stop])
    result: NDArray[np.bool_] = masks.reshape(*lead, height, width)
    return result


@dataclass(frozen=True)
class LogitWindow:
    """Full-resolution logits of one mask inside a window; at or below the floor outside.

    Attributes
    ----------
    top, left : int
        Position of the window in the full-resolution frame.
    logits : ndarray of float32, shape (h, w)
    """

    top: int
    left: int
    logits: NDArray[np.float32]


def window_logits(
    low_res: NDArray[np.float32],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    floor: float,
) -> LogitWindow | None:
    """Upsample one mask's ``(256, 256)`` logits where they can exceed ``floor``.

    Inside the window the values are :func:`upsample_logits`'s (the same
    banded sums); outside it every pixel is at or below ``floor``.

    Parameters
    ----------
    low_res : ndarray of float32, shape (256, 256)
    original_size : tuple of int
        ``(H, W)`` of the full-resolution frame (the image or crop).
    input_size : tuple of int
        ``(new_h, new_w)``: the frame's size inside the 1024 model input.
    floor : float
        The lowest threshold that will be applied to the logits.

    Returns
    -------
    LogitWindow or None
        None when no full-resolution pixel can exceed ``floor``.
    """
    height, width = original_size
    rows = _axis_map(height, input_size[0])
    cols = _axis_map(width, input_size[1])
    support = low_res > np.float32(floor)
    support_rows = np.flatnonzero(support.any(axis=1))
    if support_rows.shape[0] == 0:
        return None
    support_cols = np.flatnonzero(support.any(axis=0))
    top, bottom = rows.outputs_touching(int(support_rows[0]), int(support_rows[-1]) + 1)
    left, right = cols.outputs_touching(int(support_cols[0]), int(support_cols[-1]) + 1)
    if top == bottom or left == right:
        return None  # the support lies in the padding, which no output pixel reads
    row_low, row_high = rows.first[top], rows.stop[bottom - 1]
    # Columns first (as rows of the transposed logits, low-res rows of the window x
    # output columns), then rows: the same products as the whole-image upsampling.
    narrow = np.empty((right - left, row_high - row_low), dtype=np.float32)
    source = np.ascontiguousarray(low_res[row_low:row_high].T, dtype=np.float32)
    _rows_upsampled(source, 0, width, input_size[1], left, right, narrow, _WINDOW_BLOCK)
    logits = np.empty((bottom - top, right - left), dtype=np.float32)
    source = np.ascontiguousarray(narrow.T)
    _rows_upsampled(source, row_low, height, input_size[0], top, bottom, logits, _WINDOW_BLOCK)
    return LogitWindow(top=top, left=left, logits=logits)


def stability_scores(
    logits: NDArray[np.floating],
    threshold: float = MASK_THRESHOLD,
    offset: float = STABILITY_OFFSET,
) -> NDArray[np.float32]:
    """Stability score of each ``(..., h, w)`` mask of logits (segment_anything's).

    The IoU between the mask thresholded at ``threshold + offset`` and at
    ``threshold - offset``; since one contains the other it is
    ``count(logits > t + o) / count(logits > t - o)``, divided in float32 as
    torch divides the int32 counts. A mask that is empty even at the low
    threshold scores 0.0 (torch gives NaN; both fail any positive threshold).

    Raises
    ------
    InvalidInputError
        If ``logits`` has fewer than two axes.
    """
    array = np.asarray(logits)
    if array.ndim < 2:
        raise InvalidInputError(f"logits must have shape (..., H, W): got shape {array.shape}")
    high = np.float32(threshold + offset)
    low = np.float32(threshold - offset)
    # An explicit count: reshape(-1, 0, 0) is ambiguous for an empty (0, 0) window.
    flat = array.reshape(math.prod(array.shape[:-2]), *array.shape[-2:])
    scores = np.zeros(flat.shape[0], dtype=np.float32)
    # One mask at a time into one scratch buffer: a whole-stack comparison plus an
    # axis count is ~3x slower (the axis count sums bools as integers).
    scratch = np.empty(flat.shape[1:], dtype=np.bool_)
    for index in range(flat.shape[0]):
        unions = np.count_nonzero(np.greater(flat[index], low, out=scratch))
        if unions:
            intersections = np.count_nonzero(np.greater(flat[index], high, out=scratch))
            scores[index] = np.float32(intersections) / np.float32(unions)
    result: NDArray[np.float32] = scores.reshape(array.shape[:-2])
    return result
