"""Give the heap memory that a ``set_image`` call freed back to the operating system.

Each image brings temporaries of its own size (the resize bands, Pillow's
copies, the caller's own arrays). glibc's malloc keeps what they leave behind:
once a large block has been freed it raises its mmap threshold, so later
image-sized blocks come from the heap, and freed heap memory stays resident.
Over a labelling session of differently sized images the process then grows
by tens of MiB before it levels off (docs/performance.md, "Memory over a long
session"). ``malloc_trim(0)`` returns every free page to the OS without
changing any allocator setting; it takes about a millisecond, and the next
call's temporaries are paged in again. The predictor therefore trims only
after an image whose size differs from the previous one's: a same-sized image
reuses the blocks the previous call freed.

This is the package's only use of ``ctypes``.

Elsewhere than glibc (macOS, Windows, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import platform
from collections.abc import Callable

__all__ = ["release_free_heap"]

logger = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        # The process's own symbols include libc's (find_library would run ldconfig).
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        logger.debug("glibc's malloc_trim is not available; freed heap memory stays resident")
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    function: Callable[[int], int] = trim
    return function


def release_free_heap() -> bool:
    """Return free heap pages to the OS; ``True`` if the platform could do it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
