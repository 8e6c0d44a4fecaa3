"""C library functions that Python does not wrap (``malloc_trim``, ``sched_getcpu``)."""

from __future__ import annotations

import ctypes
import platform
from typing import Any

__all__ = ["libc_function"]


def libc_function(name: str, restype: Any, *argtypes: Any) -> Any | None:
    """The C library's function ``name`` with its signature set; None where it is absent.

    Looked up among the process's own symbols, which include libc's on Linux
    (``ctypes.util.find_library`` would run ldconfig, milliseconds). Elsewhere
    than Linux, None. Callers cache the result.
    """
    if platform.system() != "Linux":
        return None
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = restype
    return function
