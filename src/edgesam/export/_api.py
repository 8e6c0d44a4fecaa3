"""``export_onnx``: from a ``.pth`` checkpoint to ONNX files the runtime can load.

Variants, each a set of files named ``<name>[_<variant>]_<role>.onnx``:

========== ============================= ==========================================
variant    files                         what for
========== ============================= ==========================================
official   ``_encoder``, ``_decoder``    the authors' contract, float32, opset 11
full       ``_full_decoder``             batched prompts + mask input, one run
fp16       ``_fp16_encoder``             float16 inside (GPU / CoreML), float32 I/O
int8       ``_int8_encoder``             static QDQ int8, calibrated on images
========== ============================= ==========================================

Everything is written to a staging folder inside ``output_dir`` and moved into
place only when complete, the manifest ``<name>_manifest.json`` last.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import onnx

from edgesam._atomic import ensure_directory, publish, sha256_file, staging_directory
from edgesam._validate import integer
from edgesam.errors import ExportError, InvalidInputError
from edgesam.export._calibration import CalibrationImages, CalibrationSource
from edgesam.export._checkpoint import load_checkpoint
from edgesam.export._manifest import FileRecord, describe_file, kept_entries, manifest_document
from edgesam.export._network import EdgeSamNetwork
from edgesam.export._onnx_export import (
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    decoder_spec,
    encoder_spec,
    export_graph,
    full_decoder_spec,
)
from edgesam.export._quantize import quantize_encoder
from edgesam.export._repvit import UpsampleMode

__all__ = ["DEFAULT_VARIANTS", "VARIANTS", "ExportResult", "Variant", "export_onnx"]

logger = logging.getLogger(__name__)

Variant = Literal["official", "full", "fp16", "int8"]
VARIANTS: tuple[Variant, ...] = get_args(Variant)
DEFAULT_VARIANTS: tuple[Variant, ...] = ("official", "full")

_RECORDS: dict[str, FileRecord] = {
    "encoder": FileRecord("encoder", "official", "encoder", "float32"),
    "decoder": FileRecord("decoder", "official", "decoder", "float32"),
    "full_decoder": FileRecord("full_decoder", "full", "decoder", "float32"),
    "fp16_encoder": FileRecord("fp16_encoder", "fp16", "encoder", "float16"),
    "int8_encoder": FileRecord("int8_encoder", "int8", "encoder", "int8"),
}
_KEYS: dict[Variant, tuple[str, ...]] = {
    "official": ("encoder", "decoder"),
    "full": ("full_decoder",),
    "fp16": ("fp16_encoder",),
    "int8": ("int8_encoder",),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote.

    Attributes
    ----------
    output_dir : Path
        The folder holding the files.
    model_name : str
        The file-name prefix.
    files : mapping of str to Path
        ``"encoder"``, ``"decoder"``, ``"full_decoder"``, ``"fp16_encoder"``,
        ``"int8_encoder"`` -> path, for the variants requested.
    manifest : Path
        ``<model_name>_manifest.json``.
    """

    output_dir: Path
    model_name: str
    files: Mapping[str, Path]
    manifest: Path


def file_name(model_name: str, key: str) -> str:
    """``<model_name>_<key>.onnx``, e.g. ``edge_sam_fp16_encoder.onnx``."""
    return f"{model_name}_{key}.onnx"


def _check_variants(variants: Sequence[str]) -> list[Variant]:
    if isinstance(variants, str):
        variants = [variants]
    chosen: list[Variant] = []
    for variant in variants:
        if variant not in VARIANTS:
            raise InvalidInputError(
                f"variants must be among {', '.join(VARIANTS)}: got {variant!r}"
            )
        if variant not in chosen:
            chosen.append(variant)
    if not chosen:
        raise InvalidInputError(f"variants is empty: choose from {', '.join(VARIANTS)}")
    return chosen


def _check_name(model_name: str | None, checkpoint: Path) -> str:
    name = checkpoint.stem if model_name is None else model_name
    if not _NAME.fullmatch(name):
        origin = "the checkpoint's file name" if model_name is None else "model_name"
        raise InvalidInputError(
            f"{origin} {name!r} is not usable as a file-name prefix (letters, digits, '.', "
            "'_', '-'; not starting with '.'): pass model_name= / --name"
        )
    return name


def _check_options(upsample_mode: str, opset: int) -> None:
    if upsample_mode not in get_args(UpsampleMode):
        raise InvalidInputError(
            f"upsample_mode must be one of {', '.join(get_args(UpsampleMode))}: "
            f"got {upsample_mode!r}"
        )
    integer(opset, "opset", MIN_OPSET, MAX_OPSET, f" (the official files use {DEFAULT_OPSET})")


def _neck_norms(model: onnx.ModelProto) -> list[str]:
    """The nodes of the encoder neck's two LayerNorm2d (``/neck/neck.1/``, ``/neck.3/``)."""
    return [
        node.name
        for node in model.graph.node
        if "/neck/neck.1/" in node.name or "/neck/neck.3/" in node.name
    ]


def _write_float16_encoder(float_encoder: Path, destination: Path) -> None:
    """Convert the float32 encoder file to float16 inside, float32 I/O, at ``destination``.

    onnxruntime's converter (``keep_io_types``) does the work; the neck's
    LayerNorm2d stay float32 (their squared deviations can leave float16's
    range). The converter appends the input casts at the end of the node list,
    which ``onnx.checker`` refuses, so the graph is sorted before it is checked.

    Raises
    ------
    ExportError
        The conversion or its validation failed.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        model = onnx.load(str(float_encoder))
        half = OnnxModel(
            convert_float_to_float16(model, keep_io_types=True, node_block_list=_neck_norms(model))
        )
        half.topological_sort()
        onnx.checker.check_model(half.model, full_check=True)
        onnx.save(half.model, str(destination))
    except OSError:
        raise
    except Exception as err:  # onnx raises several types on invalid graphs
        raise ExportError(f"converting the encoder to float16 failed: {err}") from err


def _build(
    network: EdgeSamNetwork,
    variants: list[Variant],
    staging: Path,
    *,
    model_name: str,
    opset: int,
    stability_score: bool,
    calibration_images: Sequence[CalibrationSource],
) -> dict[str, Path]:
    """Write the requested files into ``staging``; return key -> staged path."""
    staged: dict[str, Path] = {}
    if {"official", "fp16"} & set(variants):
        float_encoder = staging / (
            file_name(model_name, "encoder") if "official" in variants else "float_encoder.onnx"
        )
        logger.info("exporting the encoder (opset %d)", opset)
        export_graph(encoder_spec(network), float_encoder, opset=opset)
        if "official" in variants:
            staged["encoder"] = float_encoder
    if "official" in variants:
        staged["decoder"] = staging / file_name(model_name, "decoder")
        logger.info("exporting the decoder (official contract)")
        export_graph(
            decoder_spec(network, stability_score=stability_score), staged["decoder"], opset=opset
        )
    if "full" in variants:
        staged["full_decoder"] = staging / file_name(model_name, "full_decoder")
        logger.info("exporting the full decoder (batched prompts, mask input)")
        export_graph(
            full_decoder_spec(network, stability_score=stability_score),
            staged["full_decoder"],
            opset=opset,
        )
    if "fp16" in variants:
        staged["fp16_encoder"] = staging / file_name(model_name, "fp16_encoder")
        logger.info("converting the encoder to float16")
        _write_float16_encoder(float_encoder, staged["fp16_encoder"])
    if "int8" in variants:
        staged["int8_encoder"] = staging / file_name(model_name, "int8_encoder")
        source = staging / "int8_source_encoder.onnx"
        logger.info("exporting the encoder's inference form for int8 (opset %d)", opset)
        export_graph(encoder_spec(network, for_quantisation=True), source, opset=opset)
        logger.info("quantising the encoder to int8")
        quantize_encoder(source, staged["int8_encoder"], calibration_images)
    return staged


def export_onnx(
    checkpoint: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    variants: Sequence[Variant] = DEFAULT_VARIANTS,
    model_name: str | None = None,
    upsample_mode: UpsampleMode = "bilinear",
    opset: int = DEFAULT_OPSET,
    stability_score: bool = False,
    calibration_images: Sequence[CalibrationSource] = (),
) -> ExportResult:
    """Export an EdgeSAM checkpoint to ONNX files and a manifest.

    Parameters
    ----------
    checkpoint : str or PathLike
        An ``edge_sam.pth`` / ``edge_sam_3x.pth`` state dict.
    output_dir : str or PathLike
        Folder for the files; created if needed. Existing files of the same
        names are replaced, each only once the whole export has succeeded.
    variants : sequence of {"official", "full", "fp16", "int8"}
        Which files to write (see the module docstring); default official
        and full. "official" reproduces the authors' files: use them with
        any EdgeSAM runtime. "full" adds a decoder that takes a mask input
        and decodes many prompt sets in one run. "fp16" and "int8" are
        smaller encoders for GPUs/CoreML and for CPUs respectively; they
        trade some accuracy (see docs/export.md).
    model_name : str, optional
        File-name prefix; default the checkpoint's stem (``edge_sam_3x``).
    upsample_mode : {"bilinear", "bicubic"}, default "bilinear"
        The encoder's fusion upsampling; "bilinear" is what the official
        files use, "bicubic" the authors' torch default.
    opset : int, default 11
        ONNX opset of the float32 graphs (11 to 20); 11 is the official one.
        The int8 encoder is at least 13 (per-channel quantisation needs it).
    stability_score : bool, default False
        Make the decoders' ``scores`` the stability score of each mask
        instead of the IoU prediction (EdgeSAM's IoU head was not distilled,
        so stability ranks its masks better).
    calibration_images : sequence of path or (H, W, 3) uint8 array
        Typical images for the int8 encoder's calibration (required for
        "int8", ignored otherwise). A few dozen is plenty.

    Returns
    -------
    ExportResult
        The paths written, keyed by ``"encoder"``, ``"decoder"``,
        ``"full_decoder"``, ``"fp16_encoder"``, ``"int8_encoder"``, and the manifest.

    Raises
    ------
    InvalidInputError
        An option is invalid (unknown variant, bad name or opset, "int8"
        without calibration images).
    CheckpointError
        The checkpoint cannot be read or does not fit the network.
    ExportError
        Tracing, conversion or writing failed; nothing half-written is left.
    """
    source = Path(checkpoint)
    chosen = _check_variants(variants)
    name = _check_name(model_name, source)
    _check_options(upsample_mode, opset)
    if "int8" in chosen:
        if len(calibration_images) == 0:
            raise InvalidInputError(
                "the int8 variant needs calibration images: pass a few typical photos "
                "(calibration_images=[...] / --calibration-images)"
            )
        CalibrationImages(calibration_images).check_all()  # fail before the slow part

    network = load_checkpoint(source, upsample_mode=upsample_mode)
    checkpoint_sha256 = sha256_file(source)
    directory = ensure_directory(Path(output_dir))
    keys = [key for variant in chosen for key in _KEYS[variant]]
    destinations = {key: directory / file_name(name, key) for key in keys}
    manifest_path = directory / f"{name}_manifest.json"
    for destination in [*destinations.values(), manifest_path]:
        if destination.is_dir():
            raise ExportError(
                f"cannot write {destination}: a directory of that name exists. "
                "Remove it or choose another --name / model_name."
            )

    with staging_directory(directory) as staging:
        try:
            staged = _build(
                network,
                chosen,
                staging,
                model_name=name,
                opset=opset,
                stability_score=stability_score,
                calibration_images=calibration_images,
            )
            # Earlier exports of other variants into this folder stay in the manifest.
            entries, dropped = kept_entries(
                manifest_path,
                checkpoint_sha256=checkpoint_sha256,
                upsample_mode=upsample_mode,
                opset=opset,
                stability_score=stability_score,
                replaced=keys,
            )
            if dropped:
                logger.warning(
                    "%s no longer lists %s (another checkpoint or settings, or changed on disk)",
                    manifest_path,
                    ", ".join(dropped),
                )
            entries += [
                describe_file(staged[key], _RECORDS[key], final_name=destinations[key].name)
                for key in keys
            ]
            staged_manifest = staging / manifest_path.name
            staged_manifest.write_text(
                manifest_document(
                    model_name=name,
                    checkpoint=source,
                    checkpoint_sha256=checkpoint_sha256,
                    upsample_mode=upsample_mode,
                    opset=opset,
                    stability_score=stability_score,
                    files=entries,
                ),
                encoding="utf-8",
            )
        except OSError as err:
            raise ExportError(f"writing the export into {directory} failed: {err}") from err
        for key in keys:
            publish(staged[key], destinations[key])
        publish(staged_manifest, manifest_path)
    for key in keys:
        logger.info("wrote %s", destinations[key])
    logger.info("wrote %s", manifest_path)
    return ExportResult(directory, name, dict(destinations), manifest_path)
