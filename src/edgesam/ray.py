"""EdgeSAM on Ray Data: the batch pipeline's steps as CPU tasks and a model actor pool.

:func:`segment` adds masks to a Ray ``Dataset`` whose rows name images
(``path`` or ``uri``) and optionally carry prompts (``boxes``, ``points``,
``labels``), or hold decoded images (``image``, as ``ray.data.read_images``
makes them). Reading, hashing, decoding and preprocessing run as ordinary CPU
tasks; the encoder and decoder run in an actor pool
(``map_batches`` with ``ActorPoolStrategy``), one :class:`~edgesam.EdgeSam`
per actor, with onnxruntime's intra-op threads set to the actor's CPUs and
CUDA first when the actor has a GPU; each actor call encodes its batch of
images with :meth:`~edgesam.EdgeSam.encode_batch` (one run with an encoder
made by :func:`edgesam.export.batch_encoder`). Actors are restarted and their tasks
retried when a worker dies, so a killed actor costs time, not rows.

:func:`run_batch_on_ray` is ``edgesam batch --ray``: the same inputs, output
folder, resume and error file as :func:`edgesam.batch.run_batch`, with the
rows written by Ray Data's Parquet writer. The masks are identical to the
local pipeline's.

Needs the ``ray`` extra: ``pip install "edgesam[ray]"``. ``import edgesam``
never imports this module.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from edgesam._providers import ProviderSpec
from edgesam._validate import integer, number
from edgesam.batch._job import Prepared, hash_bytes, output_row, prepare, read_bytes
from edgesam.batch._job import segment as segment_image
from edgesam.batch._manifest import Item, _item
from edgesam.batch._output import (
    SUFFIXES,
    OutputFormat,
    ShardWriter,
    completed_keys,
    lock_output,
    new_run_id,
    recover_journals,
    rows_to_table,
    write_coco,
)
from edgesam.batch._run import (
    BatchSummary,
    check_everything_options,
    failure_recorder,
    read_run_inputs,
)
from edgesam.errors import EdgeSamError, InvalidInputError, MissingExtraError

try:
    import ray
    import ray.data
except ImportError as err:  # pragma: no cover - the extra is installed in CI
    raise MissingExtraError('edgesam.ray needs Ray Data: pip install "edgesam[ray]"') from err

__all__ = ["PromptMode", "run_batch_on_ray", "segment"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
PromptMode = Literal["both", "boxes", "points", "everything"]
#: CPUs each reading/decoding/preprocessing task asks for.
PREPARE_CPUS = 0.5

_BOOKKEEPING = ("_name", "_error", "_skip")


class _Prepare:
    """The CPU stage: one input row -> name, sha256, encoder input (or RGB) as bytes."""

    def __init__(self, base_dir: str, mode: PromptMode, done: frozenset[tuple[str, str]]) -> None:
        self.base_dir = Path(base_dir)
        self.mode = mode
        self.done = done

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if "_row" in row:  # from run_batch_on_ray: the manifest row, as JSON
            row = json.loads(row["_row"])
        image = row.pop("image", None)
        if image is not None and not any(isinstance(row.get(k), str) for k in ("path", "uri")):
            row["path"] = ""
        item = _item(0, row, self.base_dir)
        if self.mode in ("boxes", "points"):
            drop = "points" if self.mode == "boxes" else "boxes"
            item = Item(
                item.index,
                item.name,
                item.location,
                item.columns,
                None if drop == "boxes" else item.boxes,
                None if drop == "points" else item.points,
                None if drop == "points" else item.labels,
                item.problem,
            )
        result: dict[str, Any] = {
            "_row": json.dumps(item.columns or row, default=str),
            "_name": item.name,
            "_sha256": "",
            "_error": "",
            "_skip": False,
            "_payload": b"",
            "_size": [0, 0, 0, 0],
            "_prompts": "{}",
        }
        everything = self.mode == "everything"
        try:
            if item.problem is not None and not (image is not None and item.name == ""):
                raise InvalidInputError(item.problem)
            if not everything and not item.has_prompts:
                raise InvalidInputError("no prompts: the row has no boxes or points")
            if image is not None:
                prepared = _from_array(item, np.asarray(image), everything)
            else:
                data = read_bytes(item.location)
                sha256 = hash_bytes(data)
                if (item.name, sha256) in self.done:
                    result.update(_sha256=sha256, _skip=True)
                    return result
                prepared = prepare(item, data, sha256, everything=everything)
        except (EdgeSamError, OSError) as err:
            result["_error"] = str(err)
            return result
        height, width = int(prepared.rgb.shape[0]), int(prepared.rgb.shape[1])
        if prepared.image_input is not None and prepared.input_size is not None:
            payload = prepared.image_input.tobytes()
            size = [height, width, *prepared.input_size]
        else:
            payload = np.ascontiguousarray(prepared.rgb).tobytes()
            size = [height, width, 0, 0]
        prompts = {
            key: None if value is None else value.tolist()
            for key, value in (
                ("boxes", prepared.item.boxes),
                ("points", prepared.item.points),
                ("labels", prepared.item.labels),
            )
        }
        result.update(
            _sha256=prepared.sha256, _payload=payload, _size=size, _prompts=json.dumps(prompts)
        )
        return result


def _from_array(item: Item, image: np.ndarray[Any, Any], everything: bool) -> Prepared:
    from edgesam._image import load_rgb
    from edgesam._transforms import preprocess_image

    rgb = load_rgb(image)
    sha256 = hash_bytes(rgb.tobytes())
    if everything:
        return Prepared(item, sha256, rgb)
    image_input, input_size = preprocess_image(rgb)
    return Prepared(item, sha256, rgb, image_input, input_size)


class _Segmenter:
    """The model stage: one EdgeSam per actor, rows of the CPU stage in, output rows out."""

    def __init__(
        self,
        model: str,
        encoder: str | None,
        decoder: str | None,
        providers: Sequence[ProviderSpec] | None,
        num_cpus: float,
        everything_options: Mapping[str, Any] | None,
    ) -> None:
        from edgesam import SamPredictor, default_session_options
        from edgesam.batch._run import load_model

        options = default_session_options()
        options.intra_op_num_threads = max(1, round(num_cpus))
        if providers is None:
            providers = ["cuda", "cpu"] if ray.get_gpu_ids() else ["cpu"]
        self.model = load_model(
            model, encoder=encoder, decoder=decoder, providers=providers, session_options=options
        )
        self.predictor = SamPredictor(self.model)
        self.generator = None
        if everything_options is not None:
            from edgesam.amg import SamAutomaticMaskGenerator

            self.generator = SamAutomaticMaskGenerator(
                self.predictor, output_mode="coco_rle", **dict(everything_options)
            )

    def __call__(self, batch: Any) -> Any:
        rows = batch.to_pylist()
        outputs: list[dict[str, Any] | None] = [None] * len(rows)
        ready: list[tuple[int, Prepared]] = []
        for index, row in enumerate(rows):
            columns = json.loads(row["_row"])
            outcome = {"_name": row["_name"], "_error": row["_error"], "_skip": row["_skip"]}
            if row["_error"] or row["_skip"]:
                outputs[index] = {**columns, **_empty(), **outcome}
            else:
                ready.append((index, self._prepared(row, columns)))
        embeddings = self._encode([prepared for _, prepared in ready])
        for (index, prepared), embedding in zip(ready, embeddings, strict=True):
            outcome = {"_name": rows[index]["_name"], "_error": "", "_skip": False}
            try:
                if isinstance(embedding, BaseException):
                    raise embedding
                masks = segment_image(prepared, self.predictor, self.generator, embedding)
            except (EdgeSamError, OSError) as err:
                outcome["_error"] = str(err)
                outputs[index] = {**prepared.item.columns, **_empty(), **outcome}
                continue
            outputs[index] = {**output_row(prepared, masks, self.model.fingerprint), **outcome}
        return rows_to_table([row for row in outputs if row is not None])

    def _encode(
        self, prepared: list[Prepared]
    ) -> list[np.ndarray[Any, Any] | BaseException | None]:
        """The batch's embeddings in one encoder call (``EdgeSam.encode_batch``)."""
        if self.generator is not None or not prepared:
            return [None] * len(prepared)
        stack = np.concatenate([p.image_input for p in prepared if p.image_input is not None])
        try:
            embeddings = self.model.encode_batch(stack)
        except (EdgeSamError, OSError) as err:
            return [err] * len(prepared)
        return [embeddings[i : i + 1] for i in range(len(prepared))]

    def _prepared(self, row: Mapping[str, Any], columns: dict[str, Any]) -> Prepared:
        height, width, input_h, input_w = row["_size"]
        prompts = json.loads(row["_prompts"])
        item = Item(
            0,
            row["_name"],
            "",
            columns,
            None if prompts["boxes"] is None else np.asarray(prompts["boxes"], np.float32),
            None if prompts["points"] is None else np.asarray(prompts["points"], np.float32),
            None if prompts["labels"] is None else np.asarray(prompts["labels"], np.int64),
        )
        payload = row["_payload"]
        if self.generator is not None:
            rgb = np.frombuffer(payload, dtype=np.uint8).reshape(height, width, 3)
            return Prepared(item, row["_sha256"], rgb)
        image_input = np.frombuffer(payload, dtype=np.float32).reshape(1, 3, 1024, 1024)
        # Only the size of the image is used from here on.
        shape_only = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (height, width, 3))
        return Prepared(item, row["_sha256"], shape_only, image_input, (input_h, input_w))


def _empty() -> dict[str, Any]:
    return {"sha256": "", "height": 0, "width": 0, "model_fingerprint": "", "masks": []}


def _pipeline(
    ds: ray.data.Dataset,
    *,
    model: str,
    encoder: PathLike | None,
    decoder: PathLike | None,
    providers: Sequence[ProviderSpec] | None,
    prompts: PromptMode,
    actors: int,
    num_cpus: float,
    num_gpus: float,
    everything_options: Mapping[str, object] | None,
    base_dir: PathLike | None,
    batch_size: int,
    done: frozenset[tuple[str, str]] = frozenset(),
) -> ray.data.Dataset:
    if prompts not in get_args(PromptMode):
        raise InvalidInputError(f"prompts must be one of {get_args(PromptMode)}: got {prompts!r}")
    integer(actors, "actors")
    integer(batch_size, "batch_size")
    number(num_cpus, "num_cpus", (0.0, math.inf))
    number(num_gpus, "num_gpus", (0.0, math.inf))
    options = check_everything_options(everything_options) if prompts == "everything" else None
    base = str(Path(base_dir) if base_dir is not None else Path.cwd())
    # An instance, not the class: the CPU stage runs as plain tasks, not actors.
    prepared = ds.map(_Prepare(base, prompts, done), num_cpus=PREPARE_CPUS)
    return prepared.map_batches(
        _Segmenter,
        fn_constructor_kwargs={
            "model": model,
            "encoder": None if encoder is None else str(encoder),
            "decoder": None if decoder is None else str(decoder),
            "providers": providers,
            "num_cpus": num_cpus,
            "everything_options": options,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        # Ray Data restarts a dead actor and retries its batch (max_restarts and
        # max_task_retries default to -1 in its actor pools): no row lost or doubled.
    )


def segment(
    ds: ray.data.Dataset,
    *,
    model: str = "edge_sam_3x",
    encoder: PathLike | None = None,
    decoder: PathLike | None = None,
    providers: Sequence[ProviderSpec] | None = None,
    prompts: PromptMode = "both",
    actors: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    everything_options: Mapping[str, object] | None = None,
    base_dir: PathLike | None = None,
    batch_size: int = 4,
) -> ray.data.Dataset:
    """Add EdgeSAM masks to every row of a Ray ``Dataset``.

    Parameters
    ----------
    ds : ray.data.Dataset
        Rows with ``path`` or ``uri`` (local paths, relative to ``base_dir``,
        or URIs pyarrow can open such as ``s3://``), or with ``image`` (an
        HxWx3 uint8 array, as ``ray.data.read_images`` gives); optional
        ``boxes`` (``[[x0, y0, x1, y1], ...]``), ``points`` (``[[x, y], ...]``)
        and ``labels``; other columns are passed through as JSON values.
    model : str
        Official model name; each actor downloads (or finds cached) its files.
    encoder, decoder : str or os.PathLike, optional
        Local ``.onnx`` files instead (visible to every worker).
    providers : sequence, optional
        Execution providers; default CUDA then CPU when the actor has a GPU,
        else CPU.
    prompts : {"both", "boxes", "points", "everything"}
        Which prompts to answer: the boxes (one single-mask prompt each), the
        points (one more prompt, as ``edgesam segment`` answers clicks), both,
        or no prompts but everything in the image.
    actors : int
        Model actors in the pool.
    num_cpus, num_gpus : float
        Resources per actor (fractions pack several actors on one CPU or GPU);
        onnxruntime gets ``round(num_cpus)`` intra-op threads (at least 1).
    everything_options : mapping, optional
        Generator options for ``prompts="everything"``, as in
        :func:`edgesam.batch.run_batch`.
    base_dir : str or os.PathLike, optional
        Folder that relative paths are relative to (default: the current one).
    batch_size : int
        Rows per actor call.

    Returns
    -------
    ray.data.Dataset
        The input columns (``image`` dropped) plus ``sha256`` (of the file,
        or of the pixels for ``image`` rows), ``height``, ``width``,
        ``model_fingerprint``, ``masks`` (records as in
        :func:`edgesam.batch.run_batch`) and ``error``: empty, or why the row
        failed (its masks are then empty).
    """
    out = _pipeline(
        ds,
        model=model,
        encoder=encoder,
        decoder=decoder,
        providers=providers,
        prompts=prompts,
        actors=actors,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        everything_options=everything_options,
        base_dir=base_dir,
        batch_size=batch_size,
    )
    renamed: ray.data.Dataset = out.drop_columns(["_name", "_skip"]).rename_columns(
        {"_error": "error"}
    )
    return renamed


def _select(table: Any, *, good: bool) -> Any:
    import pyarrow.compute as pc

    ok = pc.and_(pc.equal(table["_error"], ""), pc.invert(table["_skip"]))
    return table.filter(ok if good else pc.invert(ok))


def _drop_bookkeeping(table: Any) -> Any:
    return _select(table, good=True).drop_columns(list(_BOOKKEEPING))


def _check_room(actors: int, num_cpus: float) -> None:
    """Refuse actors that would leave no CPU for the reading tasks (Ray would wait forever)."""
    total = float(ray.cluster_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
    if actors * num_cpus > total - PREPARE_CPUS:
        raise InvalidInputError(
            f"{actors} actor(s) x {num_cpus} CPUs leave less than {PREPARE_CPUS} of the "
            f"cluster's {total:g} CPUs for reading and preprocessing, and the run would "
            "wait forever: lower --actors or --cpus-per-actor (fractions such as 0.5 work)"
        )


def connect(address: str | None) -> None:
    """Join a Ray cluster: ``"auto"`` honours ``RAY_ADDRESS`` or starts a local one."""
    if ray.is_initialized():
        return
    if address in (None, "auto"):
        if os.environ.get("RAY_ADDRESS"):
            ray.init()
        else:
            ray.init(include_dashboard=False)
    else:
        ray.init(address=address)


def run_batch_on_ray(
    source: PathLike,
    output: PathLike,
    *,
    address: str | None = "auto",
    actors: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    model: str = "edge_sam_3x",
    encoder: PathLike | None = None,
    decoder: PathLike | None = None,
    providers: Sequence[ProviderSpec] | None = None,
    everything: bool = False,
    everything_options: Mapping[str, object] | None = None,
    recursive: bool = False,
    output_format: OutputFormat = "parquet",
    coco: PathLike | None = None,
    progress: bool = False,
    batch_size: int = 4,
) -> BatchSummary:
    """:func:`edgesam.batch.run_batch` on Ray Data: same inputs, output folder and resume.

    ``address``: ``"auto"`` (``RAY_ADDRESS``'s cluster, else a new local one),
    or a cluster address; ignored when Ray is already initialised. The other
    parameters are as in :func:`run_batch` and :func:`segment`. Parquet rows
    are written by ``Dataset.write_parquet`` into ``OUTPUT/_ray-<run>/`` and
    moved into place as ``part-<run>-<n>.parquet`` when the run succeeds;
    JSONL shards are written by the driver as in the local pipeline.
    """
    output, items = read_run_inputs(
        source, output, output_format, everything=everything, recursive=recursive
    )
    source_path = Path(source)
    base_dir = source_path if source_path.is_dir() else source_path.parent
    connect(address)
    _check_room(actors, num_cpus)
    ray.data.DataContext.get_current().enable_progress_bars = progress
    summary = BatchSummary()
    with lock_output(output):
        summary.recovered = recover_journals(output, output_format)
        for stale in output.glob("_ray-*"):
            shutil.rmtree(stale, ignore_errors=True)
        done = frozenset(completed_keys(output))
        run_id = new_run_id()
        fail = failure_recorder(output, run_id, summary)
        rows = []
        for item in items:
            if item.problem is not None:
                fail(item.name, item.problem)
            else:
                rows.append({"_row": json.dumps(item.columns)})
        if rows:
            ds = ray.data.from_items(rows)
            results = _pipeline(
                ds,
                model=model,
                encoder=None if encoder is None else Path(encoder).resolve(),
                decoder=None if decoder is None else Path(decoder).resolve(),
                providers=providers,
                prompts="everything" if everything else "both",
                actors=actors,
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                everything_options=everything_options,
                base_dir=base_dir.resolve(),
                batch_size=batch_size,
                done=done,
            ).materialize()
            for outcome in results.select_columns(list(_BOOKKEEPING)).iter_rows():
                if outcome["_skip"]:
                    summary.already_done.append(outcome["_name"])
                elif outcome["_error"]:
                    fail(outcome["_name"], outcome["_error"])
                else:
                    summary.segmented.append(outcome["_name"])
            good = results.map_batches(_drop_bookkeeping, batch_format="pyarrow")
            summary.shards = _write(good, output, output_format, run_id)
        if coco is not None:
            summary.coco = write_coco(output, Path(coco))
    return summary


def _write(
    ds: ray.data.Dataset, output: Path, output_format: OutputFormat, run_id: str
) -> list[Path]:
    if output_format == "jsonl":
        writer = ShardWriter(output, "jsonl", 1000, run_id)
        batch: Any
        for batch in ds.iter_batches(batch_format="pyarrow"):
            for row in batch.to_pylist():
                writer.add(row)
        writer.close()
        return writer.shards
    staging = output / f"_ray-{run_id}"
    ds.write_parquet(str(staging))
    shards = []
    for index, written in enumerate(sorted(staging.glob("*.parquet"))):
        target = output / f"part-{run_id}-{index:05d}{SUFFIXES['parquet']}"
        os.replace(written, target)
        shards.append(target)
    shutil.rmtree(staging, ignore_errors=True)
    return shards
