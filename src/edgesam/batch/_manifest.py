"""Inputs of a batch run: a folder of images, or a JSONL / CSV / Parquet manifest.

Every input becomes an :class:`Item`: the name the input gives the image (the
key of resume and the COCO ``file_name``), where to read it, its prompts and
the columns to pass through. A row that cannot be used (no path, malformed
prompts) becomes an item with a ``problem``, recorded in ``_errors.jsonl``
instead of stopping the run; a manifest that cannot be used at all (no
``path``/``uri`` column, a column that clashes with an output column) is a
usage error.
"""

from __future__ import annotations

import base64
import csv
import datetime
import decimal
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edgesam.errors import InvalidInputError, MissingExtraError

__all__ = [
    "IMAGE_SUFFIXES",
    "MANIFEST_SUFFIXES",
    "OUTPUT_COLUMNS",
    "Item",
    "read_items",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
MANIFEST_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: Columns every output row gains; an input column of the same name is a usage error.
OUTPUT_COLUMNS = ("sha256", "height", "width", "model_fingerprint", "masks")
NAME_COLUMNS = ("path", "uri")
PROMPT_COLUMNS = ("boxes", "points", "labels")

#: Bounds on untrusted manifests: one JSONL line / CSV field, and prompts per row.
MAX_LINE_BYTES = 1 << 20
MAX_PROMPTS_PER_ROW = 4096


@dataclass(frozen=True)
class Item:
    """One image to segment, as the input describes it.

    Attributes
    ----------
    index : int
        0-based position in the input.
    name : str
        The image's path or URI exactly as the input gives it (for a folder:
        the path relative to the folder, with ``/``).
    location : str
        Where to read it: an absolute local path, or a URI with a scheme.
    columns : dict
        The input columns, passed through to the output row.
    boxes : ndarray of float32, shape (B, 4), optional
        XYXY boxes in pixels; each box is one prompt.
    points : ndarray of float32, shape (N, 2), optional
    labels : ndarray of int64, shape (N,), optional
        Points and labels together form one more prompt.
    problem : str, optional
        Why the row cannot be processed (it is recorded as an error).
    """

    index: int
    name: str
    location: str
    columns: dict[str, Any] = field(default_factory=dict)
    boxes: NDArray[np.float32] | None = None
    points: NDArray[np.float32] | None = None
    labels: NDArray[np.int64] | None = None
    problem: str | None = None

    @property
    def has_prompts(self) -> bool:
        """Whether the row carries boxes or points."""
        return self.boxes is not None or self.points is not None


def read_items(
    source: str | os.PathLike[str], *, recursive: bool = False, everything: bool = False
) -> list[Item]:
    """Read the images (and prompts) that ``source`` names.

    Parameters
    ----------
    source : str or os.PathLike
        A folder of images, or a manifest (``.jsonl``/``.ndjson``, ``.csv``,
        ``.parquet``) with a ``path`` or ``uri`` column.
    recursive : bool
        For a folder: also the images in its sub-folders.
    everything : bool
        Whether the run segments everything (prompt columns are then refused).

    Raises
    ------
    InvalidInputError
        If ``source`` does not exist, is of an unknown kind, or a manifest
        lacks a ``path``/``uri`` column or has a column named like an output
        column.
    """
    path = Path(source)
    if path.is_dir():
        return _folder_items(path, recursive)
    if not path.is_file():
        raise InvalidInputError(
            f"input {str(path)!r} does not exist: give a folder of images or a manifest "
            f"({', '.join(sorted(MANIFEST_SUFFIXES))})"
        )
    kind = MANIFEST_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInputError(
            f"input {str(path)!r} is neither a folder nor a manifest: manifests end in "
            f"{', '.join(sorted(MANIFEST_SUFFIXES))}"
        )
    readers = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}
    rows = list(readers[kind](path))
    columns = {key for _, row in rows if isinstance(row, Mapping) for key in row}
    _check_columns(path, columns, rows, everything)
    return [_item(index, row, path.parent) for index, row in rows]


# -- folders ----------------------------------------------------------------------------


def _folder_items(folder: Path, recursive: bool) -> list[Item]:
    pattern = "**/*" if recursive else "*"
    files = sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    items = []
    for index, file in enumerate(files):
        name = file.relative_to(folder).as_posix()
        items.append(Item(index, name, str(file.resolve()), {"path": name}))
    return items


# -- manifests --------------------------------------------------------------------------


def _jsonl_rows(path: Path) -> Iterator[tuple[int, object]]:
    with path.open("rb") as stream:
        index = 0
        for number, line in enumerate(_bounded_lines(stream, path), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                row = _Bad(f"line {number} is not JSON ({err})")
            yield index, row
            index += 1


def _bounded_lines(stream: Any, path: Path) -> Iterator[bytes]:
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise InvalidInputError(
                f"manifest {str(path)!r} has a line longer than {MAX_LINE_BYTES} bytes: "
                "one line per image, with its prompts, is expected"
            )
        yield line


def _csv_rows(path: Path) -> Iterator[tuple[int, object]]:
    csv.field_size_limit(MAX_LINE_BYTES)
    with path.open(newline="", encoding="utf-8") as stream:
        try:
            for index, row in enumerate(csv.DictReader(stream)):
                if None in row:
                    yield index, _Bad("the row has more fields than the header")
                    continue
                yield index, {key: _csv_value(key, value) for key, value in row.items()}
        except (csv.Error, UnicodeDecodeError) as err:
            raise InvalidInputError(f"manifest {str(path)!r} is not readable CSV: {err}") from err


def _csv_value(key: str, value: str | None) -> object:
    if value is None or value == "":
        return None
    if key in PROMPT_COLUMNS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return _Bad(f"column {key!r} must hold a JSON list in CSV: got {value[:80]!r}")
    return value


def _parquet_rows(path: Path) -> Iterator[tuple[int, object]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise MissingExtraError(
            'reading a Parquet manifest needs pyarrow: pip install "edgesam[batch]"'
        ) from err
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...
        raise InvalidInputError(f"manifest {str(path)!r} is not readable Parquet: {err}") from err
    index = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield index, row
            index += 1


def _jsonable(value: object) -> object:
    """``value`` as a JSON value: what pass-through columns carry to every output."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


class _Bad:
    """A row (or field) that could not be parsed, and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _check_columns(
    path: Path, columns: set[str], rows: list[tuple[int, object]], everything: bool
) -> None:
    clashes = sorted(columns & set(OUTPUT_COLUMNS))
    if clashes:
        raise InvalidInputError(
            f"manifest {str(path)!r} has column(s) {clashes} that the output adds "
            f"({', '.join(OUTPUT_COLUMNS)}): rename them"
        )
    if rows and not columns & set(NAME_COLUMNS):
        raise InvalidInputError(
            f"manifest {str(path)!r} has no 'path' or 'uri' column (columns: "
            f"{sorted(columns)}): each row needs the image's path"
        )
    prompts = sorted(columns & set(PROMPT_COLUMNS))
    if everything and prompts:
        raise InvalidInputError(
            f"manifest {str(path)!r} has prompt column(s) {prompts} but everything=True "
            "(--everything) ignores prompts: drop one or the other"
        )


def _item(index: int, row: object, folder: Path) -> Item:
    if isinstance(row, _Bad):
        return Item(index, f"<row {index}>", "", problem=row.reason)
    if not isinstance(row, Mapping):
        return Item(
            index, f"<row {index}>", "", problem=f"row is not an object: {type(row).__name__}"
        )
    name = row.get("path") if row.get("path") is not None else row.get("uri")
    if not isinstance(name, str) or not name:
        return Item(index, f"<row {index}>", "", problem="the row has no path or uri string")
    bad = [f"{key}: {value.reason}" for key, value in row.items() if isinstance(value, _Bad)]
    if bad:
        return Item(index, name, "", problem="; ".join(bad))
    columns = {str(key): _jsonable(value) for key, value in row.items()}
    try:
        boxes = _array(row.get("boxes"), "boxes", 4, np.float32)
        points = _array(row.get("points"), "points", 2, np.float32)
        labels = _labels(row.get("labels"), points)
    except InvalidInputError as err:
        return Item(index, name, "", problem=str(err))
    location = _location(name, folder)
    return Item(index, name, location, columns, boxes, points, labels)


def _location(name: str, folder: Path) -> str:
    if name.startswith("file://"):
        return name[len("file://") :]
    if "://" in name:
        return name
    path = Path(name).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


def _array(value: object, key: str, width: int, dtype: type) -> NDArray[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInputError(f"{key} must be a list of [{width} numbers] lists: got {value!r}")
    if len(value) > MAX_PROMPTS_PER_ROW:
        raise InvalidInputError(
            f"{key} has {len(value)} entries; at most {MAX_PROMPTS_PER_ROW} per row"
        )
    if not value:
        return None
    if not all(
        isinstance(entry, list)
        and len(entry) == width
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in entry)
        for entry in value
    ):
        raise InvalidInputError(
            f"{key} must be a list of [{width} numbers] lists: got {value!r:.120}"
        )
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{key} must be finite numbers: got {value!r:.120}")
    return array.astype(dtype)


def _labels(value: object, points: NDArray[np.float32] | None) -> NDArray[np.int64] | None:
    if points is None:
        if value not in (None, []):
            raise InvalidInputError("labels given without points: add a points column")
        return None
    if value is None:
        return np.ones(len(points), dtype=np.int64)
    if not isinstance(value, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in value
    ):
        raise InvalidInputError(f"labels must be a list of integers: got {value!r}")
    if len(value) != len(points):
        raise InvalidInputError(
            f"labels must have one entry per point: got {len(points)} points and "
            f"{len(value)} labels"
        )
    return np.asarray(value, dtype=np.int64)
