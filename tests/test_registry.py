"""The model registry: names, repository, pinned files, licence, look-up errors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from edgesam._registry import DEFAULT_MODEL, FILE_ROLES, MODELS, FileSpec, ModelSpec, get_model_spec
from edgesam.errors import InvalidInputError, UnknownModelError

# The pins, as published in docs/edgesam-facts.md ("Where the official files are").
EXPECTED_PINS = {
    "weights/edge_sam.pth": (
        38807540,
        "439b086a20ab6fba90c12cba32e0001ba3aa726da5791ff8738acdd440330991",
    ),
    "weights/edge_sam_3x.pth": (
        38807540,
        "5a3e3261da9e2f4c8154410885689ae57d09cbf4cf5d0c848b9d80b6df336ece",
    ),
    "weights/edge_sam_encoder.onnx": (
        22098300,
        "c051e69a2a16ca8f5e09583ca18420ef0e75a67387dd90228ac9438f7f01357a",
    ),
    "weights/edge_sam_decoder.onnx": (
        15937006,
        "e820af76837271db87478851603c6ce855906ca96baae2238217c2d5a38e0926",
    ),
    "weights/edge_sam_3x_encoder.onnx": (
        22098300,
        "719a498cf5b3fe9be9f01ee513e13d3915f9028aa4f23dfd30eaaa0a17143159",
    ),
    "weights/edge_sam_3x_decoder.onnx": (
        15937006,
        "83a2174d54571596913dcb7455d021e713623c3dca30a31c8c41ab98c9fb0863",
    ),
}
FACTS_FILE = Path(__file__).resolve().parents[2] / "shared" / "docs" / "edgesam-facts.md"


def test_known_models_and_default() -> None:
    assert list(MODELS) == ["edge_sam", "edge_sam_3x"]
    assert DEFAULT_MODEL == "edge_sam_3x"
    assert get_model_spec(DEFAULT_MODEL) is MODELS["edge_sam_3x"]


@pytest.mark.parametrize("name", ["edge_sam", "edge_sam_3x"])
def test_official_models_live_in_the_authors_space(name: str) -> None:
    spec = get_model_spec(name)
    assert spec.name == name
    assert (spec.repo_id, spec.repo_type) == ("chongzhou/EdgeSAM", "space")
    assert spec.repo_url == "https://huggingface.co/spaces/chongzhou/EdgeSAM"
    assert spec.encoder.path == f"weights/{name}_encoder.onnx"
    assert spec.decoder.path == f"weights/{name}_decoder.onnx"
    assert spec.checkpoint.path == f"weights/{name}.pth"
    assert "S-Lab License 1.0" in spec.licence
    assert "non-commercial" in spec.licence
    assert spec.licence_url.startswith("https://")


def test_every_pin_is_exactly_the_published_one() -> None:
    pinned = {
        spec.file(role).path: (spec.file(role).size, spec.file(role).sha256)
        for spec in MODELS.values()
        for role in FILE_ROLES
    }
    assert pinned == EXPECTED_PINS


def test_pins_match_the_facts_file_when_present() -> None:
    if not FACTS_FILE.is_file():
        pytest.skip(f"{FACTS_FILE} not found (it sits beside the checkout in CI)")
    rows = re.findall(
        r"^\| (weights/\S+) \| (\d+) \| ([0-9a-f]{64}) \|$",
        FACTS_FILE.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    assert {path: (int(size), digest) for path, size, digest in rows} == EXPECTED_PINS


def test_pins_are_well_formed() -> None:
    for spec in MODELS.values():
        for role in FILE_ROLES:
            file = spec.file(role)
            assert re.fullmatch(r"[0-9a-f]{64}", file.sha256)
            assert file.size > 0
            assert file.filename == file.path.rsplit("/", 1)[1]


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODELS["mine"] = MODELS["edge_sam"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        MODELS["edge_sam"].repo_id = "someone/else"  # type: ignore[misc]


def test_unknown_model_lists_names_and_suggests_the_closest() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_model_spec("edge-sam-3x")
    message = str(info.value)
    assert "'edge-sam-3x'" in message
    assert "'edge_sam', 'edge_sam_3x'" in message
    assert "did you mean 'edge_sam_3x'?" in message
    assert isinstance(info.value, ValueError)


def test_unknown_model_without_a_close_match_has_no_guess() -> None:
    with pytest.raises(UnknownModelError, match="known models are") as info:
        get_model_spec("mobile_sam_vit_h")
    assert "did you mean" not in str(info.value)


def test_model_name_must_be_a_string() -> None:
    with pytest.raises(UnknownModelError, match="got int"):
        get_model_spec(3)  # type: ignore[arg-type]


def test_file_role_is_checked() -> None:
    with pytest.raises(InvalidInputError, match="'encoder', 'decoder', 'checkpoint'"):
        MODELS["edge_sam"].file("mask_decoder")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "size", "digest", "complaint"),
    [
        ("", 1, "0" * 64, "path"),
        ("/abs/file.onnx", 1, "0" * 64, "path"),
        ("weights\\file.onnx", 1, "0" * 64, "path"),
        ("weights/file.onnx", 0, "0" * 64, "size"),
        ("weights/file.onnx", True, "0" * 64, "size"),
        ("weights/file.onnx", 1, "0" * 63, "sha256"),
        ("weights/file.onnx", 1, "A" * 64, "sha256"),
    ],
)
def test_file_spec_validates_its_fields(path: str, size: int, digest: str, complaint: str) -> None:
    with pytest.raises(InvalidInputError, match=f"FileSpec.{complaint}"):
        FileSpec(path, size, digest)


def test_model_spec_defaults_to_the_official_space() -> None:
    file = FileSpec("weights/a.onnx", 3, "a" * 64)
    spec = ModelSpec(name="test", encoder=file, decoder=file, checkpoint=file)
    assert (spec.repo_id, spec.repo_type) == ("chongzhou/EdgeSAM", "space")
    with pytest.raises(TypeError):
        ModelSpec("test", file, file, file)  # type: ignore[call-arg]
