"""The ``batch`` section: images/s of ``edgesam batch``, plain loop vs local vs Ray.

Two jobs over copies of the reference images (cycled to ``images`` files):
*boxes* (5 boxes per image, ``predict_batch(boxes=..., multimask_output=False)``)
and *everything* (the automatic mask generator at ``points_per_side``). Each job
is run by

- ``plain loop``: the single-process loop a user writes (``set_image(path)``,
  the prompts, RLE encoding), no output written;
- ``local pipeline``: ``run_batch`` with the bounded prefetch and Parquet
  output; ``local, no prefetch``: the same with ``prefetch=0`` (full run only);
- ``ray``: ``run_batch_on_ray`` on a local Ray (started before the clock with
  the machine's CPUs), one actor with all CPUs but half a one (left to the
  reading tasks); its time includes the actor loading the model and Ray Data's
  scheduling.

Both loops run once over one copy of each source image before the clock.
Everything runs on the CPU. Numbers are printed, never asserted;
``python -m benchmarks.batch`` prints the same as a Markdown table.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._report import Row

__all__ = [
    "BOXES",
    "FULL",
    "QUICK",
    "BatchSettings",
    "Timing",
    "batch_rows",
    "markdown_table",
    "measure",
    "runner_count",
    "to_rows",
]

logger = logging.getLogger("benchmarks")

BOXES = [
    [425, 600, 700, 875],
    [100, 50, 400, 300],
    [20, 20, 200, 180],
    [300, 100, 520, 330],
    [50, 250, 260, 500],
]
LOOP = "plain loop"


@dataclass(frozen=True)
class BatchSettings:
    """How much the section runs."""

    images: int  # per job
    points_per_side: int  # the everything job's grid
    prefetch: int = 2
    no_prefetch_row: bool = True  # also time run_batch with prefetch=0
    ray: bool = True


QUICK = BatchSettings(images=4, points_per_side=4, no_prefetch_row=False)
FULL = BatchSettings(images=8, points_per_side=8)


@dataclass(frozen=True)
class Timing:
    """One job run by one runner: its wall time, or why there is none."""

    job: str
    runner: str
    images: int
    seconds: float | None = None
    status: str = "ok"  # "ok", "not run" or "failed"
    note: str = ""


def runner_count(settings: BatchSettings) -> int:
    """Runners per job (what the time estimate multiplies by)."""
    return 2 + int(settings.no_prefetch_row) + int(settings.ray)


def _dataset(sources: Sequence[Path], folder: Path, count: int) -> tuple[Path, list[Path]]:
    """``count`` copies of ``sources`` (cycled) in ``folder``, and a boxes manifest."""
    folder.mkdir(parents=True)
    rows, images = [], []
    for index in range(count):
        source = sources[index % len(sources)]
        target = folder / f"{index:04d}{source.suffix.lower()}"
        shutil.copyfile(source, target)
        images.append(target)
        rows.append({"path": f"{folder.name}/{target.name}", "boxes": BOXES})
    manifest = folder.parent / "boxes.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest, images


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _quiet_ray() -> None:
    """Ray Data's progress bars and per-dataset INFO lines off, unless ``-v``."""
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def measure(
    encoder: Path,
    decoder: Path,
    sources: Sequence[Path],
    settings: BatchSettings,
) -> list[Timing]:
    """Time both jobs with every runner of ``settings``; pyarrow is needed, Ray optional."""
    import numpy as np

    from edgesam import EdgeSam, SamPredictor
    from edgesam.amg import SamAutomaticMaskGenerator, mask_to_coco_rle
    from edgesam.batch import run_batch

    if not sources:
        raise ValueError("no source images for the batch section")
    options = {"points_per_side": settings.points_per_side}
    count = settings.images
    work = Path(tempfile.mkdtemp(prefix="edgesam-batch-bench-"))
    timings: list[Timing] = []
    started_ray = False
    try:
        manifest, images = _dataset(sources, work / "data", count)
        model = EdgeSam.from_files(encoder, decoder, providers=["cpu"])

        def loop_boxes(images: Sequence[Path] = images) -> None:
            predictor = SamPredictor(model)
            for path in images:
                predictor.set_image(path)
                masks, _, _ = predictor.predict_batch(
                    boxes=np.array(BOXES, np.float32), multimask_output=False
                )
                [mask_to_coco_rle(mask[0]) for mask in masks]

        def loop_everything(images: Sequence[Path] = images) -> None:
            generator = SamAutomaticMaskGenerator(model, output_mode="coco_rle", **options)
            for path in images:
                generator.generate(path)

        # First-run costs (sessions, arenas for each image size) off the clock: both
        # loops once over one copy of each source image.
        loop_boxes(images[: len(sources)])
        loop_everything(images[: len(sources)])

        jobs: list[tuple[str, Path, bool, Callable[[], None]]] = [
            ("boxes (5/image)", manifest, False, loop_boxes),
            (
                f"everything ({settings.points_per_side}x{settings.points_per_side})",
                work / "data",
                True,
                loop_everything,
            ),
        ]
        ray_note = ""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        if settings.ray:
            try:
                import ray
            except ImportError:
                ray_note = "pip install 'edgesam[ray]'"
            else:
                try:
                    if not ray.is_initialized():
                        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
                        started_ray = True
                    _quiet_ray()
                except Exception as err:  # the local rows are still worth having
                    logger.exception("batch: Ray did not start")
                    ray_note = f"Ray did not start: {type(err).__name__}: {err}"
        runs = 0

        def run(job: str, runner: str, call: Callable[[], Any]) -> None:
            nonlocal runs
            runs += 1
            logger.info("batch: %s, %s", job, runner)
            try:
                seconds = _timed(lambda: _check(call()))
            except Exception as err:  # one broken runner must not lose the other rows
                logger.exception("batch: %s, %s failed", job, runner)
                timings.append(
                    Timing(job, runner, count, status="failed", note=f"{type(err).__name__}: {err}")
                )
            else:
                timings.append(Timing(job, runner, count, seconds))

        for job, source, everything, loop in jobs:
            common: dict[str, Any] = {
                "everything": everything,
                "everything_options": options if everything else None,
            }
            run(job, LOOP, loop)
            prefetches = [settings.prefetch] + ([0] if settings.no_prefetch_row else [])
            for prefetch in prefetches:
                label = (
                    f"local pipeline (prefetch {prefetch})" if prefetch else "local, no prefetch"
                )
                out = work / f"out-{runs}"
                run(
                    job,
                    label,
                    functools.partial(
                        run_batch, source, out, model=model, prefetch=prefetch, **common
                    ),
                )
            if not settings.ray:
                continue
            ray_label = f"Ray (1 actor, {cpus - 0.5:g} CPUs)"
            if ray_note:
                timings.append(Timing(job, ray_label, count, status="not run", note=ray_note))
                continue
            from edgesam.ray import run_batch_on_ray

            out = work / f"out-{runs}"
            run(
                job,
                ray_label,
                functools.partial(
                    run_batch_on_ray,
                    source,
                    out,
                    encoder=encoder,
                    decoder=decoder,
                    providers=["cpu"],
                    num_cpus=cpus - 0.5,
                    **common,
                ),
            )
    finally:
        if started_ray:
            import ray

            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return timings


def _check(summary: object) -> None:
    """A runner whose summary lists failed images did not do the whole job."""
    failed = getattr(summary, "failed", None)
    if failed:
        path, reason = failed[0]
        raise RuntimeError(f"{len(failed)} image(s) failed, first {path}: {reason}")


def to_rows(timings: Sequence[Timing]) -> list[Row]:
    """Table rows: images/s per job and runner, compared with the job's plain loop."""
    loop_rate = {
        timing.job: timing.images / timing.seconds
        for timing in timings
        if timing.runner == LOOP and timing.seconds
    }
    rows = []
    for timing in timings:
        name = f"{timing.job}: {timing.runner}"
        if timing.seconds is None:
            rows.append(
                Row(
                    "batch",
                    name,
                    variant="fp32",
                    unit="images/s",
                    status=timing.status,
                    note=timing.note,
                )
            )
            continue
        rate = timing.images / timing.seconds
        note = f"{timing.seconds:.1f} s for {timing.images} images"
        details: dict[str, object] = {"seconds": timing.seconds, "images": timing.images}
        base = loop_rate.get(timing.job)
        if timing.runner != LOOP and base:
            note += f"; {rate / base:.2f}x the plain loop"
            details["vs_plain_loop"] = rate / base
        rows.append(
            Row(
                "batch",
                name,
                variant="fp32",
                unit="images/s",
                value=rate,
                note=note,
                details=details,
            )
        )
    return rows


def markdown_table(timings: Sequence[Timing]) -> str:
    """The Markdown table of ``docs/batch.md``: seconds, images/s, vs the plain loop."""
    lines = ["| job | runner | seconds | images/s | vs plain loop |", "|---|---|---|---|---|"]
    base: dict[str, float] = {
        timing.job: timing.seconds for timing in timings if timing.runner == LOOP and timing.seconds
    }
    for timing in timings:
        if timing.seconds is None:
            lines.append(f"| {timing.job} | {timing.runner} | {timing.status} | - | - |")
            continue
        versus = f"{base[timing.job] / timing.seconds:.2f}x" if timing.job in base else "-"
        lines.append(
            f"| {timing.job} | {timing.runner} | {timing.seconds:.2f} | "
            f"{timing.images / timing.seconds:.2f} | {versus} |"
        )
    return "\n".join(lines)


def batch_rows(reference: Path, quick: bool) -> list[Row]:
    """Rows of the ``batch`` section (needs the batch extra; the Ray rows the ray extra)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return [
            Row(
                "batch",
                "edgesam batch",
                status="not run",
                note="pip install 'edgesam[batch]' (pyarrow)",
            )
        ]
    return to_rows(measure_reference(reference, QUICK if quick else FULL))


def measure_reference(reference: Path, settings: BatchSettings) -> list[Timing]:
    """:func:`measure` on the reference ONNX files and images in ``reference``."""
    onnx = reference / "onnx"
    sources = sorted(path for path in (reference / "images").iterdir() if path.is_file())
    return measure(
        onnx / "edge_sam_random_encoder.onnx",
        onnx / "edge_sam_random_decoder.onnx",
        sources,
        settings,
    )
