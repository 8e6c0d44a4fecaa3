"""export_onnx: the manifest, option checks, and all-or-nothing writing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from edgesam import InvalidInputError
from edgesam.errors import CheckpointError, ExportError

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

ALL_KEYS = {"encoder", "decoder", "full_decoder", "fp16_encoder", "int8_encoder"}


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint with the official layout and fresh random weights (no reference data)."""
    from edgesam.export import EdgeSamNetwork

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("checkpoint") / "my_model.pth"
    torch.save(EdgeSamNetwork().state_dict(), path)
    return path


def listing(directory: Path) -> dict[str, bytes]:
    """Every entry under ``directory`` (hidden ones too) with its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(directory.rglob("*"))
    }


# -- a complete export ------------------------------------------------------------------


@pytest.mark.reference
def test_result_and_manifest(exported: Any, reference: Any) -> None:
    assert set(exported.files) == ALL_KEYS
    assert exported.model_name == "edge_sam_random"
    assert sorted(p.name for p in exported.output_dir.iterdir()) == sorted(
        [path.name for path in exported.files.values()] + [exported.manifest.name]
    )  # nothing else, no staging folder left
    manifest = json.loads(exported.manifest.read_text())
    assert manifest["format"] == "edgesam-onnx-export"
    assert manifest["model"] == "edge_sam_random"
    assert manifest["checkpoint"] == {
        "file": "edge_sam_random.pth",
        "sha256": reference.meta["checkpoint_sha256"],
    }
    assert manifest["opset"] == 11
    assert manifest["upsample_mode"] == "bilinear"
    assert manifest["scores"] == "iou"
    entries = {entry["key"]: entry for entry in manifest["files"]}
    assert set(entries) == ALL_KEYS
    expected_meta = {
        "encoder": ("official", "encoder", "float32"),
        "decoder": ("official", "decoder", "float32"),
        "full_decoder": ("full", "decoder", "float32"),
        "fp16_encoder": ("fp16", "encoder", "float16"),
        "int8_encoder": ("int8", "encoder", "int8"),
    }
    for key, path in exported.files.items():
        entry = entries[key]
        assert (entry["variant"], entry["role"], entry["precision"]) == expected_meta[key]
        assert entry["file"] == path.name
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        model = onnx.load(str(path))
        assert entry["opset"] == next(o.version for o in model.opset_import if o.domain == "")
        for kind, values in (("inputs", model.graph.input), ("outputs", model.graph.output)):
            assert [item["name"] for item in entry[kind]] == [value.name for value in values]
            assert all(item["dtype"] == "float32" for item in entry[kind])
    assert entries["decoder"]["inputs"][1] == {
        "name": "point_coords",
        "dtype": "float32",
        "shape": [1, "num_points", 2],
    }
    assert entries["encoder"]["outputs"] == [
        {"name": "image_embeddings", "dtype": "float32", "shape": [1, 256, 64, 64]}
    ]
    assert entries["int8_encoder"]["opset"] >= 13


def test_reexport_replaces_files(random_checkpoint: Path, tmp_path: Path) -> None:
    from edgesam.export import export_onnx

    first = export_onnx(random_checkpoint, tmp_path, variants=["full"])
    assert first.model_name == "my_model"
    assert set(first.files) == {"full_decoder"}
    assert first.files["full_decoder"] == tmp_path / "my_model_full_decoder.onnx"
    before = first.files["full_decoder"].read_bytes()
    second = export_onnx(
        random_checkpoint, tmp_path, variants=["full"], stability_score=True, model_name="my_model"
    )
    assert second.files == first.files
    assert second.files["full_decoder"].read_bytes() != before
    assert json.loads(second.manifest.read_text())["scores"] == "stability"
    assert sorted(listing(tmp_path)) == ["my_model_full_decoder.onnx", "my_model_manifest.json"]


# -- options are checked before anything is written ---------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variants": ["official", "onnx"]}, "variants must be among"),
        ({"variants": []}, "variants is empty"),
        ({"model_name": "../escape"}, "not usable as a file-name prefix"),
        ({"model_name": ".hidden"}, "not usable as a file-name prefix"),
        ({"opset": 10}, r"opset must be an integer in \[11, 20\]"),
        ({"opset": 21}, r"opset must be an integer in \[11, 20\]"),
        ({"upsample_mode": "nearest"}, "upsample_mode must be one of bilinear, bicubic"),
        ({"variants": ["int8"]}, "needs calibration images"),
        ({"variants": ["int8"], "calibration_images": ["nope.jpg"]}, "cannot be read"),
        (
            {"variants": ["int8"], "calibration_images": [np.zeros((4, 4), np.uint8)]},
            "must be \\(H, W, 3\\) uint8",
        ),
    ],
)
def test_invalid_options(
    random_checkpoint: Path, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    from edgesam.export import export_onnx

    output = tmp_path / "out"
    with pytest.raises(InvalidInputError, match=message):
        export_onnx(random_checkpoint, output, **options)
    assert not output.exists()


def test_bad_checkpoint_writes_nothing(tmp_path: Path) -> None:
    from edgesam.export import export_onnx

    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    output = tmp_path / "out"
    with pytest.raises(CheckpointError, match="not an EdgeSAM checkpoint"):
        export_onnx(other, output)
    assert not output.exists()


# -- unwritable destinations --------------------------------------------------------------


def test_output_under_a_file(random_checkpoint: Path, tmp_path: Path) -> None:
    from edgesam.export import export_onnx

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot create the output directory"):
        export_onnx(random_checkpoint, blocker / "models", variants=["full"])
    with pytest.raises(ExportError, match="cannot create the output directory"):
        export_onnx(random_checkpoint, blocker, variants=["full"])
    assert listing(tmp_path) == {"file.txt": b"x"}


def test_destination_is_a_directory(random_checkpoint: Path, tmp_path: Path) -> None:
    from edgesam.export import export_onnx

    (tmp_path / "my_model_full_decoder.onnx").mkdir()
    with pytest.raises(ExportError, match="a directory of that name exists"):
        export_onnx(random_checkpoint, tmp_path, variants=["full"])
    assert listing(tmp_path) == {"my_model_full_decoder.onnx": b"<dir>"}


# -- failures half-way leave the folder as it was -----------------------------------------


def _fake_exports(monkeypatch: pytest.MonkeyPatch, fail_on_call: int, error: BaseException) -> None:
    """Replace tracing by writing small files; the n-th call writes half a file and fails."""
    calls = []

    def fake_export_graph(spec: Any, destination: Path, *, opset: int) -> None:
        calls.append(destination)
        destination.write_bytes(b"half a model")
        if len(calls) == fail_on_call:
            raise error

    monkeypatch.setattr("edgesam.export._api.export_graph", fake_export_graph)


@pytest.mark.parametrize(
    "error", [ExportError("tracing failed"), KeyboardInterrupt(), OSError(28, "No space left")]
)
def test_failure_leaves_previous_files_untouched(
    random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    from edgesam.export import export_onnx

    (tmp_path / "my_model_encoder.onnx").write_bytes(b"previous encoder")
    (tmp_path / "keep.txt").write_text("unrelated")
    before = listing(tmp_path)
    _fake_exports(monkeypatch, fail_on_call=3, error=error)  # encoder, decoder ok; full fails
    expected = ExportError if not isinstance(error, KeyboardInterrupt) else KeyboardInterrupt
    with pytest.raises(expected):
        export_onnx(random_checkpoint, tmp_path, variants=["official", "full"])
    assert listing(tmp_path) == before


def test_failure_in_quantisation_leaves_nothing(
    random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgesam.export import export_onnx

    _fake_exports(monkeypatch, fail_on_call=0, error=ExportError("unused"))

    def broken_quantiser(source: Path, destination: Path, images: Any) -> None:
        destination.write_bytes(b"partial int8")
        raise ExportError("quantising the encoder to int8 failed: boom")

    monkeypatch.setattr("edgesam.export._api.quantize_encoder", broken_quantiser)
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ExportError, match="boom"):
        export_onnx(random_checkpoint, tmp_path, variants=["int8"], calibration_images=[image])
    assert listing(tmp_path) == {}


def test_a_real_tracing_failure_is_an_export_error(
    random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgesam.export import export_onnx
    from edgesam.export._graphs import FullDecoderGraph

    def broken_forward(self: Any, *args: Any) -> Any:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(FullDecoderGraph, "forward", broken_forward)
    with pytest.raises(ExportError, match=r"exporting my_model_full_decoder\.onnx failed"):
        export_onnx(random_checkpoint, tmp_path, variants=["full"])
    assert listing(tmp_path) == {}
