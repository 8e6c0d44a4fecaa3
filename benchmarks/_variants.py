"""Which model files to benchmark: the official-contract fp32 pair, and exported variants.

The official-contract files (``reference/onnx/edge_sam_random_*.onnx``) have the
real architecture and cost with random weights. The int8 and fp16 encoders and
the "full" decoder (batch axis and mask input) are exported once with
:func:`edgesam.export.export_onnx` from ``edge_sam_random.pth`` into a cache
folder (``benchmarks/results/models/``, gitignored) and reused while the
checkpoint and the exporter's code are unchanged (a digest of
``edgesam/export``'s sources is kept beside the files).

The int8 encoder is calibrated on crops, flips and resizes of the reference
images (:func:`benchmarks._child.varied_images`, a different seed from the
RSS run), not on the reference images themselves, which the IoU check uses.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ModelVariant", "Unavailable", "discover_variants"]

logger = logging.getLogger(__name__)

CALIBRATION_IMAGES = 16
_EXPORT_NAME = "edge_sam_random"
_KEYS = {"int8": "int8_encoder", "fp16": "fp16_encoder", "full": "full_decoder"}
_DIGEST_FILE = "exporter.sha256"


def exporter_digest() -> str:
    """sha256 over the source files of ``edgesam.export``, without importing it (or torch)."""
    spec = importlib.util.find_spec("edgesam.export")
    folders = list(spec.submodule_search_locations or []) if spec else []
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelVariant:
    """An encoder/decoder pair to benchmark.

    ``precision`` is the encoder's (``fp32``, ``int8``, ``fp16``); ``decoder_kind``
    is ``official`` (batch 1, no mask input) or ``full`` (batch axis, mask input).
    """

    name: str
    encoder: Path
    decoder: Path
    precision: str
    decoder_kind: str
    checkpoint: Path | None
    note: str = ""


@dataclass(frozen=True)
class Unavailable:
    """A variant that could not be made, and why (a table row says so)."""

    name: str
    reason: str


def _official(reference: Path) -> ModelVariant:
    onnx_dir = reference / "onnx"
    checkpoint = reference / "edge_sam_random.pth"
    return ModelVariant(
        name="fp32",
        encoder=onnx_dir / "edge_sam_random_encoder.onnx",
        decoder=onnx_dir / "edge_sam_random_decoder.onnx",
        precision="fp32",
        decoder_kind="official",
        checkpoint=checkpoint if checkpoint.is_file() else None,
        note="official-contract files (authors' export script, random weights)",
    )


def _cached(cache: Path, names: list[str], checkpoint: Path | None) -> dict[str, Path] | None:
    """The cached files for ``names`` if a manifest newer than the checkpoint lists them.

    Files that an older exporter wrote are not reused. Without the checkpoint
    (a GPU machine given only the exported files) the cache is taken as it is.
    """
    manifest = cache / f"{_EXPORT_NAME}_manifest.json"
    if not manifest.is_file():
        return None
    if checkpoint is not None:
        digest = cache / _DIGEST_FILE
        if manifest.stat().st_mtime < checkpoint.stat().st_mtime or (
            not digest.is_file() or digest.read_text().strip() != exporter_digest()
        ):
            return None
    try:
        listed = json.loads(manifest.read_text()).get("files", [])
    except (OSError, ValueError):
        return None
    present = {str(entry.get("file", "")) for entry in listed if isinstance(entry, dict)}
    files = {name: cache / f"{_EXPORT_NAME}_{_KEYS[name]}.onnx" for name in names}
    if all(path.is_file() for path in files.values()) and (
        not present or all(path.name in present for path in files.values())
    ):
        return files
    return None


def _export(
    checkpoint: Path, cache: Path, names: list[str], sources: list[Path]
) -> dict[str, Path]:
    from benchmarks._child import varied_images
    from edgesam.export import export_onnx

    variants: list[Any] = [name for name in names if name in _KEYS]
    calibration = (
        list(varied_images(sources, CALIBRATION_IMAGES, seed=1)) if "int8" in variants else []
    )
    started = time.perf_counter()
    result = export_onnx(
        checkpoint,
        cache,
        variants=variants,
        model_name=_EXPORT_NAME,
        calibration_images=calibration,
    )
    logger.info("exported %s in %.0f s", variants, time.perf_counter() - started)
    (cache / _DIGEST_FILE).write_text(exporter_digest() + "\n")
    return {name: Path(result.files[_KEYS[name]]) for name in variants}


def discover_variants(
    reference: Path, cache: Path, wanted: list[str]
) -> tuple[list[ModelVariant], list[Unavailable]]:
    """The variants in ``wanted`` that exist or can be exported, and those that cannot."""
    official = _official(reference)
    found: list[ModelVariant] = [official] if "fp32" in wanted else []
    exported = [name for name in wanted if name in _KEYS]
    if not exported:
        return found, []
    files = _cached(cache, exported, official.checkpoint)
    if files is None:
        if official.checkpoint is None:
            return found, [Unavailable(name, "edge_sam_random.pth not found") for name in exported]
        sources = sorted(path for path in (reference / "images").iterdir() if path.is_file())
        try:
            files = _export(official.checkpoint, cache, exported, sources)
        except Exception as err:  # the exporter is optional and may be missing or broken
            logger.warning("export failed: %s: %s", type(err).__name__, err)
            return found, [
                Unavailable(name, f"edgesam.export failed: {type(err).__name__}: {err}")
                for name in exported
            ]
    for name in exported:
        path = files[name]
        if name == "full":
            found.append(
                ModelVariant(
                    "full",
                    official.encoder,
                    path,
                    "fp32",
                    "full",
                    official.checkpoint,
                    note="fp32 encoder + exported full decoder (batch axis, mask input)",
                )
            )
        else:
            found.append(
                ModelVariant(
                    name,
                    path,
                    official.decoder,
                    name,
                    "official",
                    official.checkpoint,
                    note=f"exported {name} encoder + official decoder",
                )
            )
    return found, []
