"""The output folder of a batch run: shards, the journal, resume keys, errors, COCO.

Layout of ``OUTPUT/``::

    part-<run>-<n>.parquet   (or .jsonl)   finished shards, one row per image
    _journal/part-<run>-<n>.jsonl          rows of the shard being filled
    _errors.jsonl                          one line per image that failed
    _lock                                  held by the run writing here

Each finished image is appended to the journal at once (and flushed to disk),
so an interrupted run loses at most the images in flight. When the journal
holds ``shard_size`` rows they are written as a shard through a temporary file
renamed into place: a reader never sees half a shard. The next run turns any
journal left behind into its shard before it starts (only complete lines: a
line cut by the interruption is dropped, and that image is done again).
Readers take ``part-*`` files only; names beginning with ``_`` or ``.`` are
bookkeeping.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

from edgesam._atomic import atomic_writer
from edgesam.batch._manifest import NAME_COLUMNS, OUTPUT_COLUMNS
from edgesam.errors import InvalidInputError, MissingExtraError

__all__ = [
    "ERRORS_FILE",
    "OutputFormat",
    "ShardWriter",
    "completed_keys",
    "iter_rows",
    "lock_output",
    "record_error",
    "recover_journals",
    "shard_files",
    "write_coco",
]

OutputFormat = Literal["parquet", "jsonl"]
ERRORS_FILE = "_errors.jsonl"
JOURNAL_DIR = "_journal"
LOCK_FILE = "_lock"
SUFFIXES = {"parquet": ".parquet", "jsonl": ".jsonl"}


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as err:
        raise MissingExtraError(
            'Parquet output needs pyarrow: pip install "edgesam[batch]" (or use JSONL output)'
        ) from err
    return pyarrow


def mask_type() -> Any:
    """The Arrow type of one mask record."""
    pa = _pyarrow()
    return pa.struct(
        [
            ("segmentation", pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])),
            ("score", pa.float64()),
            ("stability_score", pa.float64()),
            ("bbox", pa.list_(pa.float64())),
            ("area", pa.int64()),
            ("prompt_index", pa.int64()),
        ]
    )


def output_fields() -> list[Any]:
    """The Arrow fields of the columns every output row gains."""
    pa = _pyarrow()
    return [
        pa.field("sha256", pa.string()),
        pa.field("height", pa.int64()),
        pa.field("width", pa.int64()),
        pa.field("model_fingerprint", pa.string()),
        pa.field("masks", pa.list_(mask_type())),
    ]


def rows_to_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """An Arrow table of output rows: pass-through columns inferred, output columns typed."""
    pa = _pyarrow()
    names = dict.fromkeys(key for row in rows for key in row)
    passed = [key for key in names if key not in OUTPUT_COLUMNS]
    arrays: list[Any] = []
    fields: list[Any] = []
    for key in passed:
        array = pa.array([row.get(key) for row in rows])
        arrays.append(array)
        fields.append(pa.field(key, array.type))
    for output in output_fields():
        arrays.append(pa.array([row[output.name] for row in rows], type=output.type))
        fields.append(output)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _shard_bytes(rows: Sequence[Mapping[str, Any]], output_format: OutputFormat) -> bytes:
    if output_format == "jsonl":
        return b"".join(_json_line(row) for row in rows)
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(rows_to_table(rows), buffer, compression="zstd")
    return buffer.getvalue()


def _json_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, separators=(",", ":"), allow_nan=False) + "\n").encode()


def shard_files(output: Path) -> list[Path]:
    """The finished shards in ``output``, in the order runs wrote them."""
    if not output.is_dir():
        return []
    return sorted(
        path
        for path in output.iterdir()
        if path.name.startswith("part-") and path.suffix in (".parquet", ".jsonl")
    )


def iter_rows(output: Path, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every row of every finished shard in ``output`` (optionally only some columns)."""
    for shard in shard_files(output):
        if shard.suffix == ".jsonl":
            with shard.open("rb") as stream:
                for line in stream:
                    row = json.loads(line)
                    yield row if columns is None else {k: row.get(k) for k in columns}
        else:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(shard)
            present = parquet.schema_arrow.names
            wanted = None if columns is None else [c for c in columns if c in present]
            for batch in parquet.iter_batches(columns=wanted):
                for row in batch.to_pylist():
                    yield row if columns is None else {k: row.get(k) for k in columns}


def row_name(row: Mapping[str, Any]) -> str | None:
    """The image's name in an output row: its ``path``, else its ``uri``."""
    for key in NAME_COLUMNS:
        value = row.get(key)
        if isinstance(value, str):
            return value
    return None


def completed_keys(output: Path) -> set[tuple[str, str]]:
    """``(name, sha256)`` of every image already in ``output``'s shards."""
    keys = set()
    for row in iter_rows(output, [*NAME_COLUMNS, "sha256"]):
        name = row_name(row)
        if name is not None and isinstance(row.get("sha256"), str):
            keys.add((name, row["sha256"]))
    return keys


@contextlib.contextmanager
def lock_output(output: Path) -> Iterator[None]:
    """Hold ``output/_lock`` so that two runs never write one folder at once."""
    output.mkdir(parents=True, exist_ok=True)
    handle = (output / LOCK_FILE).open("a")
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run at a time is on the user
            yield
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise InvalidInputError(
                f"output {str(output)!r} is being written by another run (its _lock is "
                "held): wait for it, or choose another output folder"
            ) from err
        yield
    finally:
        handle.close()


def check_output_folder(output: Path, argument: str = "output") -> None:
    """Refuse an ``output`` that exists and is not a folder."""
    if output.exists() and not output.is_dir():
        raise InvalidInputError(
            f"{argument} {str(output)!r} is a file, not a folder: choose a folder path"
        )


def recover_journals(output: Path, output_format: OutputFormat) -> int:
    """Turn journals a stopped run left behind into shards; return the rows recovered."""
    folder = output / JOURNAL_DIR
    if not folder.is_dir():
        return 0
    recovered = 0
    for journal in sorted(folder.glob("part-*.jsonl")):
        stem = journal.stem
        if any((output / f"{stem}{suffix}").exists() for suffix in SUFFIXES.values()):
            journal.unlink()  # the shard was written; the run stopped before removing this
            continue
        rows = []
        with journal.open("rb") as stream:
            for line in stream:
                try:
                    rows.append(json.loads(line))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    break  # the line being written when the run stopped
        if rows:
            with atomic_writer(output / f"{stem}{SUFFIXES[output_format]}", "output") as out:
                out.write(_shard_bytes(rows, output_format))
            recovered += len(rows)
        journal.unlink()
    return recovered


def new_run_id() -> str:
    """A name for one run's shards that sorts by start time."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return f"{now}-{secrets.token_hex(3)}"


class ShardWriter:
    """Append finished rows to a journal and roll them into shards of ``shard_size``.

    Parameters
    ----------
    output : Path
        The output folder (exists).
    output_format : {"parquet", "jsonl"}
    shard_size : int
        Rows per shard.
    run_id : str
        Prefix of this run's shard names.
    """

    def __init__(
        self, output: Path, output_format: OutputFormat, shard_size: int, run_id: str
    ) -> None:
        self.output = output
        self.output_format = output_format
        self.shard_size = shard_size
        self.run_id = run_id
        self.shards: list[Path] = []
        self._rows: list[dict[str, Any]] = []
        self._sequence = 0
        self._journal: BinaryIO | None = None
        (output / JOURNAL_DIR).mkdir(exist_ok=True)

    @property
    def _stem(self) -> str:
        return f"part-{self.run_id}-{self._sequence:05d}"

    def add(self, row: dict[str, Any]) -> None:
        """Record one finished image; it survives an interruption from now on."""
        line = _json_line(row)
        if self._journal is None:
            self._journal = (self.output / JOURNAL_DIR / f"{self._stem}.jsonl").open("ab")
        self._journal.write(line)
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._rows.append(row)
        if len(self._rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the rows gathered so far as a shard (nothing if there are none)."""
        if not self._rows:
            return
        target = self.output / f"{self._stem}{SUFFIXES[self.output_format]}"
        with atomic_writer(target, "output") as stream:
            stream.write(_shard_bytes(self._rows, self.output_format))
        self.shards.append(target)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        (self.output / JOURNAL_DIR / f"{self._stem}.jsonl").unlink(missing_ok=True)
        self._rows = []
        self._sequence += 1

    def close(self) -> None:
        """Flush and remove the empty journal folder."""
        self.flush()
        with contextlib.suppress(OSError):
            (self.output / JOURNAL_DIR).rmdir()


def record_error(output: Path, name: str, reason: str, run_id: str) -> None:
    """Append one failed image to ``output/_errors.jsonl``."""
    line = {
        "path": name,
        "error": reason,
        "run": run_id,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with (output / ERRORS_FILE).open("ab") as stream:
        stream.write(_json_line(line))


def write_coco(output: Path, destination: Path, argument: str = "coco") -> tuple[int, int]:
    """Write one COCO JSON over every image in ``output``'s shards.

    An image present more than once (its file changed between runs) counts
    with its latest row. Image ids follow the order of first appearance,
    annotation ids run over all masks; one category, ``object``. Returns the
    numbers of images and annotations.
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in iter_rows(output):
        name = row_name(row)
        if name is not None:
            latest[name] = row
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (name, row) in enumerate(latest.items(), start=1):
        images.append(
            {"id": image_id, "file_name": name, "height": row["height"], "width": row["width"]}
        )
        for mask in row["masks"]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": mask["segmentation"],
                    "area": mask["area"],
                    "bbox": mask["bbox"],
                    "iscrowd": 0,
                    "score": mask["score"],
                    "stability_score": mask["stability_score"],
                    "prompt_index": mask["prompt_index"],
                }
            )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "object", "supercategory": "object"}],
    }
    with atomic_writer(destination, argument) as stream:
        stream.write(json.dumps(coco, separators=(",", ":")).encode())
    return len(images), len(annotations)
