"""Local model files: exist, are regular files, can be read. No huggingface_hub here.

Kept apart from :mod:`edgesam._hub` so that ``from_files`` (local files, no
network) does not pay for importing huggingface_hub, about a third of a second.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgesam._errors import WeightsError, WeightsNotFoundError

__all__ = ["readable_file"]

PathLike = str | os.PathLike[str]


def readable_file(path: PathLike, *, argument: str = "path") -> Path:
    """The absolute path of ``path`` after checking that it is a readable regular file.

    Raises
    ------
    WeightsNotFoundError
        If the path does not exist or is not a regular file.
    WeightsError
        If the file cannot be read (permissions).
    """
    resolved = Path(path).expanduser().absolute()
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
