"""Read a Pillow image's pixels in place, without the copy that ``tobytes`` makes.

``Image.tobytes()`` (and ``np.asarray(image)``, which calls it) copies the
pixels into a new ``bytes`` object. During preprocessing that is one fresh
block per resize band: about 8 MB a call, paged in anew each time (glibc
hands such blocks back to the OS on free), holding the GIL while it copies.
Pillow 11.2 and later export an image through the Arrow C data interface
(``__arrow_c_array__``), a stable C ABI: a fixed-size list of 4 bytes per
pixel whose child buffer is the image's own memory when it is one block. This
module reads that buffer's address and wraps it in a read-only numpy view that
keeps the export alive. Where that is not possible (older Pillow, an image in
several blocks, another layout) it falls back to ``tobytes``.
"""

from __future__ import annotations

import ctypes
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["rgbx_pixels"]


class _ArrowSchema(ctypes.Structure):
    pass


_ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowSchema))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]

# A prototype of our own, rather than setting argtypes on the shared
# ctypes.pythonapi.PyCapsule_GetPointer that other code may also configure.
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)

# Pillow's export of a 4-byte-per-pixel image: a fixed-size list of 4, of uint8.
_PIXEL_FORMAT: Final = b"+w:4"
_BYTE_FORMAT: Final = b"C"


class _Exported:
    """``nbytes`` read-only bytes at ``address``, owned by an Arrow export.

    numpy keeps this object as the base of the array made from it, and this
    object keeps the export's capsules, which release the export (and with it
    Pillow's hold on its memory) when collected. (A ctypes array type per size
    would do the same, but ctypes caches every array type it makes.)
    """

    def __init__(self, address: int, nbytes: int, *capsules: object) -> None:
        self.__array_interface__ = {
            "version": 3,
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (address, True),
        }
        self._capsules = capsules


def _exported_buffer(image: Image.Image, nbytes: int) -> NDArray[np.uint8] | None:
    """The image's ``nbytes`` of 4-byte pixels in place, or None where Pillow cannot export them."""
    export = getattr(image, "__arrow_c_array__", None)
    if export is None:
        return None
    try:
        schema_capsule, array_capsule = export()
    except (ValueError, TypeError, OSError):  # e.g. an image stored in several blocks
        return None
    schema = _ArrowSchema.from_address(_capsule_pointer(schema_capsule, b"arrow_schema"))
    array = _ArrowArray.from_address(_capsule_pointer(array_capsule, b"arrow_array"))
    if schema.format != _PIXEL_FORMAT or schema.n_children != 1 or array.n_children != 1:
        return None
    if schema.children[0].contents.format != _BYTE_FORMAT:
        return None
    child = array.children[0].contents
    if array.offset or child.offset or child.n_buffers != 2 or child.length != nbytes:
        return None
    address = child.buffers[1]
    if not address:
        return None
    view: NDArray[np.uint8] = np.asarray(_Exported(address, nbytes, schema_capsule, array_capsule))
    return view


def rgbx_pixels(image: Image.Image) -> NDArray[np.uint8]:
    """The pixels of an RGB or RGBX ``image`` as a ``(height, width, 4)`` uint8 array.

    The fourth byte of each pixel is padding. The array is a read-only view of
    the image's own memory when Pillow can export it (see the module
    docstring), otherwise a copy.
    """
    if image.mode not in ("RGB", "RGBX"):
        raise ValueError(f"expected an RGB or RGBX image, got mode {image.mode!r}")
    width, height = image.size
    shape = (height, width, 4)
    view = _exported_buffer(image, height * width * 4)
    if view is None:
        view = np.frombuffer(image.tobytes("raw", "RGBX"), dtype=np.uint8)
    return view.reshape(shape)
