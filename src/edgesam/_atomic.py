"""Write a file so that readers see either the old one or the complete new one.

The data goes to a hidden temporary file in the target's folder (same file
system, so the final :func:`os.replace` is atomic) and is renamed into place
only when complete; on any failure the temporary file is removed. The
temporary file is created with mode 0o666 filtered by the umask, like any
normally created file (``tempfile.mkstemp`` would leave it 0o600).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_writer", "write_bytes_atomic"]


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary stream whose content replaces ``path`` when the block succeeds."""
    target = Path(path)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_writer(path) as stream:
        stream.write(data)
    return Path(path)
