"""A second export into the same folder adds to the manifest instead of replacing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from edgesam.export._manifest import FORMAT, VERSION, kept_entries

SETTINGS: dict[str, Any] = {
    "checkpoint_sha256": "a" * 64,
    "upsample_mode": "bilinear",
    "opset": 11,
    "stability_score": False,
}


def _folder(tmp_path: Path, **header: Any) -> Path:
    files = []
    for key in ("encoder", "decoder", "full_decoder"):
        path = tmp_path / f"m_{key}.onnx"
        path.write_bytes(key.encode() * 10)
        files.append({"file": path.name, "key": key, "bytes": path.stat().st_size})
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model": "m",
        "checkpoint": {"file": "m.pth", "sha256": header.get("sha256", "a" * 64)},
        "upsample_mode": "bilinear",
        "opset": header.get("opset", 11),
        "scores": "iou",
        "files": files,
    }
    manifest = tmp_path / "m_manifest.json"
    manifest.write_text(json.dumps(document))
    return manifest


def test_entries_of_files_not_rewritten_are_kept(tmp_path: Path) -> None:
    manifest = _folder(tmp_path)
    kept, dropped = kept_entries(manifest, replaced=["full_decoder", "int8_encoder"], **SETTINGS)
    assert [entry["key"] for entry in kept] == ["encoder", "decoder"]
    assert dropped == []


def test_entries_from_other_settings_or_changed_files_are_dropped(tmp_path: Path) -> None:
    manifest = _folder(tmp_path, opset=17)
    kept, dropped = kept_entries(manifest, replaced=["int8_encoder"], **SETTINGS)
    assert kept == []
    assert dropped == ["m_encoder.onnx", "m_decoder.onnx", "m_full_decoder.onnx"]

    manifest = _folder(tmp_path)
    (tmp_path / "m_decoder.onnx").write_bytes(b"other")
    (tmp_path / "m_full_decoder.onnx").unlink()
    kept, dropped = kept_entries(manifest, replaced=["int8_encoder"], **SETTINGS)
    assert [entry["key"] for entry in kept] == ["encoder"]
    assert dropped == ["m_decoder.onnx", "m_full_decoder.onnx"]


def test_missing_or_unreadable_manifest_keeps_nothing(tmp_path: Path) -> None:
    assert kept_entries(tmp_path / "none.json", replaced=[], **SETTINGS) == ([], [])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert kept_entries(broken, replaced=[], **SETTINGS) == ([], [])
    escaping = _folder(tmp_path)
    document = json.loads(escaping.read_text())
    document["files"][0]["file"] = "../outside.onnx"
    escaping.write_text(json.dumps(document))
    kept, _ = kept_entries(escaping, replaced=[], **SETTINGS)
    assert "../outside.onnx" not in [entry["file"] for entry in kept]
