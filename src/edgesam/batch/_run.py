"""``run_batch``: the local pipeline (no Ray).

The next images are read, hashed, decoded and preprocessed by a small thread
pool while the model works on the current one (a bounded prefetch: at most
``prefetch`` images wait in memory); finished images go to the output through
:class:`~edgesam.batch._output.ShardWriter`.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from edgesam._model import EdgeSam
from edgesam._predictor import SamPredictor
from edgesam._providers import ProviderSpec
from edgesam._validate import integer
from edgesam.batch._job import Prepared, hash_bytes, output_row, prepare, read_bytes, segment
from edgesam.batch._manifest import Item, read_items
from edgesam.batch._output import (
    OutputFormat,
    ShardWriter,
    check_output_folder,
    completed_keys,
    lock_output,
    new_run_id,
    record_error,
    recover_journals,
    write_coco,
)
from edgesam.errors import EdgeSamError, InvalidInputError

__all__ = ["BatchSummary", "load_model", "run_batch"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: ``edgesam everything``'s options, which ``everything_options`` may set.
EVERYTHING_OPTIONS = (
    "points_per_side",
    "points_per_batch",
    "pred_iou_thresh",
    "stability_score_thresh",
    "min_mask_region_area",
    "crop_n_layers",
)


@dataclass
class BatchSummary:
    """What a run did.

    Attributes
    ----------
    segmented : list of str
        Images segmented by this run (their names as the input gives them).
    already_done : list of str
        Images skipped because the output already holds them (same name and content).
    failed : list of tuple of (str, str)
        Images (or manifest rows) that failed, with the reason; also in ``_errors.jsonl``.
    recovered : int
        Finished images an interrupted earlier run left in its journal, now in a shard.
    shards : list of Path
        Shards this run wrote.
    coco : tuple of (int, int), optional
        Images and annotations in the COCO file, when one was asked for.
    """

    segmented: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    recovered: int = 0
    shards: list[Path] = field(default_factory=list)
    coco: tuple[int, int] | None = None


def load_model(
    model: str | EdgeSam = "edge_sam_3x",
    *,
    encoder: PathLike | None = None,
    decoder: PathLike | None = None,
    providers: Sequence[ProviderSpec] | None = None,
    session_options: Any = None,
) -> EdgeSam:
    """The model a run uses: an ``EdgeSam``, local files, or an official model's name."""
    if isinstance(model, EdgeSam):
        return model
    if (encoder is None) != (decoder is None):
        raise InvalidInputError(
            "encoder and decoder go together: give both files, or neither (to use model=)"
        )
    if encoder is not None and decoder is not None:
        return EdgeSam.from_files(
            encoder, decoder, providers=providers, session_options=session_options
        )
    return EdgeSam.from_pretrained(model, providers=providers, session_options=session_options)


def check_everything_options(options: Mapping[str, object] | None) -> dict[str, object]:
    """``options`` as a dict, refusing names the automatic mask generator's CLI lacks."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(EVERYTHING_OPTIONS))
    if unknown:
        raise InvalidInputError(
            f"everything_options has unknown option(s) {unknown}: the options are "
            f"{', '.join(EVERYTHING_OPTIONS)}"
        )
    return options


def read_run_inputs(
    source: PathLike,
    output: PathLike,
    output_format: OutputFormat,
    *,
    everything: bool,
    recursive: bool,
) -> tuple[Path, list[Item]]:
    """The checks every run starts with (local or Ray): ``(output folder, items of source)``."""
    if output_format not in get_args(OutputFormat):
        raise InvalidInputError(
            f"output_format must be 'parquet' or 'jsonl': got {output_format!r}"
        )
    output = Path(output)
    check_output_folder(output)
    if Path(source).is_dir() and not everything:
        raise InvalidInputError(
            f"source {str(source)!r} is a folder, which has no prompts: pass everything=True "
            "(--everything), or a manifest with boxes/points"
        )
    return output, read_items(source, recursive=recursive, everything=everything)


def failure_recorder(
    output: Path, run_id: str, summary: BatchSummary
) -> Callable[[str, str], None]:
    """``fail(name, reason)``: log a failed image, add it to ``_errors.jsonl`` and ``summary``."""

    def fail(name: str, reason: str) -> None:
        logger.warning("skipping %s: %s", name, reason)
        record_error(output, name, reason, run_id)
        summary.failed.append((name, reason))

    return fail


def run_batch(
    source: PathLike,
    output: PathLike,
    *,
    model: str | EdgeSam = "edge_sam_3x",
    encoder: PathLike | None = None,
    decoder: PathLike | None = None,
    providers: Sequence[ProviderSpec] | None = None,
    everything: bool = False,
    everything_options: Mapping[str, object] | None = None,
    recursive: bool = False,
    output_format: OutputFormat = "parquet",
    shard_size: int = 1000,
    prefetch: int = 2,
    coco: PathLike | None = None,
    progress: bool = False,
) -> BatchSummary:
    """Segment every image of a folder or manifest into ``output``, resumably.

    Parameters
    ----------
    source : str or os.PathLike
        A folder of images, or a manifest (``.jsonl``, ``.csv``, ``.parquet``)
        with one row per image: ``path`` (or ``uri``), optional ``boxes``
        (``[[x0, y0, x1, y1], ...]``), ``points`` (``[[x, y], ...]``) and
        ``labels`` (``[1, 0, ...]``; default all 1), and any other columns,
        which are passed through. Relative paths are relative to the
        manifest's folder; in CSV, the prompt columns hold JSON lists.
    output : str or os.PathLike
        Output folder: ``part-*.parquet`` (or ``.jsonl``) shards, one row per
        image, and ``_errors.jsonl``. Images already in it (same name, same
        content sha256) are skipped, so a re-run resumes.
    model : str or EdgeSam
        Official model name (downloaded once) or a loaded model.
    encoder, decoder : str or os.PathLike, optional
        Local ``.onnx`` files instead of ``model``.
    providers : sequence, optional
        Execution providers, best first (default: automatic).
    everything : bool
        Segment everything (``SamAutomaticMaskGenerator``) instead of prompts.
    everything_options : mapping, optional
        The generator's options, as in ``edgesam everything``:
        ``points_per_side``, ``points_per_batch``, ``pred_iou_thresh``,
        ``stability_score_thresh``, ``min_mask_region_area``, ``crop_n_layers``.
    recursive : bool
        For a folder, also its sub-folders.
    output_format : {"parquet", "jsonl"}
        Shard format.
    shard_size : int
        Images per shard.
    prefetch : int
        Images read and preprocessed ahead of the model (0: none).
    coco : str or os.PathLike, optional
        Afterwards, write one COCO JSON over everything in ``output`` here.
    progress : bool
        Show a progress bar (images/s, ETA) on stderr.

    Returns
    -------
    BatchSummary

    Raises
    ------
    InvalidInputError
        For a source, option or manifest that cannot be used (before any image runs).
    """
    integer(shard_size, "shard_size")
    integer(prefetch, "prefetch", minimum=0)
    options = check_everything_options(everything_options)
    output, items = read_run_inputs(
        source, output, output_format, everything=everything, recursive=recursive
    )
    edge_sam = load_model(model, encoder=encoder, decoder=decoder, providers=providers)
    predictor = SamPredictor(edge_sam)
    generator = None
    if everything:
        from edgesam.amg import SamAutomaticMaskGenerator

        generator = SamAutomaticMaskGenerator(
            predictor,
            output_mode="coco_rle",
            **options,  # type: ignore[arg-type]
        )
    summary = BatchSummary()
    with lock_output(output):
        summary.recovered = recover_journals(output, output_format)
        done = completed_keys(output)
        run_id = new_run_id()
        writer = ShardWriter(output, output_format, shard_size, run_id)
        fail = failure_recorder(output, run_id, summary)
        runnable = []
        for item in items:
            if item.problem is not None:
                fail(item.name, item.problem)
            elif not everything and not item.has_prompts:
                fail(item.name, "no prompts: the row has no boxes or points (or use everything)")
            else:
                runnable.append(item)
        bar = _progress(len(runnable), progress)
        try:
            for item, result in _prefetched(runnable, done, everything, prefetch):
                if isinstance(result, str):  # already done
                    summary.already_done.append(item.name)
                elif isinstance(result, EdgeSamError | OSError):
                    fail(item.name, str(result))
                else:
                    try:
                        masks = segment(result, predictor, generator)
                    except (EdgeSamError, OSError) as err:
                        fail(item.name, str(err))
                    else:
                        writer.add(output_row(result, masks, edge_sam.fingerprint))
                        summary.segmented.append(item.name)
                bar.update(1)
        finally:
            bar.close()
            writer.close()
        summary.shards = writer.shards
        if coco is not None:
            summary.coco = write_coco(output, Path(coco))
    return summary


Outcome = Prepared | str | EdgeSamError | OSError


def _load(item: Item, done: set[tuple[str, str]], everything: bool) -> Outcome:
    try:
        data = read_bytes(item.location)
        sha256 = hash_bytes(data)
        if (item.name, sha256) in done:
            return "done"
        return prepare(item, data, sha256, everything=everything)
    except (EdgeSamError, OSError) as err:
        return err


def _prefetched(
    items: Sequence[Item], done: set[tuple[str, str]], everything: bool, prefetch: int
) -> Iterator[tuple[Item, Outcome]]:
    """``(item, outcome)`` in input order, with up to ``prefetch`` images loaded ahead."""
    if prefetch == 0:
        for item in items:
            yield item, _load(item, done, everything)
        return
    with ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="edgesam-batch") as pool:
        pending: deque[tuple[Item, Future[Outcome]]] = deque()
        queue = iter(items)
        try:
            for item in queue:
                pending.append((item, pool.submit(_load, item, done, everything)))
                if len(pending) > prefetch:
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()
        finally:
            for _, future in pending:
                future.cancel()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from huggingface_hub.utils import tqdm  # type: ignore[attr-defined]

    return tqdm(total=total, desc="segmenting", unit="image")  # type: ignore[no-untyped-call]
