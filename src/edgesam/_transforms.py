"""ResizeLongestSide: the image and coordinate transforms into the model's 1024 frame.

The image is resized with Pillow's bilinear filter (which antialiases when it
shrinks, as the reference pipeline does) so that its long side is 1024,
normalised per channel, and zero-padded at the bottom and right to 1024x1024.
Prompt coordinates are scaled by the same factors.

The resize is one Pillow call; its 8-bit result is normalised in float32
(``(x - mean) / std``, no float64) straight into the encoder's input, a
buffer the caller may reuse across images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edgesam.errors import InvalidImageError

__all__ = [
    "IMAGE_SIZE",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "apply_coords",
    "input_size_for",
    "preprocess_image",
]

IMAGE_SIZE = 1024
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def input_size_for(original_size: tuple[int, int], long_side: int = IMAGE_SIZE) -> tuple[int, int]:
    """Return ``(new_h, new_w)``: the size with the long side scaled to ``long_side``.

    Each side becomes ``int(side * scale + 0.5)`` with ``scale = long_side / max(h, w)``.
    """
    height, width = original_size
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def _normalise(pixels: NDArray[np.uint8], planes: NDArray[np.float32]) -> None:
    """``planes[c] = (pixels[..., c] - mean[c]) / std[c]`` for c < 3, computed in float32."""
    for channel in range(3):
        plane = planes[channel]
        np.subtract(pixels[:, :, channel], PIXEL_MEAN[channel], out=plane, dtype=np.float32)
        np.divide(plane, PIXEL_STD[channel], out=plane)


def preprocess_image(
    rgb: NDArray[np.uint8], out: NDArray[np.float32] | None = None
) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """Resize, normalise and pad an RGB image into the encoder's 1x3x1024x1024 input.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        The image, RGB.
    out : ndarray of float32, shape (1, 3, 1024, 1024), optional
        A buffer to fill, reused between calls to spare a 12 MB allocation; its
        previous content does not matter. Default: a new array.

    Returns
    -------
    image_input : ndarray of float32, shape (1, 3, 1024, 1024)
        The normalised image, zero-padded at the bottom and right.
    input_size : tuple of int
        ``(new_h, new_w)``, the size of the image inside the padded frame.
    """
    height, width = rgb.shape[:2]
    new_h, new_w = input_size_for((height, width))
    if new_h < 1 or new_w < 1:
        raise InvalidImageError(
            f"image of size {height}x{width} is too elongated: its short side would be "
            f"{min(new_h, new_w)} pixels at 1024 on the long side; crop or pad it first"
        )
    if out is None:
        out = np.zeros((1, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    else:
        out[0, :, new_h:, :] = 0.0
        out[0, :, :new_h, new_w:] = 0.0
    if (new_h, new_w) == (height, width):
        resized = rgb
    else:
        image = Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR)
        resized = np.asarray(image)
    _normalise(resized, out[0, :, :new_h, :new_w])
    return out, (new_h, new_w)


def apply_coords(
    coords: NDArray[np.floating[Any]],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
) -> NDArray[np.float32]:
    """Scale ``(..., 2)`` (x, y) coordinates from original pixels into the 1024 frame.

    In float64, rounded to float32 once at the end, as segment_anything's
    ``ResizeLongestSide.apply_coords`` and the predictor's tensor conversion
    do; scaling in float32 moves a third of the points by up to 1e-4 pixel.
    """
    height, width = original_size
    new_h, new_w = input_size
    scale = np.array([new_w / width, new_h / height], dtype=np.float64)
    return (coords.astype(np.float64, copy=False) * scale).astype(np.float32)
