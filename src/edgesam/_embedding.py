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
from edgesam._files import open_regular_file, path_argument, short_repr
from edgesam._transforms import input_size_for
from edgesam._validate import size_pair
from edgesam.errors import InvalidEmbeddingError, InvalidInputError

__all__ = ["EMBEDDING_SHAPE", "ImageEmbedding"]

EMBEDDING_SHAPE = (1, 256, 64, 64)
_FORMAT_VERSION = 1
_EMBEDDING_DTYPE = np.dtype("<f4")
_MAX_HEADER = 4096  # bytes of an .npy header; numpy writes under 200 for these arrays
_MAX_META_CHARS = 65536  # the metadata is a short JSON object (about 200 characters)


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
        original_size = size_pair(self.original_size, "original_size", InvalidEmbeddingError)
        input_size = size_pair(self.input_size, "input_size", InvalidEmbeddingError)
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
        if not target.name or target.is_dir():
            raise InvalidInputError(
                f"path must name an .npz file to write: got {os.fspath(path)!r}, which is "
                f"{'empty' if not os.fspath(path) else 'a folder'}; pass e.g. 'image.npz'"
            )
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

        The file is treated as untrusted: only a regular file is opened, each
        array's ``.npy`` header is parsed and checked (the embedding must be
        float32 of shape (1, 256, 64, 64), the metadata a short string) before
        any data is read, and no member is read past its expected size.

        Raises
        ------
        InvalidInputError
            If ``path`` is not a str or os.PathLike.
        InvalidEmbeddingError
            If the file is missing, not a regular file, truncated, damaged, or
            not an edgesam embedding.
        """
        source = path_argument(path, "path", "an .npz file")
        hint = "save one with predictor.get_image_embedding().save(path)"
        try:
            stream = open_regular_file(source)
        except FileNotFoundError as err:
            raise InvalidEmbeddingError(f"embedding file {str(source)!r} does not exist") from err
        except OSError as err:
            raise InvalidEmbeddingError(
                f"{str(source)!r} is not a readable edgesam embedding ({err.strerror or err}); "
                f"{hint}"
            ) from err
        try:
            with stream, zipfile.ZipFile(stream) as archive:
                array = _read_npy(archive, "embedding.npy", _EMBEDDING_DTYPE, EMBEDDING_SHAPE)
                meta_text = _read_npy(archive, "meta.npy", None, ())
                if meta_text.dtype.kind != "U":
                    raise _BadNpz(f"meta.npy holds {meta_text.dtype}, not a string")
                meta = json.loads(str(meta_text[()]))
        except (_BadNpz, zipfile.BadZipFile, json.JSONDecodeError) as err:
            raise InvalidEmbeddingError(
                f"{str(source)!r} is not a readable edgesam embedding ({type(err).__name__}: "
                f"{short_repr(str(err), 200)}); {hint}"
            ) from err
        except (OSError, ValueError, EOFError, RecursionError, RuntimeError) as err:
            raise InvalidEmbeddingError(
                f"{str(source)!r} is not a readable edgesam embedding ({type(err).__name__}: "
                f"{short_repr(str(err), 200)}); {hint}"
            ) from err
        fields = ("original_size", "input_size", "model_name", "fingerprint")
        if (
            not isinstance(meta, dict)
            or meta.get("format_version") != _FORMAT_VERSION
            or any(field not in meta for field in fields)
        ):
            raise InvalidEmbeddingError(
                f"{str(source)!r} is not an edgesam embedding of format {_FORMAT_VERSION} "
                f"(metadata {short_repr(meta)}); {hint}"
            )
        return cls(
            array=array,
            original_size=meta["original_size"],
            input_size=meta["input_size"],
            model_name=meta["model_name"],
            fingerprint=meta["fingerprint"],
        )


class _BadNpz(Exception):
    """A member of the .npz is missing, malformed or not what an embedding holds."""


def _read_npy(
    archive: zipfile.ZipFile,
    name: str,
    dtype: np.dtype[Any] | None,
    shape: tuple[int, ...],
) -> NDArray[Any]:
    """Read member ``name`` as an array after checking its header; never read past its size.

    ``dtype`` None accepts a unicode string of at most :data:`_MAX_META_CHARS`.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _BadNpz(f"it has no {name}") from None
    if info.flag_bits & 0x1:
        raise _BadNpz(f"{name} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _BadNpz(f"{name} uses zip compression method {info.compress_type}")
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(member, max_header_size=_MAX_HEADER)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(member, max_header_size=_MAX_HEADER)
            else:
                raise _BadNpz(f"{name} has .npy format version {version}")
        except _BadNpz:
            raise
        except Exception as err:  # numpy's header parser on untrusted bytes: any failure
            raise _BadNpz(f"{name} has a malformed header ({type(err).__name__})") from err
        found_shape, fortran, found_dtype = header
        if dtype is None:
            if found_shape != shape or found_dtype.kind != "U":
                raise _BadNpz(f"{name} is {found_dtype} {found_shape}, not a string")
            if found_dtype.itemsize > _MAX_META_CHARS * 4:
                raise _BadNpz(f"{name} holds a string longer than {_MAX_META_CHARS} characters")
        elif found_shape != shape or found_dtype != dtype:
            raise _BadNpz(
                f"{name} is {found_dtype} of shape {short_repr(found_shape)}, not {dtype} of "
                f"shape {shape}"
            )
        size = found_dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        data = member.read(size)
        if len(data) != size:
            raise _BadNpz(f"{name} is truncated: {len(data)} of {size} bytes")
    array = np.frombuffer(data, dtype=found_dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(array, dtype=found_dtype.newbyteorder("="), order="C", copy=True)
