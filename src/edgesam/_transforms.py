"""ResizeLongestSide: the image and coordinate transforms into the model's 1024 frame.

The image is resized with Pillow's bilinear filter (which antialiases when it
shrinks, as the reference pipeline does) so that its long side is 1024,
normalised per channel, and zero-padded at the bottom and right to 1024x1024.
Prompt coordinates are scaled by the same factors.

Speed and memory without changing a bit of the result:

* Pillow resizes in two passes with an 8-bit image in between. Calling it once
  per pass gives the identical image, and each pass splits exactly: the
  horizontal pass into bands of rows, written into one RGBX image (Pillow's
  own layout between its passes); the vertical pass into bands of columns,
  each wrapping that image without a copy (``frombuffer`` with its row stride).
  Pillow releases the GIL while it resamples, so on large images the bands run
  on threads (one per core, at most four; the same threads for both passes,
  each keeping off the caller's core, see ``_run_phases``). Row bands hold
  about 512 KiB each (each Pillow call has its own set-up, so fewer bands are
  faster; 1 MiB bands let RSS creep up) and every image-sized buffer is
  allocated on the calling thread, so the worker threads' malloc arenas stay
  small (glibc cannot trim their tops; see ``_heap``). The vertical pass
  gives each thread one band: its output is at most 1024x1024 whatever the
  image, and narrow bands cost more to normalise than they save (strided
  writes into the float planes).
* Pillow 13 runs the vertical pass first when the height shrinks by more than
  twice as many pixels as the width; those shapes take one Pillow call.
* Each column band of the vertical pass is normalised into the float32 planes
  of the encoder input as soon as it is resampled, on the thread that made it
  (``(x - mean) / std`` in float32, straight from uint8): no float64, no
  full-size temporary after the second pass. The image between the passes can
  live in a :class:`Scratch` kept by the caller.
* Pillow's output bands are read in place (``_pillow_pixels``) rather than
  through ``tobytes``, whose fresh ``bytes`` blocks (about 8 MB a call) were
  paged in anew every call and copied under the GIL.
* A reused buffer gets only its padding re-zeroed, not all 12 MB.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edgesam._cpus import avoid_cpu, current_cpu, usable_cpus
from edgesam._errors import InvalidImageError
from edgesam._pillow_pixels import rgbx_pixels

__all__ = [
    "IMAGE_SIZE",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "Scratch",
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
# Bytes of 8-bit RGBX per band: no temporary is larger, whatever the image size.
_BAND_BYTES = 1 << 19


def _workers(pixels: int) -> int:
    return max(1, min(_MAX_WORKERS, usable_cpus(), pixels // _MIN_PIXELS_PER_WORKER))


def _run_phases(phases: list[list[Callable[[], None]]], workers: int) -> None:
    """Run the phases in order, each one's tasks on up to ``workers`` threads.

    The caller's thread is one of them, and the same threads serve every phase:
    a thread that finds its phase's queue empty waits until the phase's last
    task has returned, then takes tasks from the next phase. Fresh threads for
    each phase would start on the caller's core again (see ``_cpus``); each
    worker keeps off the core the caller was on when it started. The first error
    stops all threads and is re-raised on the calling thread.
    """
    largest = max((len(phase) for phase in phases), default=0)
    if workers <= 1 or largest <= 1:
        for phase in phases:
            for task in phase:
                task()
        return
    lock = threading.Lock()
    queues = [iter(phase) for phase in phases]
    left = [len(phase) for phase in phases]
    finished = [threading.Event() for _ in phases]
    for phase, event in zip(phases, finished, strict=True):
        if not phase:
            event.set()
    errors: list[BaseException] = []

    def stop(err: BaseException) -> None:
        errors.append(err)
        for event in finished:
            event.set()

    def work() -> None:
        for index, queue in enumerate(queues):
            while not errors:
                with lock:
                    task = next(queue, None)
                if task is None:
                    break
                try:
                    task()
                except BaseException as err:  # re-raised on the calling thread below
                    stop(err)
                    return
                with lock:
                    left[index] -= 1
                    if left[index] == 0:
                        finished[index].set()
            finished[index].wait()
            if errors:
                return

    caller_cpu = current_cpu()

    def worker() -> None:
        avoid_cpu(caller_cpu)
        work()

    threads = [
        threading.Thread(target=worker, daemon=True) for _ in range(min(workers, largest) - 1)
    ]
    for thread in threads:
        thread.start()
    work()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class Scratch:
    """An 8-bit buffer kept between calls for the image between Pillow's two passes.

    Reusing it spares the page faults of a fresh multi-MiB block at every call
    (``_heap`` returns a freed one to the OS after each ``set_image``). It grows
    to the largest image seen, up to ``limit`` bytes (16 MiB: a 3000x4000
    photo needs 12 MiB); larger requests get a temporary.
    """

    def __init__(self, limit: int = 1 << 24) -> None:
        self.limit = limit
        self._data = np.empty(0, np.uint8)

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return int(self._data.nbytes)

    def take(self, shape: tuple[int, ...]) -> NDArray[np.uint8]:
        """An uninitialised uint8 array of ``shape``, from the kept buffer when it fits."""
        size = math.prod(shape)
        if size > self.limit:
            return np.empty(shape, np.uint8)
        if self._data.size < size:
            self._data = np.empty(size, np.uint8)
        return self._data[:size].reshape(shape)


def _bands(size: int, line: int) -> list[tuple[int, int]]:
    """``[0, size)`` in consecutive bands of lines of ``line`` RGBX pixels, ~_BAND_BYTES each."""
    step = max(1, _BAND_BYTES // (4 * line))
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def _split(size: int, parts: int) -> list[tuple[int, int]]:
    """``[0, size)`` in ``parts`` consecutive bands of (nearly) equal size."""
    edges = [size * part // parts for part in range(parts + 1)]
    return [(start, stop) for start, stop in itertools.pairwise(edges) if stop > start]


def _normalise(pixels: NDArray[np.uint8], planes: NDArray[np.float32]) -> None:
    """``planes[c] = (pixels[..., c] - mean[c]) / std[c]`` for c < 3, computed in float32."""
    for channel in range(3):
        plane = planes[channel]
        np.subtract(pixels[:, :, channel], PIXEL_MEAN[channel], out=plane, dtype=np.float32)
        np.divide(plane, PIXEL_STD[channel], out=plane)


def _may_go_vertical_first(height: int, width: int, new_h: int, new_w: int) -> bool:
    """Whether Pillow may run its vertical pass before the horizontal one.

    The rounding to 8 bits between the passes makes their order matter. Pillow 13
    goes vertical first when the height shrinks by more than twice as many pixels as
    the width (here: images over twice as tall as wide, shrunk); older releases
    always go horizontal first. Either way a single Pillow call is exact.
    """
    return height - new_h > 0 and height - new_h > 2 * (width - new_w)


def _normalise_rows(pixels: NDArray[np.uint8], planes: NDArray[np.float32], workers: int) -> None:
    """:func:`_normalise` in bands of rows, on up to ``workers`` threads."""
    _run_phases(
        [
            [
                partial(_normalise, pixels[top:bottom], planes[:, top:bottom])
                for top, bottom in _bands(pixels.shape[0], pixels.shape[1])
            ]
        ],
        workers,
    )


def _resize_normalised(
    rgb: NDArray[np.uint8], planes: NDArray[np.float32], scratch: Scratch | None = None
) -> None:
    """Pillow-bilinear resize of ``rgb`` to ``planes``' size, normalised into ``planes``."""
    height, width = rgb.shape[:2]
    new_h, new_w = planes.shape[1:]
    workers = _workers(max(height * new_w, new_h * new_w))
    if (new_h, new_w) == (height, width):
        _normalise_rows(rgb, planes, workers)
        return
    bilinear = Image.Resampling.BILINEAR
    if new_w == width or (new_h != height and _may_go_vertical_first(height, width, new_h, new_w)):
        resized = rgbx_pixels(Image.fromarray(rgb).resize((new_w, new_h), bilinear))
        _normalise_rows(resized, planes, workers)
        return
    # Horizontal pass by bands of rows into one RGBX image, then the vertical pass by
    # bands of columns of it. The spare row lets a column band that starts at x wrap
    # the buffer from byte 4x on (Pillow checks that all its rows fit in what follows).
    middle = (scratch or Scratch()).take((height + 1, new_w, 4)) if new_h != height else None

    def horizontal(top: int, bottom: int) -> Callable[[], None]:
        def run() -> None:
            band = Image.fromarray(rgb[top:bottom]).resize((new_w, bottom - top), bilinear)
            rows = rgbx_pixels(band)
            if middle is None:
                _normalise(rows, planes[:, top:bottom])
            else:
                middle[top:bottom] = rows

        return run

    row_bands = [horizontal(top, bottom) for top, bottom in _bands(height, width)]
    if middle is None:
        _run_phases([row_bands], workers)
        return
    flat = middle.reshape(-1)
    stride = 4 * new_w

    def vertical(start: int, stop: int) -> Callable[[], None]:
        def run() -> None:
            band = Image.frombuffer(
                "RGBX", (stop - start, height), flat[4 * start :], "raw", "RGBX", stride, 1
            )
            columns = rgbx_pixels(band.resize((stop - start, new_h), bilinear))
            _normalise(columns, planes[:, :, start:stop])

        return run

    column_bands = [vertical(start, stop) for start, stop in _split(new_w, workers)]
    _run_phases([row_bands, column_bands], workers)


def preprocess_image(
    rgb: NDArray[np.uint8],
    out: NDArray[np.float32] | None = None,
    scratch: Scratch | None = None,
    written: tuple[int, int] | None = None,
) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """Resize, normalise and pad an RGB image into the encoder's 1x3x1024x1024 input.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        The image, RGB.
    out : ndarray of float32, shape (1, 3, 1024, 1024), optional
        A buffer to fill (reused between calls to avoid a 12 MB allocation).
        Outside ``written`` it must hold zeros; inside, anything.
    scratch : Scratch, optional
        Where to keep the 8-bit image between the two resize passes across
        calls; default: a temporary.
    written : tuple of int, optional
        ``(h, w)``: the top-left region of ``out`` that may be non-zero, i.e.
        the ``input_size`` this call returned for the image ``out`` held last.
        Only what of it falls outside the new image is cleared. Default: all
        of ``out`` may be non-zero.

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
        # Clear what the last image left outside this one; a same-sized photo leaves
        # nothing (the full padding of a portrait image is 1.4 ms of writes).
        old_h, old_w = written if written is not None else (IMAGE_SIZE, IMAGE_SIZE)
        out[0, :, new_h:old_h, :old_w] = 0.0
        out[0, :, : min(new_h, old_h), new_w:old_w] = 0.0
    _resize_normalised(rgb, out[0, :, :new_h, :new_w], scratch)
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
