"""Calibration images for static int8 quantisation, preprocessed like the runtime does.

Each image becomes the encoder's input: longest side resized to 1024 with
PIL's bilinear filter (``int(d * 1024 / max(H, W) + 0.5)`` per side),
normalised with SAM's pixel mean and std, zero-padded bottom/right to
1024 x 1024, CHW, batch 1, float32.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from onnxruntime.quantization import CalibrationDataReader
from PIL import Image, UnidentifiedImageError

from edgesam.errors import InvalidInputError

__all__ = ["CalibrationImages", "CalibrationSource", "encoder_input"]

CalibrationSource = str | os.PathLike[str] | NDArray[np.uint8]
"""A calibration image: a file path, or an (H, W, 3) uint8 RGB array."""

INPUT_SIZE = 1024
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def _as_rgb(source: CalibrationSource) -> NDArray[np.uint8]:
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise InvalidInputError(
                "calibration images given as arrays must be (H, W, 3) uint8 RGB: "
                f"got {source.dtype} with shape {source.shape}"
            )
        return source
    path = Path(source)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise InvalidInputError(f"calibration image {path} cannot be read: {err}") from err


def encoder_input(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """The normalised, padded ``(1, 3, 1024, 1024)`` encoder input of an RGB image."""
    height, width = image.shape[:2]
    scale = INPUT_SIZE / max(height, width)
    new_h, new_w = int(height * scale + 0.5), int(width * scale + 0.5)
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    normalised = (np.asarray(resized, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD
    padded = np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    padded[0, :, :new_h, :new_w] = normalised.transpose(2, 0, 1)
    return padded


class CalibrationImages(CalibrationDataReader):  # type: ignore[misc]  # untyped base
    """Feed images to onnxruntime's calibrator one at a time (read lazily).

    Parameters
    ----------
    sources : sequence of path or ndarray
        Typical images for the deployment (a few dozen is plenty).
    input_name : str
        The encoder's input name.
    """

    def __init__(self, sources: Sequence[CalibrationSource], input_name: str = "image") -> None:
        self._sources = list(sources)
        self._input_name = input_name
        self._iterator: Iterator[CalibrationSource] = iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        """The next input feed, or None when all images have been used."""
        source = next(self._iterator, None)
        if source is None:
            return None
        return {self._input_name: encoder_input(_as_rgb(source))}

    def rewind(self) -> None:
        """Start again from the first image."""
        self._iterator = iter(self._sources)

    def check_all(self) -> None:
        """Read every image once so a bad file fails before the slow calibration."""
        for source in self._sources:
            _as_rgb(source)
