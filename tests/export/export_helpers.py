"""Shared helpers of the export tests: reference data, torch-side pre/post-processing.

Written from ../shared/docs/edgesam-facts.md: PIL bilinear resize of the long
side to 1024 (``int(d * 1024 / max(H, W) + 0.5)``), SAM's mean/std, zero
padding bottom/right; prompts scaled into the resized frame, a box as two
points labelled 2 and 3, the padding point (0, 0) with label -1 when there is
no box; masks upsampled with F.interpolate (bilinear, align_corners=False)
256 -> 1024, cropped, resized to H x W, thresholded at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

PROMPTS = ("a", "b", "c", "d")
MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)

# Tolerances from ../shared/reference/README.md.
EMBEDDING_TOL = 1e-4
LOGITS_TOL = 1e-3
SCORE_TOL = 1e-3
MIN_MASK_IOU = 0.999


def image_names() -> list[str]:
    """The reference images' names, the same with the data and without it (tests skip then)."""
    from conftest import REFERENCE_IMAGES  # tests/conftest.py; imported here for benchmarks/

    return list(REFERENCE_IMAGES)


@dataclass(frozen=True)
class Reference:
    """The reference arrays, their manifest, and where the files are."""

    directory: Path
    vectors: Any
    meta: dict[str, Any]

    def image(self, name: str) -> np.ndarray:
        with Image.open(self.directory / self.meta["images"][name]["file"]) as image:
            return np.asarray(image.convert("RGB"))

    def sizes(self, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
        info = self.meta["images"][name]
        return tuple(info["original_size"]), tuple(info["input_size"])  # type: ignore[return-value]

    def prompt(self, name: str, prompt: str) -> dict[str, np.ndarray]:
        prefix = f"{name}/{prompt}/prompt/"
        return {
            key[len(prefix) :]: self.vectors[key]
            for key in self.vectors.files
            if key.startswith(prefix)
        }


def input_size(height: int, width: int) -> tuple[int, int]:
    scale = 1024 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def encoder_input(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> normalised, padded (1, 3, 1024, 1024) float32."""
    new_h, new_w = input_size(*image.shape[:2])
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    normalised = (np.asarray(resized, dtype=np.float32) - MEAN) / STD
    padded = np.zeros((1, 3, 1024, 1024), dtype=np.float32)
    padded[0, :, :new_h, :new_w] = normalised.transpose(2, 0, 1)
    return padded


def decoder_points(
    prompt: dict[str, np.ndarray], original_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Prompt in original pixels -> (1, N, 2) coords in the 1024 frame and (1, N) labels."""
    height, width = original_size
    new_h, new_w = input_size(height, width)
    scale = np.array([new_w / width, new_h / height])
    coords, labels = [], []
    if "point_coords" in prompt:
        coords.append(prompt["point_coords"].astype(np.float64) * scale)
        labels.append(prompt["point_labels"].astype(np.float32))
    if "box" in prompt:
        coords.append(prompt["box"].reshape(2, 2).astype(np.float64) * scale)
        labels.append(np.array([2.0, 3.0], dtype=np.float32))
    else:
        coords.append(np.zeros((1, 2)))
        labels.append(np.array([-1.0], dtype=np.float32))
    return (
        np.concatenate(coords).astype(np.float32)[None],
        np.concatenate(labels)[None],
    )


def stability_scores(logits: np.ndarray) -> np.ndarray:
    """count(logits > 1) / count(logits > -1) over the last two axes."""
    high = (logits > 1.0).sum(axis=(-2, -1))
    low = (logits > -1.0).sum(axis=(-2, -1))
    return (high / np.maximum(low, 1)).astype(np.float32)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
