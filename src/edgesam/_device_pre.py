"""Preprocessing as a small ONNX graph: the same bytes as the Pillow path, on any provider.

The host path (:mod:`edgesam._transforms`) resizes with Pillow's 8-bit
bilinear filter. Pillow computes each output pixel of a pass as a sum of
8-bit input pixels times 22-bit fixed-point integer coefficients, rounds,
shifts and clips back to 8 bits, then runs the second pass on that 8-bit
image. This module computes Pillow's own integer coefficients in numpy for
the image size (the same double-precision steps as Pillow's
``precompute_coeffs`` and ``normalize_coeffs_8bpc``) and feeds them, with the
uint8 image, to ``graphs/preprocess_*.onnx``, which does the two passes in
int32 arithmetic (gather the taps, multiply, sum, add the half, divide by
2**22, clip), then normalises in float32, transposes to CHW and zero-pads to
1x3x1024x1024. Every step is exact integer arithmetic or one correctly
rounded float32 operation, so the output is bit-identical to the host path.

Pillow 13 runs its vertical pass first for images much taller than wide that
shrink (see :func:`vertical_first`); there is one graph per pass order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edgesam._transforms import IMAGE_SIZE, input_size_for

__all__ = [
    "PRECISION_BITS",
    "PassCoefficients",
    "pass_coefficients",
    "peak_bytes",
    "preprocess_feeds",
    "vertical_first",
]

# Pillow's fixed-point precision for 8-bit images: 32 - 8 (result) - 2 (overflow).
PRECISION_BITS = 22


@dataclass(frozen=True)
class PassCoefficients:
    """One resampling pass: output index ``o`` is ``sum_k in[index[o, k]] * weight[o, k]``."""

    index: NDArray[np.int64]  # (out, taps); padded taps repeat a valid index with weight 0
    weight: NDArray[np.int32]  # (out, taps), fixed point with PRECISION_BITS fraction bits


def _bilinear(x: NDArray[np.float64]) -> NDArray[np.float64]:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def pass_coefficients(in_size: int, out_size: int) -> PassCoefficients:
    """Pillow's bilinear coefficients for resizing one axis from ``in_size`` to ``out_size``.

    The same arithmetic, in the same order, as Pillow's ``precompute_coeffs``
    (box ``(0, in_size)``, support 1 scaled by the shrink factor) and
    ``normalize_coeffs_8bpc`` (round half away from zero to ``2**22`` units).
    When the size does not change, one tap of weight ``2**22``: the identity.
    """
    if in_size == out_size:
        return PassCoefficients(
            index=np.arange(in_size, dtype=np.int64)[:, None],
            weight=np.full((in_size, 1), 1 << PRECISION_BITS, dtype=np.int32),
        )
    scale = float(np.float32(in_size)) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    taps = math.ceil(support) * 2 + 1
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    inverse = 1.0 / filterscale
    # C's (int) truncates toward zero, as astype does.
    low = np.maximum((center - support + 0.5).astype(np.int64), 0)
    high = np.minimum((center + support + 0.5).astype(np.int64), in_size)
    count = high - low
    offsets = np.arange(taps, dtype=np.int64)
    valid = offsets[None, :] < count[:, None]
    position = (offsets[None, :] + low[:, None]).astype(np.float64)
    weights = np.where(valid, _bilinear((position - center[:, None] + 0.5) * inverse), 0.0)
    # Pillow sums the weights one tap after another; adding the zero taps changes nothing.
    total = np.zeros(out_size, dtype=np.float64)
    for tap in range(taps):
        total = total + weights[:, tap]
    safe = np.where(total != 0.0, total, 1.0)
    normalised = weights / safe[:, None]
    scaled = normalised * float(1 << PRECISION_BITS)
    fixed = np.where(scaled < 0, np.trunc(-0.5 + scaled), np.trunc(0.5 + scaled))
    index = np.minimum(offsets[None, :] + low[:, None], in_size - 1)
    return PassCoefficients(index=index.astype(np.int64), weight=fixed.astype(np.int32))


def vertical_first(size: tuple[int, int], new_size: tuple[int, int]) -> bool:
    """Whether Pillow runs the vertical pass before the horizontal one for this resize.

    Pillow 13 goes vertical first when the height shrinks by more than twice
    as many pixels as the width (the same rule as ``_transforms``).
    """
    (height, width), (new_h, new_w) = size, new_size
    return height - new_h > 0 and height - new_h > 2 * (width - new_w)


def peak_bytes(feeds: dict[str, NDArray[np.generic]], vertical_first: bool) -> int:
    """About the most memory the graph needs at once for these feeds, in bytes.

    Each pass gathers every tap of every output pixel: ``taps x outputs x other
    side x 3`` values, held as uint8, then int32, then int32 products (9 bytes
    each) before they are summed.
    """
    height, width = feeds["image"].shape[:2]
    rows_out, row_taps = feeds["row_index"].shape
    cols_out, col_taps = feeds["col_index"].shape
    if vertical_first:
        first, second = rows_out * row_taps * width, rows_out * cols_out * col_taps
    else:
        first, second = height * cols_out * col_taps, rows_out * row_taps * cols_out
    return int(9 * 3 * max(first, second))


def preprocess_feeds(
    rgb: NDArray[np.uint8],
) -> tuple[dict[str, NDArray[np.generic]], bool, tuple[int, int]]:
    """The preprocessing graph's feeds for ``rgb``, which graph to run, and ``input_size``.

    Returns
    -------
    feeds : dict
        ``image`` (the uint8 image as is), and per pass ``rows_*``/``cols_*``
        tap indices and weights.
    vertical_first : bool
        True for ``preprocess_vh.onnx``, False for ``preprocess_hv.onnx``.
    input_size : tuple of int
        ``(new_h, new_w)``.
    """
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    new_h, new_w = input_size_for((height, width), IMAGE_SIZE)
    rows = pass_coefficients(height, new_h)
    cols = pass_coefficients(width, new_w)
    feeds: dict[str, NDArray[np.generic]] = {
        "image": np.ascontiguousarray(rgb, dtype=np.uint8),
        "row_index": rows.index,
        "row_weight": rows.weight,
        "col_index": cols.index,
        "col_weight": cols.weight,
    }
    return feeds, vertical_first((height, width), (new_h, new_w)), (new_h, new_w)
