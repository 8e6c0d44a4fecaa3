"""Write a file so that readers see either the old one or the complete new one.

The data goes to a hidden temporary file in the target's folder (same file
system, so the final :func:`os.replace` is atomic) and is renamed into place
only when complete; on any failure the temporary file is removed. The
temporary file is created with mode 0o666 filtered by the umask, like any
normally created file (``tempfile.mkstemp`` would leave it 0o600).

The target's folder must exist, as with :func:`numpy.save` and
:meth:`PIL.Image.Image.save`: :func:`check_destination` says so in terms of the
caller's argument, never of the hidden temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from edgesam._errors import InvalidInputError

__all__ = ["atomic_writer", "check_destination", "describe", "write_bytes_atomic"]


def describe(path: str | os.PathLike[str], argument: str) -> str:
    """``path='x'`` for a Python argument, ``--output 'x'`` for a command-line option."""
    separator = " " if argument.startswith("-") else "="
    return f"{argument}{separator}{os.fspath(path)!r}"


def check_destination(path: str | os.PathLike[str], argument: str = "path") -> Path:
    """Return ``path`` as a Path after checking that a file can be written there.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written.
    argument : str
        How the caller calls ``path`` (``"path"``, ``"--output"``), for messages.

    Raises
    ------
    InvalidInputError
        If the folder of ``path`` does not exist (or is not a folder), or
        ``path`` is an existing folder.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise InvalidInputError(
            f"{describe(target, argument)}: the folder {str(folder)!r} {problem}; "
            "create it first, or choose a file in an existing folder"
        )
    if target.is_dir():
        raise InvalidInputError(
            f"{describe(target, argument)} is a folder: give the path of a file inside it"
        )
    return target


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], argument: str = "path") -> Iterator[BinaryIO]:
    """Yield a binary stream whose content replaces ``path`` when the block succeeds.

    Raises
    ------
    InvalidInputError
        As :func:`check_destination`, before anything is written.
    OSError
        If the file cannot be created (e.g. permissions); it names ``path``.
    """
    target = check_destination(path, argument)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        # Report the target the caller named, not our hidden temporary file.
        raise type(err)(err.errno, err.strerror, os.fspath(target)) from err
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


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, argument: str = "path") -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_writer(path, argument) as stream:
        stream.write(data)
    return Path(path)
