"""``python -m benchmarks.batch``: images/s of ``edgesam batch``, plain loop vs local vs Ray.

Two jobs over copies of the reference images: *boxes* (5 boxes per image,
``predict_batch(boxes=..., multimask_output=False)``) and *everything* (the
automatic mask generator with ``--points-per-side``). For each job:

- ``loop``: the single-process loop a user writes (``set_image(path)``, the
  prompts, RLE encoding), no output written;
- ``local``: ``run_batch`` with the bounded prefetch (``--prefetch``) and
  Parquet output; ``local, no prefetch``: the same with ``prefetch=0``;
- ``ray``: ``run_batch_on_ray`` on a local Ray (started before the clock,
  ``num_cpus`` = the machine's CPUs), one actor with all CPUs but half a
  one (left to the reading tasks; onnxruntime rounds to whole threads); the time
  includes the actor loading the model and Ray Data's scheduling.

Numbers are printed, never asserted. Needs ../shared/reference (the
reference ONNX files and images), pyarrow and (for the Ray rows) Ray.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._env import find_reference_dir

BOXES = [
    [425, 600, 700, 875],
    [100, 50, 400, 300],
    [20, 20, 200, 180],
    [300, 100, 520, 330],
    [50, 250, 260, 500],
]
IMAGES = ("truck.jpg", "groceries.jpg", "synthetic_480x640.png", "tiny_37x53.png")


def _dataset(reference: Path, folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rows = []
    for index in range(count):
        source = reference / "images" / IMAGES[index % len(IMAGES)]
        target = folder / f"{index:04d}{source.suffix}"
        shutil.copyfile(source, target)
        rows.append({"path": target.name, "boxes": BOXES})
    manifest = folder / "boxes.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _encoder_batch(reference: Path, count: int, repeats: int = 3) -> int:
    """Print the best of ``repeats``: B single encoder runs vs one run of B images."""
    import numpy as np

    from edgesam import EdgeSam
    from edgesam.export._batch_encoder import batch_encoder

    onnx_dir = reference / "onnx"
    with tempfile.TemporaryDirectory() as folder:
        encoder = batch_encoder(
            onnx_dir / "edge_sam_random_encoder.onnx", Path(folder) / "batch_encoder.onnx"
        )
        model = EdgeSam.from_files(
            encoder, onnx_dir / "edge_sam_random_decoder.onnx", providers=["cpu"]
        )
        images = np.random.default_rng(0).standard_normal((count, 3, 1024, 1024))
        images = images.astype(np.float32)
        model.encode(images[:1])
        singles = min(
            _timed(lambda: [model.encode(images[i : i + 1]) for i in range(count)])
            for _ in range(repeats)
        )
        batched = min(_timed(lambda: model.encode_batch(images)) for _ in range(repeats))
    print(
        f"encoder on CPU, {count} images: {count} runs {singles:.2f} s, one batched run "
        f"{batched:.2f} s ({singles / batched:.2f}x)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the batch benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__)
    parser.add_argument("--images", type=int, default=12, help="images per job")
    parser.add_argument("--points-per-side", type=int, default=8, help="everything job grid")
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    parser.add_argument("--reference", help="reference folder (default ../shared/reference)")
    parser.add_argument(
        "--encoder-batch",
        type=int,
        metavar="B",
        help="instead: time EdgeSam.encode_batch of B images with the dynamic-batch encoder "
        "against B single runs",
    )
    args = parser.parse_args(argv)
    reference = find_reference_dir(args.reference)
    if reference is None:
        parser.error("reference data not found: pass --reference or set EDGESAM_REFERENCE_DIR")
    if args.encoder_batch:
        return _encoder_batch(reference, args.encoder_batch)

    import numpy as np

    from edgesam import EdgeSam, SamPredictor
    from edgesam.amg import SamAutomaticMaskGenerator, mask_to_coco_rle
    from edgesam.batch import run_batch

    encoder = reference / "onnx" / "edge_sam_random_encoder.onnx"
    decoder = reference / "onnx" / "edge_sam_random_decoder.onnx"
    options = {"points_per_side": args.points_per_side}
    work = Path(tempfile.mkdtemp(prefix="edgesam-batch-bench-"))
    results: list[tuple[str, str, float]] = []
    try:
        manifest = _dataset(reference, work / "data", args.images)
        images = sorted((work / "data").glob("0*"))
        model = EdgeSam.from_files(encoder, decoder, providers=["cpu"])

        def loop_boxes() -> None:
            predictor = SamPredictor(model)
            for path in images:
                predictor.set_image(path)
                masks, _, _ = predictor.predict_batch(
                    boxes=np.array(BOXES, np.float32), multimask_output=False
                )
                [mask_to_coco_rle(mask[0]) for mask in masks]

        def loop_everything() -> None:
            generator = SamAutomaticMaskGenerator(model, output_mode="coco_rle", **options)
            for path in images:
                generator.generate(path)

        jobs: dict[str, dict[str, object]] = {
            "boxes (5/image)": {"source": manifest, "everything": False, "loop": loop_boxes},
            f"everything ({args.points_per_side}x{args.points_per_side})": {
                "source": work / "data",
                "everything": True,
                "loop": loop_everything,
            },
        }
        ray_run = None
        if not args.no_ray:
            import ray

            from edgesam.ray import run_batch_on_ray

            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            ray_run = (run_batch_on_ray, cpus)
        for job, spec in jobs.items():
            everything = bool(spec["everything"])
            common = {
                "model": model,
                "everything": everything,
                "everything_options": options if everything else None,
            }
            loop = spec["loop"]
            assert callable(loop)
            results.append((job, "plain loop", _timed(loop)))
            for label, prefetch in (("local pipeline", args.prefetch), ("local, no prefetch", 0)):
                out = work / f"out-{len(results)}"
                seconds = _timed(
                    functools.partial(run_batch, spec["source"], out, prefetch=prefetch, **common)
                )
                results.append((job, label, seconds))
            if ray_run is not None:
                function, cpus = ray_run
                out = work / f"out-{len(results)}"
                seconds = _timed(
                    functools.partial(
                        function,
                        spec["source"],
                        out,
                        encoder=encoder,
                        decoder=decoder,
                        providers=["cpu"],
                        everything=everything,
                        everything_options=options if everything else None,
                        num_cpus=cpus - 0.5,
                    )
                )
                results.append((job, f"ray (1 actor, {cpus - 0.5:g} CPUs)", seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.images} images per job, reference model, CPU")
    print("| job | runner | seconds | images/s | vs plain loop |")
    print("|---|---|---|---|---|")
    base: dict[str, float] = {}
    for job, runner, seconds in results:
        base.setdefault(job, seconds)
        rate = args.images / seconds
        print(f"| {job} | {runner} | {seconds:.2f} | {rate:.2f} | {base[job] / seconds:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
