"""from_pretrained and download() end to end: fake Hub on 127.0.0.1, tiny models, real code path.

The registry is patched with a model whose pinned files are the tiny test
models; everything else — hf_hub_download, the cache, verification, sessions —
is the code users run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import edgesam
from edgesam import SamPredictor
from edgesam._registry import FileSpec, ModelSpec
from edgesam.errors import (
    ChecksumMismatchError,
    DownloadError,
    MaskInputUnavailableError,
    UnknownModelError,
    WeightsNotFoundError,
)
from fakehub import FakeHub

REPO = "chongzhou/EdgeSAM"


def _spec(files: dict[str, bytes]) -> ModelSpec:
    def pin(role: str) -> FileSpec:
        content = files[role]
        return FileSpec(
            path=f"weights/tiny_{role}.bin",
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )

    return ModelSpec(
        name="tiny", encoder=pin("encoder"), decoder=pin("decoder"), checkpoint=pin("checkpoint")
    )


@pytest.fixture
def tiny_hub(
    fake_hub: FakeHub, tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeHub, ModelSpec]:
    files = {
        "encoder": tiny_model_files["encoder"].read_bytes(),
        "decoder": tiny_model_files["decoder"].read_bytes(),
        "checkpoint": b"not needed by these tests",
    }
    spec = _spec(files)
    for role, content in files.items():
        fake_hub.add(REPO, spec.file(role).path, content, repo_type="space")  # type: ignore[arg-type]

    import edgesam._download
    import edgesam._registry

    real = edgesam._registry.get_model_spec

    def get_model_spec(name: str) -> ModelSpec:
        return spec if name == "tiny" else real(name)

    monkeypatch.setattr(edgesam._registry, "get_model_spec", get_model_spec)
    monkeypatch.setattr(edgesam._download, "get_model_spec", get_model_spec)
    return fake_hub, spec


def _segment(predictor: SamPredictor) -> np.ndarray:
    predictor.set_image(np.full((40, 60, 3), 128, dtype=np.uint8))
    masks, _, _ = predictor.predict([[30, 20]], [1], multimask_output=False)
    return masks


def test_first_load_downloads_then_cache_serves_offline(
    tiny_hub: tuple[FakeHub, ModelSpec],
) -> None:
    hub, _ = tiny_hub
    predictor = SamPredictor.from_pretrained("tiny", providers=["cpu"])
    first = _segment(predictor)
    assert first[0, 20, 30]
    assert hub.count("GET", path_contains="tiny_encoder") >= 1
    assert hub.count("GET", path_contains="tiny_checkpoint") == 0  # fetched only for masks

    hub.stop()
    again = SamPredictor.from_pretrained("tiny", providers=["cpu"], local_files_only=True)
    np.testing.assert_array_equal(_segment(again), first)
    assert predictor.model.fingerprint == again.model.fingerprint


def test_offline_without_cache_is_clear(tiny_hub: tuple[FakeHub, ModelSpec]) -> None:
    with pytest.raises(WeightsNotFoundError, match="cache"):
        SamPredictor.from_pretrained("tiny", local_files_only=True)


def test_checksum_mismatch_refused(tiny_hub: tuple[FakeHub, ModelSpec]) -> None:
    hub, _ = tiny_hub
    hub.corrupt = True
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        SamPredictor.from_pretrained("tiny")


def test_server_error_is_download_error(
    tiny_hub: tuple[FakeHub, ModelSpec], no_retry_sleep: list[float]
) -> None:
    hub, _ = tiny_hub
    hub.fail_status = 500
    with pytest.raises(DownloadError, match="500"):
        SamPredictor.from_pretrained("tiny")


def test_download_function(tiny_hub: tuple[FakeHub, ModelSpec]) -> None:
    _, spec = tiny_hub
    paths = edgesam.download("tiny", checkpoint=True)
    assert set(paths) == {"encoder", "decoder", "checkpoint"}
    for role, path in paths.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.file(role).sha256  # type: ignore[arg-type]


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(UnknownModelError, match="edge_sam_3x"):
        SamPredictor.from_pretrained("edge_sam_4x")
    with pytest.raises(UnknownModelError):
        edgesam.download("mobile_sam")


def test_from_files_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="encoder"):
        SamPredictor.from_files(tmp_path / "nope.onnx", tmp_path / "nope2.onnx")


def test_mask_input_offline_without_checkpoint_is_clear(
    tiny_hub: tuple[FakeHub, ModelSpec],
) -> None:
    SamPredictor.from_pretrained("tiny", providers=["cpu"])  # caches encoder and decoder only
    offline = SamPredictor.from_pretrained("tiny", providers=["cpu"], local_files_only=True)
    offline.set_image(np.zeros((20, 30, 3), dtype=np.uint8))
    with pytest.raises(MaskInputUnavailableError, match="checkpoint"):
        offline.predict([[5, 5]], [1], mask_input=np.zeros((1, 256, 256), np.float32))


@pytest.mark.reference
def test_checkpoint_downloaded_lazily_on_first_mask_input(
    fake_hub: FakeHub,
    tiny_model_files: dict[str, Path],
    reference_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {
        "encoder": tiny_model_files["encoder"].read_bytes(),
        "decoder": tiny_model_files["decoder"].read_bytes(),
        "checkpoint": (reference_dir / "edge_sam_random.pth").read_bytes(),
    }
    spec = _spec(files)
    for role, content in files.items():
        fake_hub.add(REPO, spec.file(role).path, content, repo_type="space")  # type: ignore[arg-type]
    import edgesam._registry

    monkeypatch.setattr(edgesam._registry, "get_model_spec", lambda name: spec)
    predictor = SamPredictor.from_pretrained("tiny", providers=["cpu"])
    predictor.set_image(np.zeros((20, 30, 3), dtype=np.uint8))
    predictor.predict([[5, 5]], [1])
    assert fake_hub.count("GET", path_contains="tiny_checkpoint") == 0
    # the tiny decoder reports the embedding's mean as its last score: the mask changes it
    _, scores_mask, _ = predictor.predict(
        [[5, 5]],
        [1],
        mask_input=np.full((1, 256, 256), 3.0, np.float32),
        num_multimask_outputs=4,
    )
    assert fake_hub.count("GET", path_contains="tiny_checkpoint") == 1
    _, scores_plain, _ = predictor.predict([[5, 5]], [1], num_multimask_outputs=4)
    assert scores_mask[3] != pytest.approx(scores_plain[3])
    predictor.predict([[5, 5]], [1], mask_input=np.zeros((1, 256, 256), np.float32))
    assert fake_hub.count("GET", path_contains="tiny_checkpoint") == 1  # cached in memory
