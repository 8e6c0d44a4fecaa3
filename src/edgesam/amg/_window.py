"""Full-resolution logits of one mask, computed only where they can matter.

The generator needs, for every surviving mask, three counts over its
full-resolution logits (above ``t + offset``, above ``t - offset``, above ``t``)
and the binary mask. Upsampling is a convex combination per pixel (bilinear
weights are non-negative and sum to 1), so a pixel whose low-res taps all lie
at or below the lowest of those thresholds (the *floor*) is itself at or below
the floor: it counts nowhere and is not in the mask. Only the window of output
pixels whose taps reach the low-res *support* (values above the floor) is
computed, with the same banded products as :mod:`edgesam._postprocess` (each
output row or column mixes at most four neighbouring low-res ones).

A mask covering a tenth of the image typically needs a fifth of the pixels,
and masks at the image's size cost what a full upsampling costs. Values agree
with :func:`edgesam._postprocess.upsample_logits` to float32 rounding (the sums
are the same, blocked differently).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from edgesam._postprocess import upsampling_matrices

__all__ = ["LogitWindow", "window_logits"]

# Output rows/columns per banded block: small blocks keep each band narrow (~8 low-res
# rows), large ones cut per-call overhead; 24-48 are equally fast for 1200x1800.
_BLOCK = 32


@dataclass(frozen=True)
class _Axis:
    """One axis of the upsampling: ``(out, 256)`` weights and each output's nonzero band."""

    matrix: NDArray[np.float32]
    first: NDArray[np.int64]  # first low-res index with a nonzero weight
    stop: NDArray[np.int64]  # one past the last

    @classmethod
    def from_matrix(cls, matrix: NDArray[np.float32]) -> _Axis:
        nonzero = matrix != 0.0
        first = np.argmax(nonzero, axis=1).astype(np.int64)
        stop = (matrix.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)).astype(np.int64)
        return cls(matrix=matrix, first=first, stop=stop)

    def outputs_touching(self, low: int, high: int) -> tuple[int, int]:
        """Output range ``[start, end)`` whose bands meet low-res ``[low, high)``.

        Bands move monotonically with the output index, so the range is contiguous.
        """
        start = int(np.searchsorted(self.stop, low, side="right"))
        end = int(np.searchsorted(self.first, high, side="left"))
        return start, max(start, end)


@lru_cache(maxsize=16)
def _axes(original_size: tuple[int, int], input_size: tuple[int, int]) -> tuple[_Axis, _Axis]:
    rows, cols = upsampling_matrices(original_size, input_size)
    return _Axis.from_matrix(rows), _Axis.from_matrix(cols)


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


def _rows_product(
    axis: _Axis, start: int, end: int, source: NDArray[np.float32], source_start: int
) -> NDArray[np.float32]:
    """``axis.matrix[start:end] @ source`` where ``source`` holds low-res rows from
    ``source_start`` on, block by block over each block's band."""
    result = np.empty((end - start, source.shape[1]), dtype=np.float32)
    for block in range(start, end, _BLOCK):
        stop = min(block + _BLOCK, end)
        low = int(axis.first[block])
        high = int(axis.stop[stop - 1])
        np.matmul(
            axis.matrix[block:stop, low:high],
            source[low - source_start : high - source_start],
            out=result[block - start : stop - start],
        )
    return result


def window_logits(
    low_res: NDArray[np.float32],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    floor: float,
) -> LogitWindow | None:
    """Upsample one mask's ``(256, 256)`` logits where they can exceed ``floor``.

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
    rows, cols = _axes(original_size, input_size)
    support = low_res > np.float32(floor)
    support_rows = np.flatnonzero(support.any(axis=1))
    if support_rows.shape[0] == 0:
        return None
    support_cols = np.flatnonzero(support.any(axis=0))
    top, bottom = rows.outputs_touching(int(support_rows[0]), int(support_rows[-1]) + 1)
    left, right = cols.outputs_touching(int(support_cols[0]), int(support_cols[-1]) + 1)
    if top == bottom or left == right:
        return None  # the support lies in the padding, which no output pixel reads
    row_low, row_high = int(rows.first[top]), int(rows.stop[bottom - 1])
    # Columns first (low-res rows of the window x output columns), then rows.
    narrow = _rows_product(
        cols, left, right, np.ascontiguousarray(low_res[row_low:row_high].T), 0
    ).T
    logits = _rows_product(rows, top, bottom, np.ascontiguousarray(narrow), row_low)
    return LogitWindow(top=top, left=left, logits=logits)
