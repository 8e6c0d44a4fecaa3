"""Local model files: exist, are regular files, can be read. No huggingface_hub here.

Kept apart from :mod:`edgesam._hub` so that ``from_files`` (local files, no
network) does not pay for importing huggingface_hub, about a third of a second.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgesam._errors import InvalidInputError, WeightsError, WeightsNotFoundError

__all__ = ["path_argument", "readable_file"]

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
    if not resolved.is_file():
        raise WeightsNotFoundError(
            f"{argument}={os.fspath(path)!r} is not a file ({resolved} is a "
            f"{'directory' if resolved.is_dir() else 'special file'}); pass the path of the file "
            "itself"
        )
    try:
        with resolved.open("rb"):
            pass
    except OSError as err:
        raise WeightsError(
            f"{argument}={os.fspath(path)!r} cannot be read ({err.strerror or err}); "
            "check its permissions"
        ) from err
    return resolved
