"""Write an export so that nothing half-written is ever visible.

Every file of an export is first written into a hidden staging folder inside
the output directory (so the final rename stays on one file system). Only
when all of them are complete are they moved into place with
:func:`os.replace`, the manifest last. On any failure, or an interrupt, the
staging folder and everything in it is removed and the output directory is
left as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgesam._errors import ExportError

__all__ = ["check_destination", "ensure_directory", "publish", "staging_directory"]

_FIX = "Choose a writable folder with --output / output_dir."


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
            f"cannot create the output directory {directory}: {err.strerror or err}. {_FIX}"
        ) from err
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ExportError(f"the output directory {directory} is not writable. {_FIX}")
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
        raise ExportError(f"cannot write into {output_dir}: {err.strerror or err}. {_FIX}") from err
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_destination(destination: Path) -> None:
    """Fail early if ``destination`` exists but cannot be replaced by a file."""
    if destination.is_dir():
        raise ExportError(
            f"cannot write {destination}: a directory of that name exists. "
            "Remove it or choose another --name / model_name."
        )


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
        raise ExportError(f"cannot write {destination}: {err.strerror or err}. {_FIX}") from err
