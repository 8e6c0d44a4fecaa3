"""Post-processing as a small ONNX graph: low-res logits to masks at the original size.

``graphs/postprocess.onnx`` computes ``rows @ logits @ cols.T`` with the
interpolation matrices of :mod:`edgesam._postprocess` as inputs (256 -> 1024
bilinear, crop, -> H x W, composed per axis), then ``logits > threshold`` and
the stability score (IoU of the masks at ``threshold +- offset``). The host
path computes the same products band by band; the dense products here add the
same nonzero terms plus exact zeros, so logits agree to float32 rounding (at
most 1 ulp apart on the reference sizes) and the masks are identical there.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edgesam._postprocess import (
    LOW_RES_SIZE,
    MASK_THRESHOLD,
    STABILITY_OFFSET,
    upsampling_matrices,
)

__all__ = ["postprocess_feeds"]


def postprocess_feeds(
    low_res: NDArray[np.float32],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    threshold: float = MASK_THRESHOLD,
    offset: float = STABILITY_OFFSET,
) -> dict[str, NDArray[np.float32]]:
    """The post-processing graph's feeds for ``(..., 256, 256)`` logits, flattened to N."""
    rows, cols = upsampling_matrices(original_size, input_size)
    flat = np.ascontiguousarray(low_res.reshape(-1, LOW_RES_SIZE, LOW_RES_SIZE), dtype=np.float32)
    return {
        "low_res_logits": flat,
        "rows": rows,
        "cols": cols,
        "threshold": np.array(threshold, dtype=np.float32),
        "offset": np.array(offset, dtype=np.float32),
    }
