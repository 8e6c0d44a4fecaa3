"""Post-processing as small ONNX graphs: low-res logits to masks at the original size.

``graphs/postprocess.onnx`` computes ``rows @ logits @ cols.T`` with the
interpolation matrices of :mod:`edgesam._postprocess` as inputs (256 -> 1024
bilinear, crop, -> H x W, composed per axis), then ``logits > threshold`` and
the stability score (IoU of the masks at ``threshold +- offset``). The host
path computes the same products band by band; the dense products here add the
same nonzero terms plus exact zeros, so logits agree to float32 rounding (at
most 1 ulp apart on the reference sizes) and the masks are identical there.

``graphs/postprocess_everything.onnx`` does the automatic mask generator's
share of one decoder batch (:mod:`edgesam.amg`): the same products, the
stability scores (counts divided in float32, as the host divides them), the
filter on ``stability_score_thresh``, and the boxes and boolean masks of the
survivors only, so the float logits never leave the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edgesam._postprocess import (
    LOW_RES_SIZE,
    MASK_THRESHOLD,
    STABILITY_OFFSET,
    upsampling_matrices,
)

__all__ = ["EverythingBatch", "everything_feeds", "postprocess_feeds"]


def postprocess_feeds(
    low_res: NDArray[np.float32],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    threshold: float = MASK_THRESHOLD,
    offset: float = STABILITY_OFFSET,
) -> dict[str, NDArray[np.float32]]:
    """The post-processing graph's feeds for ``(..., 256, 256)`` logits, flattened to N."""
    return {
        **_upsampling_feeds(low_res, original_size, input_size, threshold),
        "offset": np.array(offset, dtype=np.float32),
    }


def _upsampling_feeds(
    low_res: NDArray[np.float32],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    threshold: float,
) -> dict[str, NDArray[np.float32]]:
    """The feeds both graphs share: logits flattened to N, the upsampling matrices, threshold."""
    rows, cols = upsampling_matrices(original_size, input_size)
    flat = np.ascontiguousarray(low_res.reshape(-1, LOW_RES_SIZE, LOW_RES_SIZE), dtype=np.float32)
    return {
        "low_res_logits": flat,
        "rows": rows,
        "cols": cols,
        "threshold": np.array(threshold, dtype=np.float32),
    }


@dataclass(frozen=True)
class EverythingBatch:
    """What the everything graph returns for N candidate masks.

    Attributes
    ----------
    stability_scores : ndarray of float32, shape (N,)
        Every candidate's score.
    keep : ndarray of int64, shape (K,)
        Candidates scoring at least the threshold, ascending.
    boxes : ndarray of int64, shape (K, 4)
        XYXY (inclusive) around each kept mask; ``[0, 0, 0, 0]`` when empty.
    masks : ndarray of bool, shape (K, H, W)
    """

    stability_scores: NDArray[np.float32]
    keep: NDArray[np.int64]
    boxes: NDArray[np.int64]
    masks: NDArray[np.bool_]

    @classmethod
    def concatenate(
        cls, parts: Sequence[EverythingBatch], original_size: tuple[int, int]
    ) -> EverythingBatch:
        """The parts of chunked runs as one (``keep`` already offset per chunk)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls(
                stability_scores=np.zeros(0, dtype=np.float32),
                keep=np.zeros(0, dtype=np.int64),
                boxes=np.zeros((0, 4), dtype=np.int64),
                masks=np.zeros((0, *original_size), dtype=np.bool_),
            )
        return cls(
            stability_scores=np.concatenate([part.stability_scores for part in parts]),
            keep=np.concatenate([part.keep for part in parts]),
            boxes=np.concatenate([part.boxes for part in parts]),
            masks=np.concatenate([part.masks for part in parts]),
        )


def everything_feeds(
    low_res: NDArray[np.float32],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    offset: float,
    stability_thresh: float,
    threshold: float = MASK_THRESHOLD,
) -> dict[str, NDArray[np.float32]]:
    """The everything graph's feeds for ``(N, 256, 256)`` logits.

    The thresholds are rounded to float32 exactly as
    :func:`edgesam.amg._masks.calculate_stability_score` and the generator
    round them, so the graph compares against the same numbers.
    """
    return {
        **_upsampling_feeds(low_res, original_size, input_size, threshold),
        "upper": np.array(threshold + offset, dtype=np.float32),
        "lower": np.array(threshold - offset, dtype=np.float32),
        "stability_thresh": np.array(stability_thresh, dtype=np.float32),
    }
