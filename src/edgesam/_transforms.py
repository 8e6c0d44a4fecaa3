"""ResizeLongestSide: the image and coordinate transforms into the model's 1024 frame.

The image is resized with Pillow's bilinear filter (which antialiases when it
shrinks, as the reference pipeline does) so that its long side is 1024,
normalised per channel, and zero-padded at the bottom and right to 1024x1024.
Prompt coordinates are scaled by the same factors.

Speed without changing a bit of the result:

* Pillow resizes in two passes, horizontal then vertical, with an 8-bit image in
  between. Calling it once per pass gives the identical image, and each pass
  splits exactly: the horizontal pass into bands of rows, the vertical pass into
  bands of columns. Pillow releases the GIL while it resamples, so on large
  images the bands run on threads (one per core, at most four).
* Each band is normalised into the float32 planes of the encoder input as soon
  as it is ready, straight from uint8 (``(x - mean) / std`` in float32, as
  before): no float64, no full-size temporary.
* A reused buffer gets only its padding re-zeroed, not all 12 MB.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edgesam._errors import InvalidImageError

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


# Below this many output pixels a resize is not worth a thread (about 2 ms of work).
_MIN_PIXELS_PER_WORKER = 1 << 18
_MAX_WORKERS = 4


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _workers(pixels: int) -> int:
    return max(1, min(_MAX_WORKERS, _usable_cpus(), pixels // _MIN_PIXELS_PER_WORKER))


def _run_parallel(tasks: list[Callable[[], None]]) -> None:
    """Run ``tasks`` on threads (the last on the calling thread); re-raise the first error."""
    errors: list[BaseException] = []

    def guarded(task: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                task()
            except BaseException as err:  # re-raised on the calling thread below
                errors.append(err)

        return run

    threads = [threading.Thread(target=guarded(task), daemon=True) for task in tasks[:-1]]
    for thread in threads:
        thread.start()
    guarded(tasks[-1])()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _edges(size: int, parts: int) -> list[tuple[int, int]]:
    bounds = [size * part // parts for part in range(parts + 1)]
    return [(start, stop) for start, stop in itertools.pairwise(bounds) if stop > start]


def _normalise(rgb: NDArray[np.uint8], planes: NDArray[np.float32]) -> None:
    """``planes[c] = (rgb[..., c] - mean[c]) / std[c]``, computed in float32."""
    for channel in range(3):
        plane = planes[channel]
        np.subtract(rgb[:, :, channel], PIXEL_MEAN[channel], out=plane, dtype=np.float32)
        np.divide(plane, PIXEL_STD[channel], out=plane)


def _resize_normalised(rgb: NDArray[np.uint8], planes: NDArray[np.float32]) -> None:
    """Pillow-bilinear resize of ``rgb`` to ``planes``' size, normalised into ``planes``."""
    height, width = rgb.shape[:2]
    new_h, new_w = planes.shape[1:]
    if (new_h, new_w) == (height, width):
        _normalise(rgb, planes)
        return
    image = Image.fromarray(rgb)
    bilinear = Image.Resampling.BILINEAR
    workers = _workers(max(height * new_w, new_h * new_w))
    if workers == 1:
        _normalise(np.asarray(image.resize((new_w, new_h), bilinear)), planes)
        return
    # Horizontal pass (width only), in bands of rows; skipped when the width is kept.
    middle = rgb if new_w == width else np.empty((height, new_w, 3), dtype=np.uint8)

    def horizontal(start: int, stop: int) -> Callable[[], None]:
        def run() -> None:
            band = image.crop((0, start, width, stop)).resize((new_w, stop - start), bilinear)
            middle[start:stop] = np.asarray(band)

        return run

    if new_w != width:
        _run_parallel([horizontal(start, stop) for start, stop in _edges(height, workers)])
    # Vertical pass (height only), in bands of columns, normalised as each finishes.

    def vertical(start: int, stop: int) -> Callable[[], None]:
        def run() -> None:
            band = Image.fromarray(np.ascontiguousarray(middle[:, start:stop]))
            _normalise(
                np.asarray(band.resize((stop - start, new_h), bilinear)),
                planes[:, :, start:stop],
            )

        return run

    _run_parallel([vertical(start, stop) for start, stop in _edges(new_w, workers)])


def preprocess_image(
    rgb: NDArray[np.uint8], out: NDArray[np.float32] | None = None
) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """Resize, normalise and pad an RGB image into the encoder's 1x3x1024x1024 input.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        The image, RGB.
    out : ndarray of float32, shape (1, 3, 1024, 1024), optional
        A buffer to fill (reused between calls to avoid a 12 MB allocation);
        its previous contents do not matter.

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
    _resize_normalised(rgb, out[0, :, :new_h, :new_w])
    return out, (new_h, new_w)


def apply_coords(
    coords: NDArray[np.float32], original_size: tuple[int, int], input_size: tuple[int, int]
) -> NDArray[np.float32]:
    """Scale ``(..., 2)`` (x, y) coordinates from original pixels into the 1024 frame."""
    height, width = original_size
    new_h, new_w = input_size
    scale = np.array([new_w / width, new_h / height], dtype=np.float32)
    return (coords.astype(np.float32, copy=False) * scale).astype(np.float32, copy=False)
