"""``edgesam batch``: the command-line face of :func:`edgesam.batch.run_batch` and Ray.

Exit codes as in the other commands: 0 every image done, 1 some image (or
manifest row) failed (see ``OUTPUT/_errors.jsonl``) or a runtime failure, 2
usage (bad option, unusable manifest, an output column clash).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["handle_batch", "register"]

_DESCRIPTION = """\
Segment a whole dataset: a folder of images (--everything), or a manifest
(.jsonl, .csv, .parquet) with one row per image: path (or uri), optional
boxes [[x0,y0,x1,y1],...], points [[x,y],...] and labels [1,0,...], and any
other columns (passed through). Each box is one prompt (single-mask output);
a row's points form one more (answered as 'edgesam segment' answers clicks).

Output: Parquet (or JSONL) shards in OUTPUT, one row per image with its masks
as COCO RLE. A re-run skips images already there (same path, same content)
and picks up an interrupted run. Failed images go to OUTPUT/_errors.jsonl;
the exit code is then 1.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``batch`` sub-command; its handler is ``args.func``."""
    from edgesam.cli import _add_model_options

    parser = subparsers.add_parser(
        "batch",
        help="masks for a whole folder or manifest, resumable (Parquet/JSONL out)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, metavar="FOLDER_OR_MANIFEST")
    parser.add_argument("--output", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--everything", action="store_true", help="segment everything (no prompts needed)"
    )
    parser.add_argument("--recursive", action="store_true", help="also images in sub-folders")
    parser.add_argument(
        "--format", choices=("parquet", "jsonl"), default="parquet", help="shard format"
    )
    parser.add_argument("--shard-size", type=int, default=1000, help="images per shard")
    parser.add_argument(
        "--prefetch", type=int, default=2, help="images read and preprocessed ahead (local)"
    )
    parser.add_argument(
        "--coco", type=Path, metavar="FILE", help="also write one COCO JSON over OUTPUT"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    amg = parser.add_argument_group("segment everything (as in 'edgesam everything')")
    amg.add_argument("--points-per-side", type=int)
    amg.add_argument("--points-per-batch", type=int)
    amg.add_argument("--pred-iou-thresh", type=float)
    amg.add_argument("--stability-score-thresh", type=float)
    amg.add_argument("--min-mask-region-area", type=int)
    amg.add_argument("--crop-n-layers", type=int)
    ray = parser.add_argument_group("Ray (pip install 'edgesam[ray]')")
    ray.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="run on Ray Data: 'auto' joins RAY_ADDRESS's cluster or starts a local one; "
        "or a cluster address (ray://host:10001, host:6379)",
    )
    ray.add_argument("--actors", type=int, default=1, help="model actors (default 1)")
    ray.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs per actor")
    ray.add_argument(
        "--gpus-per-actor", type=float, default=0.0, help="GPUs per actor (0.25 packs four)"
    )
    _add_model_options(parser)
    parser.set_defaults(func=handle_batch)


def _everything_options(args: argparse.Namespace) -> dict[str, Any]:
    from edgesam.batch._run import EVERYTHING_OPTIONS

    options = {
        name: getattr(args, name) for name in EVERYTHING_OPTIONS if getattr(args, name) is not None
    }
    if options and not args.everything:
        from edgesam.cli import UsageError

        flags = ", ".join("--" + name.replace("_", "-") for name in options)
        raise UsageError(f"{flags} only apply with --everything")
    return options


def handle_batch(args: argparse.Namespace) -> int:
    """Run ``edgesam batch``; returns the exit code."""
    from edgesam.cli import EXIT_FAILURE, EXIT_OK, check_model_files

    check_model_files(args)
    options = _everything_options(args)
    providers = args.providers.split(",") if args.providers else None
    common: dict[str, Any] = {
        "model": args.model,
        "encoder": args.encoder,
        "decoder": args.decoder,
        "providers": providers,
        "everything": args.everything,
        "everything_options": options,
        "recursive": args.recursive,
        "output_format": args.format,
        "coco": args.coco,
        "progress": not args.quiet,
    }
    if args.ray is not None:
        from edgesam.ray import run_batch_on_ray

        summary = run_batch_on_ray(
            args.source,
            args.output,
            address=args.ray,
            actors=args.actors,
            num_cpus=args.cpus_per_actor,
            num_gpus=args.gpus_per_actor,
            **common,
        )
    else:
        from edgesam.batch import run_batch

        summary = run_batch(
            args.source, args.output, shard_size=args.shard_size, prefetch=args.prefetch, **common
        )
    recovered = ""
    if summary.recovered:
        recovered = f", {summary.recovered} recovered from an interrupted run"
    print(
        f"{len(summary.segmented)} segmented, {len(summary.already_done)} already done, "
        f"{len(summary.failed)} failed{recovered} -> {args.output}"
    )
    if summary.coco is not None:
        print(f"{args.coco}: {summary.coco[0]} images, {summary.coco[1]} annotations")
    if summary.failed:
        print(f"failures are listed in {args.output / '_errors.jsonl'}")
        return EXIT_FAILURE
    return EXIT_OK
