"""``python -m benchmarks.batch``: the ``batch`` section of ``python -m benchmarks`` alone.

Images/s of ``edgesam batch`` for a boxes job (5 boxes per image) and an
everything job: a plain single-process loop, the local pipeline with and
without prefetch, and Ray on this machine (see :mod:`benchmarks._batch`),
printed as the Markdown table of docs/batch.md. ``--encoder-batch B`` instead
times ``EdgeSam.encode_batch`` against B single encoder runs.

Numbers are printed, never asserted. Needs ../shared/reference (the
reference ONNX files and images), pyarrow and (for the Ray rows) Ray.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._batch import BatchSettings, markdown_table, measure_reference
from benchmarks._env import find_reference_dir


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
    parser.add_argument("--images", type=int, default=12, help="images per job (default 12)")
    parser.add_argument(
        "--points-per-side", type=int, default=8, help="everything job's grid (default 8)"
    )
    parser.add_argument(
        "--prefetch", type=int, default=2, help="the local pipeline's prefetch (default 2)"
    )
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
    if args.images < 1 or args.points_per_side < 1 or args.prefetch < 1:
        parser.error("--images, --points-per-side and --prefetch must be at least 1")
    reference = find_reference_dir(args.reference)
    if reference is None:
        parser.error("reference data not found: pass --reference or set EDGESAM_REFERENCE_DIR")
    if args.encoder_batch:
        return _encoder_batch(reference, args.encoder_batch)

    settings = BatchSettings(
        images=args.images,
        points_per_side=args.points_per_side,
        prefetch=args.prefetch,
        ray=not args.no_ray,
    )
    timings = measure_reference(reference, settings)
    print(f"{args.images} images per job, reference model, CPU")
    print(markdown_table(timings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
