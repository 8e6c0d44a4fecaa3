"""Files on disk: written so that readers see the old or the complete new one; hashed.

One file (:func:`atomic_writer`, :func:`write_bytes_atomic`): the data goes to a
hidden temporary file in the target's folder (same file system, so the final
:func:`os.replace` is atomic) and is renamed into place only when complete; on
any failure the temporary file is removed. The temporary file is created with
mode 0o666 filtered by the umask, like any normally created file
(``tempfile.mkstemp`` would leave it 0o600).

The target's folder must exist, as with :func:`numpy.save` and
:meth:`PIL.Image.Image.save`: :func:`check_destination` says so in terms of the
caller's argument, never of the hidden temporary file.

Several files that must appear together (an export): each is first written into
a hidden staging folder inside the output folder (:func:`staging_directory`, so
the final rename stays on one file system) and moved into place with
:func:`publish` only when all are complete. On any failure, or an interrupt, the
staging folder and everything in it is removed.

:func:`sha256_file` is the one file hasher (downloads, the encoder's
fingerprint, export manifests).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from edgesam.errors import ExportError, InvalidInputError

__all__ = [
    "atomic_writer",
    "check_destination",
    "describe",
    "ensure_directory",
    "publish",
    "sha256_file",
    "staging_directory",
    "write_bytes_atomic",
]

_CHUNK = 1 << 20
_FIX_OUTPUT = "Choose a writable folder with --output / output_dir."


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


# -- several files published together (exports) -----------------------------------------


def ensure_directory(directory: Path) -> Path:
    """Create ``directory`` (and parents) if needed.

    Raises
    ------
    ExportError
        The directory cannot be created or is not writable.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(
            f"cannot create the output directory {directory}: {err.strerror or err}. {_FIX_OUTPUT}"
        ) from err
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ExportError(f"the output directory {directory} is not writable. {_FIX_OUTPUT}")
    return directory


@contextlib.contextmanager
def staging_directory(output_dir: Path) -> Iterator[Path]:
    """A hidden folder inside ``output_dir``, removed with its contents on exit.

    Raises
    ------
    ExportError
        The folder cannot be created.
    """
    try:
        staging = Path(tempfile.mkdtemp(prefix=".edgesam-export-", dir=output_dir))
    except OSError as err:
        raise ExportError(
            f"cannot write into {output_dir}: {err.strerror or err}. {_FIX_OUTPUT}"
        ) from err
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staged: Path, destination: Path) -> None:
    """Move a complete staged file to ``destination`` atomically (``os.replace``).

    Raises
    ------
    ExportError
        The move failed; ``destination`` is then unchanged.
    """
    try:
        os.replace(staged, destination)
    except OSError as err:
        raise ExportError(
            f"cannot write {destination}: {err.strerror or err}. {_FIX_OUTPUT}"
        ) from err
