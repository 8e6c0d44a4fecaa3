"""Local files: path arguments, readable regular files, and size-capped reprs.

:func:`path_argument` and :func:`readable_file` check the paths callers pass
(model files, embeddings); no huggingface_hub here, so that ``from_files``
does not pay for importing it.

Parsers of untrusted files (``.pth``, ``.npz``, images) open their input
through :func:`open_regular_file`: the path is opened without blocking and
checked with ``fstat`` on the same descriptor, so a FIFO, a device or a
directory is refused instead of hanging a reader or streaming forever, and a
file swapped between a check and the open cannot slip through.

:func:`short_repr` is for error messages about values read from such files: it
never prints more than a few dozen characters and never walks deep or shared
structures, so building a refusal cannot itself be the denial of service.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, TypeVar

from edgesam.errors import InvalidInputError, WeightsError, WeightsNotFoundError

__all__ = [
    "NotARegularFileError",
    "open_regular_file",
    "path_argument",
    "readable_file",
    "short_repr",
]

_REPR_CHARS = 80
_REPR_ITEMS = 4
_T = TypeVar("_T")


class NotARegularFileError(OSError):
    """The path names a directory, FIFO, socket or device rather than a regular file."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is a {kind}, not a regular file")
        self.kind = kind


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def open_regular_file(path: Path) -> BinaryIO:
    """Open ``path`` for binary reading if, and only if, it is a regular file.

    Raises
    ------
    NotARegularFileError
        If the path is a directory, FIFO, socket or device (never blocks on one).
    OSError
        If the file cannot be opened (missing, permissions).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(path, _kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def short_repr(value: object, limit: int = _REPR_CHARS) -> str:
    """A repr of ``value`` of at most about ``limit`` characters, in bounded time.

    Containers show their type, length and first few items (one level deep);
    huge integers show their bit length; strings and bytes are cut.
    """
    text = _short(value, 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: object, level: int) -> str:
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:
            return f"<{value.bit_length()}-bit integer>"
        return repr(value)
    if isinstance(value, str | bytes | bytearray):
        cut = value[:_REPR_CHARS]
        more = "..." if len(value) > _REPR_CHARS else ""
        return repr(cut) + more
    if isinstance(value, dict):
        if level <= 0:
            return f"<dict of {len(value)} items>"
        pairs = [f"{_short(k, 0)}: {_short(v, 0)}" for k, v in _first(value.items())]
        more = ", ..." if len(value) > _REPR_ITEMS else ""
        return "{" + ", ".join(pairs) + more + "}"
    if isinstance(value, tuple | list | set | frozenset):
        name = type(value).__name__
        if level <= 0:
            return f"<{name} of {len(value)} items>"
        shown = [_short(item, level - 1) for item in _first(value)]
        more = ", ..." if len(value) > _REPR_ITEMS else ""
        if isinstance(value, list):
            return f"[{', '.join(shown)}{more}]"
        if isinstance(value, tuple):
            return f"({', '.join(shown)}{',' if len(value) == 1 else ''}{more})"
        return f"{name}({', '.join(shown)}{more})"
    return f"<{type(value).__name__}>"


def _first(values: Iterable[_T]) -> list[_T]:
    return list(itertools.islice(values, _REPR_ITEMS))


PathLike = str | os.PathLike[str]


def path_argument(value: object, argument: str, what: str = "a file") -> Path:
    """``value`` as a Path, if it is a str or an os.PathLike naming a str path.

    Raises
    ------
    InvalidInputError
        Naming ``argument`` and what it should be (``what``), for anything else
        (None, numbers, bytes paths, lists).
    """
    if isinstance(value, str) or (
        isinstance(value, os.PathLike) and isinstance(os.fspath(value), str)
    ):
        return Path(value)
    raise InvalidInputError(
        f"{argument} must be the path of {what}, as a str or os.PathLike: got "
        f"{type(value).__name__} {value!r}"
    )


def readable_file(path: PathLike, *, argument: str = "path") -> Path:
    """The absolute path of ``path`` after checking that it is a readable regular file.

    Raises
    ------
    WeightsNotFoundError
        If the path does not exist or is not a regular file.
    WeightsError
        If the file cannot be read (permissions).
    """
    try:
        resolved = Path(path).expanduser().absolute()
    except RuntimeError as err:  # "~user/..." naming no known user
        raise WeightsNotFoundError(
            f"{argument}={os.fspath(path)!r}: its leading ~ names no known user's home "
            "folder; pass an absolute path or one starting with ~/"
        ) from err
    if not resolved.exists():
        raise WeightsNotFoundError(
            f"{argument}={os.fspath(path)!r}: no such file ({resolved}). Check the path, "
            "or use SamPredictor.from_pretrained() to download the official files"
        )
    try:
        with open_regular_file(resolved):
            pass
    except NotARegularFileError as err:
        raise WeightsNotFoundError(
            f"{argument}={os.fspath(path)!r} is not a file ({resolved} is a {err.kind}); "
            "pass the path of the file itself"
        ) from None
    except OSError as err:
        raise WeightsError(
            f"{argument}={os.fspath(path)!r} cannot be read ({err.strerror or err}); "
            "check its permissions"
        ) from err
    return resolved
