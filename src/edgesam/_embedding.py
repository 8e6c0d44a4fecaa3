"""ImageEmbedding: what the encoder made of one image, portable between processes.

An embedding is only meaningful with the sizes of the image it came from and
the model that made it, so it carries both, and refuses to be used with a
different model (compared by the encoder's fingerprint).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edgesam._atomic import atomic_writer
from edgesam._errors import InvalidEmbeddingError
from edgesam._local import path_argument
from edgesam._transforms import input_size_for

__all__ = ["EMBEDDING_SHAPE", "ImageEmbedding"]

EMBEDDING_SHAPE = (1, 256, 64, 64)
_FORMAT_VERSION = 1


def _size_pair(value: object, name: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError, OverflowError) as err:
        raise InvalidEmbeddingError(f"{name} must be (height, width): got {value!r}") from err
    if height < 1 or width < 1:
        raise InvalidEmbeddingError(f"{name} must be positive: got {(height, width)}")
    return height, width


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """The encoder's output for one image, with what is needed to decode it later.

    Attributes
    ----------
    array : ndarray of float32, shape (1, 256, 64, 64)
        The image embedding.
    original_size : tuple of int
        ``(H, W)`` of the image given to ``set_image``.
    input_size : tuple of int
        ``(new_h, new_w)`` of the image inside the 1024x1024 model input.
    model_name : str
        The model that made it (``"edge_sam_3x"``, or the file stem for local files).
    fingerprint : str
        sha256 of the encoder file that made it; decoding with another encoder
        is refused.

    ``numpy.asarray(embedding)`` gives :attr:`array`, so code written for
    segment_anything's ``get_image_embedding()`` keeps working.
    """

    array: NDArray[np.float32]
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    model_name: str
    fingerprint: str

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.shape != EMBEDDING_SHAPE or array.dtype != np.float32:
            raise InvalidEmbeddingError(
                f"an image embedding must be float32 of shape {EMBEDDING_SHAPE}: got "
                f"{array.dtype} {array.shape}"
            )
        # The extremes are NaN or infinite exactly when some element is; unlike
        # np.isfinite(array).all() this needs no 1 MiB temporary.
        if not (np.isfinite(array.max()) and np.isfinite(array.min())):
            raise InvalidEmbeddingError("the image embedding contains NaN or infinity")
        for name in ("model_name", "fingerprint"):
            if not isinstance(getattr(self, name), str):
                raise InvalidEmbeddingError(
                    f"{name} must be a str, as get_image_embedding() records it: got "
                    f"{type(getattr(self, name)).__name__}"
                )
        original_size = _size_pair(self.original_size, "original_size")
        input_size = _size_pair(self.input_size, "input_size")
        if input_size != input_size_for(original_size):
            raise InvalidEmbeddingError(
                f"input_size {input_size} does not belong to an image of original_size "
                f"{original_size} (expected {input_size_for(original_size)})"
            )
        # Read-only, so that np.asarray(embedding) cannot change the predictor's state.
        frozen = array.view()
        frozen.flags.writeable = False
        object.__setattr__(self, "array", frozen)
        object.__setattr__(self, "original_size", original_size)
        object.__setattr__(self, "input_size", input_size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`array`, ``(1, 256, 64, 64)``."""
        return tuple(self.array.shape)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        if copy:
            return np.array(self.array, dtype=dtype, copy=True)
        return np.asarray(self.array, dtype=dtype)

    def __repr__(self) -> str:
        # Short: set_image returns it, so a notebook cell ending in set_image shows it.
        return (
            f"ImageEmbedding(model_name={self.model_name!r}, original_size={self.original_size}, "
            f"input_size={self.input_size})"
        )

    def numpy(self) -> NDArray[np.float32]:
        """:attr:`array`, for segment_anything's ``get_image_embedding().cpu().numpy()``."""
        return self.array

    def cpu(self) -> ImageEmbedding:
        """This embedding (it already lives in host memory), for ``.cpu().numpy()`` chains."""
        return self

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the embedding to an ``.npz`` file atomically and return its path.

        Raises
        ------
        InvalidInputError
            If ``path`` is not a str or os.PathLike.
        """
        target = path_argument(path, "path", "an .npz file")
        if target.suffix != ".npz":
            target = target.with_name(target.name + ".npz")
        meta = {
            "format_version": _FORMAT_VERSION,
            "original_size": list(self.original_size),
            "input_size": list(self.input_size),
            "model_name": self.model_name,
            "fingerprint": self.fingerprint,
        }
        with atomic_writer(target) as stream:
            np.savez(stream, embedding=self.array, meta=np.array(json.dumps(meta)))
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ImageEmbedding:
        """Read an embedding written by :meth:`save`.

        Raises
        ------
        InvalidInputError
            If ``path`` is not a str or os.PathLike.
        InvalidEmbeddingError
            If the file is missing, truncated, or not an edgesam embedding.
        """
        source = path_argument(path, "path", "an .npz file")
        hint = "save one with predictor.get_image_embedding().save(path)"
        try:
            # Open the file ourselves: np.load leaks its handle when a zip is truncated.
            with source.open("rb") as stream:
                data = np.load(stream, allow_pickle=False)
                if not isinstance(data, np.lib.npyio.NpzFile):
                    raise ValueError("not an .npz archive")
                with data:
                    array = np.array(data["embedding"])
                    meta = json.loads(str(data["meta"]))
        except FileNotFoundError as err:
            raise InvalidEmbeddingError(f"embedding file {str(source)!r} does not exist") from err
        except (
            OSError,
            ValueError,
            KeyError,
            EOFError,
            zipfile.BadZipFile,
            json.JSONDecodeError,
        ) as err:
            raise InvalidEmbeddingError(
                f"{str(source)!r} is not a readable edgesam embedding ({type(err).__name__}: "
                f"{err}); {hint}"
            ) from err
        fields = ("original_size", "input_size", "model_name", "fingerprint")
        if (
            not isinstance(meta, dict)
            or meta.get("format_version") != _FORMAT_VERSION
            or any(field not in meta for field in fields)
        ):
            raise InvalidEmbeddingError(
                f"{str(source)!r} is not an edgesam embedding of format {_FORMAT_VERSION} "
                f"(metadata {meta!r}); {hint}"
            )
        return cls(
            array=array,
            original_size=meta["original_size"],
            input_size=meta["input_size"],
            model_name=str(meta["model_name"]),
            fingerprint=str(meta["fingerprint"]),
        )
