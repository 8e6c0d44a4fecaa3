"""The ``edgesam export`` sub-command (wired into ``edgesam.cli`` by ``register``).

Importing this module imports neither torch nor onnx: they are loaded by the
handler, which reports a missing extra with the command that installs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgesam.errors import EdgeSamError, InvalidInputError

__all__ = ["IMAGE_SUFFIXES", "handle_export", "register"]

# The same as edgesam.export._api.VARIANTS and _repvit.UpsampleMode (a test pins
# that); repeated here so that building the parser needs no torch.
_VARIANTS = ("official", "full", "fp16", "int8")
_DEFAULT_VARIANTS = ("official", "full")
_UPSAMPLE_MODES = ("bilinear", "bicubic")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

_DESCRIPTION = """\
Export an EdgeSAM .pth checkpoint to ONNX files the edgesam runtime loads.

variants:
  official  <name>_encoder.onnx + <name>_decoder.onnx: the authors' contract (opset 11)
  full      <name>_full_decoder.onnx: batched prompts and mask input in one run
  fp16      <name>_fp16_encoder.onnx: float16 inside, for CUDA / CoreML
  int8      <name>_int8_encoder.onnx: static int8 for CPUs (needs --calibration-images)

A manifest <name>_manifest.json describes every file written.
Needs the export extra: pip install "edgesam[export]"
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` sub-command to an argparse ``subparsers`` object.

    The handler is set with ``set_defaults(func=handle_export)``; call
    ``args.func(args)`` and use its return value as the exit code.
    """
    parser = subparsers.add_parser(
        "export",
        help="export a .pth checkpoint to ONNX (needs edgesam[export])",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", type=Path, help="the .pth file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        type=Path,
        default=Path(),
        help="folder for the files (created if needed; default: the current folder)",
    )
    parser.add_argument(
        "--name", help="file-name prefix (default: the checkpoint's name without .pth)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=_VARIANTS,
        default=list(_DEFAULT_VARIANTS),
        metavar="VARIANT",
        help=f"any of {', '.join(_VARIANTS)} (default: {' '.join(_DEFAULT_VARIANTS)})",
    )
    parser.add_argument(
        "--upsample-mode",
        choices=_UPSAMPLE_MODES,
        default="bilinear",
        help="encoder fusion upsampling (default: bilinear, as the official files)",
    )
    parser.add_argument(
        "--opset", type=int, default=11, help="ONNX opset, 11 to 20 (default: 11, as official)"
    )
    parser.add_argument(
        "--stability-score",
        action="store_true",
        help="decoders output stability scores instead of IoU predictions",
    )
    parser.add_argument(
        "--calibration-images",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="images or folders of images to calibrate the int8 encoder on",
    )
    parser.set_defaults(func=handle_export)


def _expand_images(paths: list[Path]) -> list[Path]:
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                child
                for child in path.iterdir()
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise InvalidInputError(f"--calibration-images: no images in the folder {path}")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise InvalidInputError(f"--calibration-images: {path} does not exist")
    return images


def handle_export(args: argparse.Namespace) -> int:
    """Run the export described by ``args``; print the files written.

    Returns
    -------
    int
        0 on success, 2 for invalid arguments, 1 for any other failure
        (missing extra, bad checkpoint, export error); the reason goes to stderr.
    """
    try:
        from edgesam.export import require_extra

        require_extra()
        from edgesam.export._api import export_onnx

        result = export_onnx(
            args.checkpoint,
            args.output,
            variants=args.variants,
            model_name=args.name,
            upsample_mode=args.upsample_mode,
            opset=args.opset,
            stability_score=args.stability_score,
            calibration_images=_expand_images(list(args.calibration_images)),
        )
    except InvalidInputError as err:
        print(f"edgesam export: error: {err}", file=sys.stderr)
        return 2
    except EdgeSamError as err:
        print(f"edgesam export: error: {err}", file=sys.stderr)
        return 1
    for path in result.files.values():
        print(path)
    print(result.manifest)
    return 0
