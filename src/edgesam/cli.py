"""The ``edgesam`` command: segment images from the shell.

The only module that configures logging or prints. Exit codes: 0 success,
1 runtime failure (download, model, inference, I/O), 2 usage (bad arguments,
malformed ``--point``/``--box`` text, unknown model name, an image file named
on the command line that cannot be read).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgesam import __version__
from edgesam.errors import (
    EdgeSamError,
    InvalidInputError,
    MissingExtraError,
    ProviderError,
    UnknownModelError,
)

if TYPE_CHECKING:
    from edgesam import EdgeSam, SamPredictor

__all__ = ["main"]

logger = logging.getLogger("edgesam.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_USAGE_ERRORS = (InvalidInputError, UnknownModelError, ProviderError)

Handler = Callable[[argparse.Namespace], int]

# Library hints that name Python calls, and what the command line offers instead.
_CLI_HINTS = (
    (
        "load files you already have with SamPredictor.from_files(encoder=..., decoder=...)",
        "use model files you already have with --encoder ENCODER.onnx --decoder DECODER.onnx",
    ),
    (
        "use SamPredictor.from_pretrained() to download the official files",
        "leave out --encoder/--decoder to download the official files (--model)",
    ),
    ("(local_files_only=False, HF_HUB_OFFLINE unset)", "(HF_HUB_OFFLINE unset)"),
    ("(HF_HUB_CACHE or cache_dir=)", "(HF_HUB_CACHE)"),
)

# Python arguments whose command-line option is not simply --dashed-name.
_OPTION_FOR_ARGUMENT = {"point_coords": "point", "point_labels": "point"}
# Arguments that the command line takes as positionals, not --options.
_POSITIONALS = frozenset({"image", "inputs", "model"})

# `edgesam download` takes neither --encoder/--decoder nor needs to be told to run itself.
_DOWNLOAD_HINTS = (
    (
        "load files you already have with SamPredictor.from_files(encoder=..., decoder=...)",
        "skip the download: `edgesam segment` and `everything` take model files you already "
        "have with --encoder ENCODER.onnx --decoder DECODER.onnx",
    ),
    (
        "download once where the Hub can be reached (`edgesam download",
        "run this command once where the Hub can be reached (`edgesam download",
    ),
    ("(HF_HUB_CACHE or cache_dir=)", "(HF_HUB_CACHE)"),
    ("(local_files_only=False, HF_HUB_OFFLINE unset)", "(HF_HUB_OFFLINE unset)"),
)


class UsageError(Exception):
    """A command-line argument is malformed (exit code 2)."""


# -- argument parsing helpers ---------------------------------------------------------------


def parse_point(text: str) -> tuple[float, float, int]:
    """Parse ``X,Y`` or ``X,Y,LABEL`` (label 1 foreground, 0 background; default 1)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(
            f"--point takes X,Y or X,Y,LABEL (e.g. 500,375 or 120,80,0): got {text!r}"
        )
    try:
        x, y = float(parts[0]), float(parts[1])
        label = int(parts[2]) if len(parts) == 3 else 1
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--point {text!r}: numbers expected ({err})") from err
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(
            f"--point {text!r}: LABEL must be 1 (foreground) or 0 (background)"
        )
    return x, y, label


def parse_box(text: str) -> tuple[float, float, float, float]:
    """Parse ``X0,Y0,X1,Y1``."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(
            f"--box takes X0,Y0,X1,Y1 in pixels (e.g. 425,600,700,875): got {text!r}"
        )
    try:
        x0, y0, x1, y1 = (float(part) for part in parts)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--box {text!r}: numbers expected ({err})") from err
    return x0, y0, x1, y1


def _add_model_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--model``, ``--encoder``, ``--decoder``, ``--providers``; returns their group."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default="edge_sam_3x",
        help="official model to download and use: edge_sam_3x (default) or edge_sam",
    )
    group.add_argument("--encoder", type=Path, help="local encoder .onnx (with --decoder)")
    group.add_argument("--decoder", type=Path, help="local decoder .onnx (with --encoder)")
    group.add_argument(
        "--providers",
        help="comma-separated execution providers, best first (e.g. cuda,cpu); "
        "default: EDGESAM_PROVIDERS or automatic",
    )
    return group


def _add_common_options(parser: argparse.ArgumentParser, *, json_output: bool = False) -> None:
    """Options every sub-command takes after its name too (``edgesam segment -v ...``)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps `edgesam -v COMMAND` working
        help="log progress and show tracebacks",
    )
    if json_output:
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the result as one JSON object on stdout, for scripts",
        )


def _print_json(payload: dict[str, object]) -> None:
    import json

    print(json.dumps(payload, indent=2))


def _add_polygon_tolerance(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--polygon-tolerance",
        type=float,
        default=0.0,
        metavar="PIXELS",
        help="simplify polygons by up to this many pixels for smaller files (default 0: exact)",
    )


def check_model_files(args: argparse.Namespace) -> None:
    """Refuse ``--encoder`` without ``--decoder`` or the other way round (a usage error)."""
    if (args.encoder is None) != (args.decoder is None):
        raise UsageError("--encoder and --decoder go together: give both, or neither")


def _load_model(args: argparse.Namespace, checkpoint: Path | None = None) -> EdgeSam:
    """The EdgeSam that ``--model`` or ``--encoder``/``--decoder``, and ``--providers``, name."""
    from edgesam import EdgeSam

    providers = args.providers.split(",") if args.providers else None
    check_model_files(args)
    if args.encoder is not None:
        return EdgeSam.from_files(
            args.encoder, args.decoder, checkpoint=checkpoint, providers=providers
        )
    return EdgeSam.from_pretrained(args.model, providers=providers)


def _load_predictor(args: argparse.Namespace) -> SamPredictor:
    from edgesam import SamPredictor

    return SamPredictor(_load_model(args))


# -- commands -------------------------------------------------------------------------------


def _cmd_segment(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from edgesam._atomic import check_destination, write_bytes_atomic
    from edgesam._formats import (
        check_mask_path,
        check_overlay_path,
        save_binary_mask,
        save_overlay,
    )
    from edgesam.formats import masks_to_polygons

    if not args.point and not args.box:
        raise UsageError("segment needs a prompt: at least one --point X,Y[,LABEL] or a --box")
    # Before the encoder runs, not after.
    check_mask_path(args.output, "--output")
    if args.overlay is not None:
        check_overlay_path(args.overlay, "--overlay")
    if args.polygons is not None:
        check_destination(args.polygons, "--polygons")
    if not args.polygon_tolerance >= 0:  # also refuses nan
        raise UsageError(f"--polygon-tolerance must be >= 0: got {args.polygon_tolerance}")
    predictor = _load_predictor(args)
    predictor.set_image(args.image)
    coords = labels = None
    if args.point:
        coords = np.array([[x, y] for x, y, _ in args.point], dtype=np.float32)
        labels = np.array([label for _, _, label in args.point], dtype=np.int64)
    box = np.array(args.box, dtype=np.float32) if args.box else None
    single = args.box is not None or (args.point is not None and len(args.point) > 1)
    masks, scores, _ = predictor.predict(
        point_coords=coords,
        point_labels=labels,
        box=box,
        num_multimask_outputs=1 if single else 4,
        use_stability_score=not single,
    )
    best = int(scores.argmax())
    save_binary_mask(masks[best], args.output)
    pixels, score = int(masks[best].sum()), float(scores[best])
    if args.overlay is not None:
        # The path, not Image.open: load_rgb turns it upright as set_image did.
        save_overlay(args.image, [masks[best]], args.overlay)
    polygons: list[list[float]] | None = None
    if args.polygons is not None:
        polygons = masks_to_polygons(masks[best], tolerance=args.polygon_tolerance)
        height, width = masks[best].shape
        document = {"height": height, "width": width, "score": score, "segmentation": polygons}
        write_bytes_atomic(args.polygons, json.dumps(document).encode(), "--polygons")
    if args.json:
        _print_json(
            {
                "image": str(args.image),
                "output": str(args.output),
                "overlay": None if args.overlay is None else str(args.overlay),
                "pixels": pixels,
                "score": score,
                "polygons": None if args.polygons is None else str(args.polygons),
            }
        )
        return EXIT_OK
    print(f"{args.output}: mask of {pixels} pixels, score {score:.3f}")
    if args.overlay is not None:
        print(f"{args.overlay}: overlay")
    if polygons is not None:
        print(f"{args.polygons}: {len(polygons)} polygon(s)")
    return EXIT_OK


def _check_resume_options(images: Sequence[Path], output: Path, options: dict[str, object]) -> None:
    """Refuse to resume into image folders written with other generator options."""
    from edgesam._resumable_everything import done_options

    for path in images:
        recorded = done_options(output / path.name)
        if recorded is None:
            continue
        changed = [
            f"--{name.replace('_', '-')} {recorded[name]} (now {value})"
            for name, value in options.items()
            if name in recorded and recorded[name] != value
        ]
        if changed:
            raise UsageError(
                f"--output {str(output)!r} holds results for {path.name} made with "
                f"{', '.join(changed)}; resuming would mix settings. Re-run with the earlier "
                "options to resume, or give these options another --output folder"
            )


def _check_resume_format(images: Sequence[Path], output: Path, output_format: str) -> None:
    """Refuse to resume into image folders that another ``--format`` wrote."""
    from edgesam._resumable_everything import DONE_MARKER, FORMAT_FILES

    for path in images:
        folder = output / path.name
        written = [name for name, file in FORMAT_FILES.items() if (folder / file).is_file()]
        others = [name for name in written if name != output_format]
        done = (folder / DONE_MARKER).is_file()
        if others or (done and output_format not in written):
            other = f"--format {others[0]}" if others else "another --format"
            raise UsageError(
                f"--output {str(output)!r} already holds {other} results for {path.name} "
                f"({folder}); --format {output_format} would skip or mix them. Re-run with "
                f"the earlier --format to resume, or give --format {output_format} another "
                "--output folder"
            )


def _cmd_everything(args: argparse.Namespace) -> int:
    # Public, but re-exported lazily and untyped; it honours HF_HUB_DISABLE_PROGRESS_BARS.
    from huggingface_hub.utils import tqdm  # type: ignore[attr-defined]

    from edgesam._resumable_everything import find_images, segment_everything

    if not args.polygon_tolerance >= 0:  # also refuses nan
        raise UsageError(f"--polygon-tolerance must be >= 0: got {args.polygon_tolerance}")
    images = find_images(args.inputs)
    if not images:
        raise UsageError("no image files found in the given inputs")
    _check_resume_format(images, args.output, args.format)
    options: dict[str, object] = {
        "points_per_side": args.points_per_side,
        "pred_iou_thresh": args.pred_iou_thresh,
        "stability_score_thresh": args.stability_score_thresh,
        "min_mask_region_area": args.min_mask_region_area,
        "crop_n_layers": args.crop_n_layers,
    }
    _check_resume_options(images, args.output, options)
    predictor = _load_predictor(args)
    bar = tqdm(images, desc="segmenting", unit="image", disable=args.quiet)  # type: ignore[no-untyped-call]

    def within_image(path: Path, done: int, total: int) -> None:
        bar.set_postfix_str(f"{path.name}: {done}/{total} points", refresh=True)

    summary = segment_everything(
        predictor,
        bar,
        args.output,
        progress=within_image,
        output_format=args.format,
        overlay=args.overlay,
        polygon_tolerance=args.polygon_tolerance,
        **options,
    )
    named = [path for path in summary.unreadable if path in args.inputs]
    if args.json:
        _print_json(
            {
                "output": str(args.output),
                "segmented": [str(path) for path in summary.segmented],
                "already_done": [str(path) for path in summary.already_done],
                "unreadable": [str(path) for path in summary.unreadable],
                "masks": summary.masks,
            }
        )
    else:
        print(
            f"{len(summary.segmented)} segmented, {len(summary.already_done)} already done, "
            f"{len(summary.unreadable)} unreadable (skipped) -> {args.output}; "
            f"{summary.masks} masks written"
        )
    if summary.segmented and summary.masks == 0:
        print(
            "edgesam everything: no mask passed the filters; try a lower "
            "--pred-iou-thresh or --stability-score-thresh",
            file=sys.stderr,
        )
    if named:
        print(
            f"edgesam everything: error: {', '.join(map(str, named))}: named on the command "
            "line but not a readable image (see the warnings above)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_OK


def _cmd_download(args: argparse.Namespace) -> int:
    from edgesam._hub import fetch_model_files
    from edgesam._registry import MODELS, get_model_spec

    names = list(MODELS) if args.all else [args.model]
    which = ("encoder", "decoder", "checkpoint") if args.checkpoint else ("encoder", "decoder")
    for name in names:
        spec = get_model_spec(name)
        paths = fetch_model_files(spec, which=which, revision=args.revision)
        for role, path in paths.items():
            print(f"{name} {role}: {path}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np
    import onnxruntime

    from edgesam._hub import cached_path
    from edgesam._providers import available_providers, resolve_providers
    from edgesam._registry import DEFAULT_MODEL, MODELS

    selected: list[str] | None
    try:
        selected = [spec if isinstance(spec, str) else spec[0] for spec in resolve_providers(None)]
        selection_error = None
    except ProviderError as err:
        selected, selection_error = None, str(err)
    models: dict[str, object] = {}
    for name, spec in MODELS.items():
        files = {}
        for role in ("encoder", "decoder", "checkpoint"):
            file = getattr(spec, role)
            where = cached_path(spec, file)
            files[role] = {"file": file.path, "cached": None if where is None else str(where)}
        models[name] = {
            "default": name == DEFAULT_MODEL,
            "repo": f"{spec.repo_type} {spec.repo_id}",
            "files": files,
        }
    if args.json:
        _print_json(
            {
                "edgesam": __version__,
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "onnxruntime": onnxruntime.__version__,
                "providers_available": list(available_providers()),
                "providers_selected": selected,
                "providers_error": selection_error,
                "models": models,
            }
        )
        return EXIT_OK
    print(f"edgesam {__version__}")
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"onnxruntime {onnxruntime.__version__}"
    )
    print(f"providers available: {', '.join(available_providers())}")
    if selected is not None:
        print(f"providers selected:  {', '.join(selected)}")
    else:
        print(f"providers selected:  invalid EDGESAM_PROVIDERS ({selection_error})")
    print("models:")
    for name, spec in MODELS.items():
        marker = " (default)" if name == DEFAULT_MODEL else ""
        print(f"  {name}{marker}: {spec.repo_type} {spec.repo_id}")
        for role in ("encoder", "decoder", "checkpoint"):
            file = getattr(spec, role)
            where = cached_path(spec, file)
            state = f"cached at {where}" if where else "not cached"
            print(f"    {role:<10} {file.path}  {state}")
    return EXIT_OK


# -- the parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``edgesam`` argument parser with all sub-commands."""
    parser = argparse.ArgumentParser(
        prog="edgesam",
        description="Segment images with EdgeSAM (on-device Segment Anything), without torch.",
        epilog="Weights are downloaded on first use from the authors' Hugging Face Space "
        "(non-commercial licence) and cached. Run 'edgesam COMMAND --help' for details.",
    )
    parser.add_argument("--version", action="version", version=f"edgesam {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress and show tracebacks"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    segment = commands.add_parser(
        "segment",
        help="segment one object from clicks and/or a box",
        description="Segment one object in IMAGE from clicks and/or a box and save the mask "
        "as a black-and-white PNG. One click: the most stable of the four candidate masks. "
        "Several clicks or a box: the single-mask output.",
    )
    segment.add_argument("image", type=Path, metavar="IMAGE")
    segment.add_argument(
        "--point",
        type=parse_point,
        action="append",
        metavar="X,Y[,LABEL]",
        help="a click in pixels; LABEL 1 = object (default), 0 = background. Repeatable",
    )
    segment.add_argument(
        "--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="a box around the object, in pixels"
    )
    segment.add_argument(
        "--output", type=Path, required=True, help="mask PNG to write (in an existing folder)"
    )
    segment.add_argument(
        "--overlay", type=Path, help="also write the mask drawn over the image (.png, .jpg, ...)"
    )
    segment.add_argument(
        "--polygons", type=Path, help="also write the mask as COCO polygons to this .json file"
    )
    _add_polygon_tolerance(segment)
    _add_model_options(segment)
    _add_common_options(segment, json_output=True)
    segment.set_defaults(func=_cmd_segment)

    everything = commands.add_parser(
        "everything",
        help="segment everything in images (automatic mask generation)",
        description="Find all objects in each image (a grid of clicks, filtered and "
        "de-duplicated, as segment_anything's automatic mask generator) and write them to "
        "OUTPUT/<image name>/. Images already done are skipped, so an interrupted run resumes.",
    )
    everything.add_argument("inputs", type=Path, nargs="+", metavar="IMAGE_OR_DIR")
    everything.add_argument("--output", type=Path, required=True, help="output directory")
    everything.add_argument(
        "--format",
        choices=("png", "coco-rle", "coco-polygons"),
        default="png",
        help="png: one PNG per mask + metadata.csv; coco-rle: one COCO-style JSON per image; "
        "coco-polygons: the same with polygons (polygons.json)",
    )
    _add_polygon_tolerance(everything)
    everything.add_argument("--overlay", action="store_true", help="also write overlay.png")
    generator = everything.add_argument_group(
        "generator", "segment_anything's SamAutomaticMaskGenerator options"
    )
    generator.add_argument(
        "--points-per-side",
        type=int,
        default=32,
        help="clicks per side of the grid; N*N decoder prompts per image (default: %(default)s)",
    )
    generator.add_argument(
        "--pred-iou-thresh",
        type=float,
        default=0.88,
        help="drop masks whose predicted IoU is lower, in [0, 1] (default: %(default)s)",
    )
    generator.add_argument(
        "--stability-score-thresh",
        type=float,
        default=0.95,
        help="drop masks whose stability score is lower, in [0, 1] (default: %(default)s)",
    )
    generator.add_argument(
        "--min-mask-region-area",
        type=int,
        default=0,
        help="remove holes and islands smaller than this many pixels; 0 keeps them "
        "(default: %(default)s)",
    )
    generator.add_argument(
        "--crop-n-layers",
        type=int,
        default=0,
        help="also run on 4^k overlapping crops for k = 1..N, for small objects; slower "
        "(default: %(default)s)",
    )
    everything.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_model_options(everything)
    _add_common_options(everything, json_output=True)
    everything.set_defaults(func=_cmd_everything)

    download = commands.add_parser(
        "download",
        help="download and verify model files now (e.g. before going offline)",
        description="Download the official model files into the Hugging Face cache and "
        "verify their sha256. Later runs work offline (HF_HUB_OFFLINE=1).",
    )
    download.add_argument("model", nargs="?", default="edge_sam_3x", metavar="MODEL")
    download.add_argument("--all", action="store_true", help="every known model")
    download.add_argument(
        "--checkpoint",
        action="store_true",
        help="also the .pth checkpoint (used for mask_input with the official decoder)",
    )
    download.add_argument("--revision", help="Space revision (default: main)")
    _add_common_options(download)
    download.set_defaults(func=_cmd_download)

    info = commands.add_parser(
        "info",
        help="versions, models, cache paths and execution providers",
        description="Show versions, known models and where they are cached, and the "
        "execution providers available and selected.",
    )
    _add_common_options(info, json_output=True)
    info.set_defaults(func=_cmd_info)

    from edgesam.batch._cli import register as register_batch
    from edgesam.export._cli import register as register_export
    from edgesam.serve._cli import register as register_serve

    register_export(commands)
    register_batch(commands)
    register_serve(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``edgesam`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    handler: Handler = args.func
    try:
        return handler(args)
    except UsageError as err:
        print(f"edgesam {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except MissingExtraError as err:
        return _fail(args, err, EXIT_FAILURE)
    except _USAGE_ERRORS as err:
        return _fail(args, err, EXIT_USAGE)
    except (EdgeSamError, OSError) as err:
        return _fail(args, err, EXIT_FAILURE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _fail(args: argparse.Namespace, err: BaseException, code: int) -> int:
    if args.verbose:
        logger.exception("edgesam %s failed", args.command)
    print(f"edgesam {args.command}: error: {_for_the_command_line(args, err)}", file=sys.stderr)
    return code


def _for_the_command_line(args: argparse.Namespace, err: BaseException) -> str:
    """``err``'s message, naming the command's own option where the library names an argument.

    An :class:`InvalidInputError` says which Python argument was wrong
    (``err.argument``); when this command has that argument as an option, the
    message leads with ``--dashed-name`` instead.
    """
    message = str(err)
    argument = getattr(err, "argument", None)
    if isinstance(argument, str):
        dest = _OPTION_FOR_ARGUMENT.get(argument, argument)
        if dest in vars(args) and dest not in _POSITIONALS:
            option = "--" + dest.replace("_", "-")
            if message.startswith(argument):
                return option + message[len(argument) :]
            return f"{option}: {message}"
        return message
    for library, command_line in _DOWNLOAD_HINTS if args.command == "download" else _CLI_HINTS:
        message = message.replace(library, command_line)
    return message


if __name__ == "__main__":
    sys.exit(main())
