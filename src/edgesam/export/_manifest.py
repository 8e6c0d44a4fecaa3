"""The manifest written beside exported files: what each file is and where it came from.

``<name>_manifest.json`` (schema version 1)::

    {
      "format": "edgesam-onnx-export", "version": 1,
      "model": "edge_sam_3x",
      "checkpoint": {"file": "edge_sam_3x.pth", "sha256": "..."},
      "upsample_mode": "bilinear", "opset": 11, "scores": "iou",
      "tools": {"edgesam": "...", "torch": "...", "onnx": "...", "onnxruntime": "..."},
      "files": [
        {"file": "edge_sam_3x_encoder.onnx", "key": "encoder", "variant": "official",
         "role": "encoder", "precision": "float32", "opset": 11,
         "bytes": 22106510, "sha256": "...",
         "inputs": [{"name": "image", "dtype": "float32", "shape": [1, 3, 1024, 1024]}],
         "outputs": [{"name": "image_embeddings", "dtype": "float32",
                      "shape": [1, 256, 64, 64]}]},
        ...
      ]
    }

Shapes list integers for fixed dimensions and names for dynamic ones
(``"num_points"``, ``"num_prompts"``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import helper

from edgesam._atomic import sha256_file

__all__ = ["FileRecord", "describe_file", "kept_entries", "manifest_document"]

FORMAT = "edgesam-onnx-export"
VERSION = 1
Role = Literal["encoder", "decoder"]
Precision = Literal["float32", "float16", "int8"]


@dataclass(frozen=True)
class FileRecord:
    """What one exported file is, before its bytes are described."""

    key: str
    variant: str
    role: Role
    precision: Precision


def _value_signature(value: onnx.ValueInfoProto) -> dict[str, Any]:
    tensor = value.type.tensor_type
    shape: list[int | str] = [
        dim.dim_param if dim.HasField("dim_param") else int(dim.dim_value)
        for dim in tensor.shape.dim
    ]
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    return {"name": value.name, "dtype": dtype, "shape": shape}


def describe_file(path: Path, record: FileRecord, *, final_name: str) -> dict[str, Any]:
    """The manifest entry of one written ONNX file (signature read from the file)."""
    model = onnx.load(str(path), load_external_data=False)
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    return {
        "file": final_name,
        "key": record.key,
        "variant": record.variant,
        "role": record.role,
        "precision": record.precision,
        "opset": int(opset),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "inputs": [_value_signature(value) for value in model.graph.input],
        "outputs": [_value_signature(value) for value in model.graph.output],
    }


def _tool_versions() -> dict[str, str]:
    versions = {}
    for package in ("edgesam", "torch", "onnx", "onnxruntime"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def kept_entries(
    manifest: Path,
    *,
    checkpoint_sha256: str,
    upsample_mode: str,
    opset: int,
    stability_score: bool,
    replaced: Sequence[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Entries of an existing ``manifest`` that a new export into its folder keeps.

    A second export into the same folder (say ``--variants fp16 int8`` after
    the official files) adds to the manifest instead of replacing it: the
    entries of files it does not rewrite are kept when they came from the same
    checkpoint with the same settings and are still on disk, unchanged in size.

    Returns
    -------
    (kept, dropped)
        The entries to keep, and the file names of earlier entries that cannot
        be kept (another checkpoint or settings, or the file gone or changed).
    """
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], []
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        return [], []
    checkpoint = document.get("checkpoint")
    same_source = (
        document.get("format") == FORMAT
        and document.get("version") == VERSION
        and isinstance(checkpoint, dict)
        and checkpoint.get("sha256") == checkpoint_sha256
        and document.get("upsample_mode") == upsample_mode
        and document.get("opset") == opset
        and document.get("scores") == ("stability" if stability_score else "iou")
    )
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    for entry in document["files"]:
        if not isinstance(entry, dict) or entry.get("key") in replaced:
            continue
        name = entry.get("file")
        if not isinstance(name, str) or Path(name).name != name:
            continue
        path = manifest.parent / name
        try:
            unchanged = path.is_file() and path.stat().st_size == entry.get("bytes")
        except OSError:
            unchanged = False
        if same_source and unchanged:
            kept.append(entry)
        else:
            dropped.append(name)
    return kept, dropped


def manifest_document(
    *,
    model_name: str,
    checkpoint: Path,
    checkpoint_sha256: str,
    upsample_mode: str,
    opset: int,
    stability_score: bool,
    files: Sequence[dict[str, Any]],
) -> str:
    """The manifest as pretty-printed JSON text."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_name,
        "checkpoint": {"file": checkpoint.name, "sha256": checkpoint_sha256},
        "upsample_mode": upsample_mode,
        "opset": opset,
        "scores": "stability" if stability_score else "iou",
        "tools": _tool_versions(),
        "files": list(files),
    }
    return json.dumps(document, indent=2) + "\n"
