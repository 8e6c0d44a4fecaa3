"""Encoding several preprocessed images in one encoder run, when the model allows it.

An encoder whose ``image`` input has a symbolic (dynamic) first dimension, such
as one written by :func:`edgesam.export.batch_encoder`, takes a stack of
images at once; the official encoder (batch fixed at 1) is run once per
image. Either way the result is the stack of embeddings.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgesam._errors import InvalidImageError
from edgesam._session import ModelSession

__all__ = ["accepts_batches", "encode_stack"]

IMAGE_SHAPE = (3, 1024, 1024)


def accepts_batches(session: ModelSession) -> bool:
    """Whether the encoder's ``image`` input takes any number of images."""
    first = session.input_shape("image")[0]
    return not isinstance(first, int)


def encode_stack(session: ModelSession, image_inputs: ArrayLike) -> NDArray[np.float32]:
    """Embeddings ``(B, 256, 64, 64)`` of preprocessed images ``(B, 3, 1024, 1024)``."""
    images = np.asarray(image_inputs)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype.kind not in "fiu":
        raise InvalidImageError(
            "image_inputs must be a numeric array of shape (B, 3, 1024, 1024), preprocessed "
            f"images stacked: got {images.dtype} {images.shape}"
        )
    if len(images) == 0:
        raise InvalidImageError("image_inputs is empty: give at least one image (B >= 1)")
    images = np.ascontiguousarray(images, dtype=np.float32)
    if accepts_batches(session):
        (embeddings,) = session.run({"image": images})
        return np.asarray(embeddings, dtype=np.float32)
    return np.concatenate(
        [session.run({"image": images[i : i + 1]})[0] for i in range(len(images))]
    )
