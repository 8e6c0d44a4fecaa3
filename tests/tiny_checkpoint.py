"""Write a small torch-format ``.pth`` state dict without torch (for tests)."""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return pickle.BININT + struct.pack("<i", value)


def _ints(values: tuple[int, ...]) -> bytes:
    return pickle.MARK + b"".join(map(_int, values)) + pickle.TUPLE


def _tensor(key: str, array: NDArray[np.float32]) -> bytes:
    strides = tuple(step // array.itemsize for step in array.strides)
    pid = (
        pickle.MARK
        + _unicode("storage")
        + pickle.GLOBAL
        + b"torch\nFloatStorage\n"
        + _unicode(key)
        + _unicode("cpu")
        + _int(array.size)
        + pickle.TUPLE
        + pickle.BINPERSID
    )
    return (
        pickle.GLOBAL
        + b"torch._utils\n_rebuild_tensor\n"
        + pickle.MARK
        + pid
        + _int(0)
        + _ints(array.shape)
        + _ints(strides)
        + pickle.TUPLE
        + pickle.REDUCE
    )


def write_state_dict(path: Path, tensors: Mapping[str, NDArray[np.float32]]) -> Path:
    """``tensors`` (float32) as a zip checkpoint laid out like ``torch.save``'s."""
    arrays = {name: np.ascontiguousarray(array, dtype="<f4") for name, array in tensors.items()}
    items = b"".join(
        _unicode(name) + _tensor(str(index), array)
        for index, (name, array) in enumerate(arrays.items())
    )
    pickled = b"\x80\x02" + pickle.EMPTY_DICT + pickle.MARK + items + pickle.SETITEMS + pickle.STOP
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", b"little")
        for index, array in enumerate(arrays.values()):
            archive.writestr(f"archive/data/{index}", array.tobytes())
        archive.writestr("archive/version", b"3\n")
    return path
