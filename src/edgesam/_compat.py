"""segment_anything compatibility: a numpy ResizeLongestSide and tensors at the boundary.

Code written for segment_anything calls ``predictor.transform.apply_coords``,
``apply_boxes`` and their ``*_torch`` twins, and hands tensors to
``predict_torch``. Here every one of them works on numpy arrays; a torch
tensor, if the caller has torch installed, is converted once on the way in
(edgesam never imports torch: a tensor is recognised by its type's module).
The coordinate scaling is the SDK's own (:func:`edgesam._transforms.apply_coords`:
float64 scaling, one rounding), so prompts transformed here and prompts given
to ``predict`` in pixels reach the decoder identically.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edgesam._transforms import IMAGE_SIZE, apply_coords, input_size_for
from edgesam._validate import integer, size_pair
from edgesam.errors import InvalidInputError

__all__ = ["ResizeLongestSide", "is_tensor", "to_numpy"]


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor (recognised without importing torch)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def to_numpy(value: object) -> object:
    """A torch tensor as a numpy array (detached, on the host); anything else unchanged."""
    if is_tensor(value):
        return value.detach().cpu().numpy()  # type: ignore[attr-defined]
    return value


def _size(original_size: object) -> tuple[int, int]:
    return size_pair(original_size, "original_size", hint=", e.g. image.shape[:2]")


def _coords(coords: object, name: str, last: int) -> NDArray[np.float64]:
    array = np.asarray(to_numpy(coords))
    if array.dtype == np.bool_ or array.dtype.kind not in "fiu":
        raise InvalidInputError(f"{name} must be a numeric array: got dtype {array.dtype}")
    if array.ndim == 0 or array.shape[-1] != last:
        shape = "(..., 2) as (x, y)" if last == 2 else "(..., 4) as XYXY"
        raise InvalidInputError(
            f"{name} must have shape {shape} in pixels: got shape {array.shape}"
        )
    return array.astype(np.float64)


class ResizeLongestSide:
    """segment_anything's ``ResizeLongestSide`` on numpy: the long side becomes ``target_length``.

    Available as ``predictor.transform``. Coordinates come back as float32
    (segment_anything returns float64 from ``apply_coords``; the values are
    those the decoder sees either way).

    Parameters
    ----------
    target_length : int
        The long side after resizing; EdgeSAM's encoder takes 1024.
    """

    def __init__(self, target_length: int = IMAGE_SIZE) -> None:
        self.target_length = integer(target_length, "target_length")

    @staticmethod
    def get_preprocess_shape(oldh: int, oldw: int, long_side_length: int) -> tuple[int, int]:
        """``(new_h, new_w)`` of an ``oldh`` x ``oldw`` image with its long side scaled."""
        return input_size_for(_size((oldh, oldw)), long_side_length)

    def _input_size(self, original_size: object) -> tuple[tuple[int, int], tuple[int, int]]:
        size = _size(original_size)
        return size, input_size_for(size, self.target_length)

    def apply_image(self, image: object) -> NDArray[np.uint8]:
        """Resize an image with Pillow's bilinear filter, as the encoder's preprocessing does.

        Parameters
        ----------
        image : ndarray of uint8, shape (H, W, 3)

        Returns
        -------
        ndarray of uint8, shape (new_h, new_w, 3)
        """
        array = np.asarray(to_numpy(image))
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise InvalidInputError(
                f"image must be uint8 of shape (H, W, 3): got {array.dtype} {array.shape}"
            )
        _, (new_h, new_w) = self._input_size(array.shape[:2])
        if new_h < 1 or new_w < 1:
            raise InvalidInputError(
                f"image of size {array.shape[0]}x{array.shape[1]} is too elongated to resize "
                f"to a long side of {self.target_length}"
            )
        resized = Image.fromarray(np.ascontiguousarray(array)).resize(
            (new_w, new_h), Image.Resampling.BILINEAR
        )
        return np.array(resized, dtype=np.uint8)  # writable, as segment_anything returns it

    def apply_coords(self, coords: object, original_size: object) -> NDArray[np.float32]:
        """Scale ``(..., 2)`` (x, y) pixel coordinates into the resized frame.

        Parameters
        ----------
        coords : array-like of float, shape (..., 2)
        original_size : tuple of int
            ``(H, W)`` of the original image, e.g. ``image.shape[:2]``.

        Returns
        -------
        ndarray of float32, shape (..., 2)
        """
        size, input_size = self._input_size(original_size)
        return apply_coords(_coords(coords, "coords", 2), size, input_size)

    def apply_boxes(self, boxes: object, original_size: object) -> NDArray[np.float32]:
        """Scale XYXY boxes, shape ``(..., 4)``, into the resized frame; returns shape (B, 4)."""
        array = _coords(boxes, "boxes", 4)
        return self.apply_coords(array.reshape(-1, 2, 2), original_size).reshape(-1, 4)

    # segment_anything's tensor variants: the same computation, numpy in and out.
    def apply_coords_torch(self, coords: object, original_size: object) -> NDArray[np.float32]:
        """:meth:`apply_coords` for code written against tensors; returns numpy."""
        return self.apply_coords(coords, original_size)

    def apply_boxes_torch(self, boxes: object, original_size: object) -> NDArray[np.float32]:
        """:meth:`apply_boxes` for code written against tensors; returns numpy."""
        return self.apply_boxes(boxes, original_size)

    def __repr__(self) -> str:
        return f"ResizeLongestSide(target_length={self.target_length})"
