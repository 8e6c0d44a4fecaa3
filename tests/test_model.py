"""EdgeSam's public boundary: the arguments of from_files/from_pretrained, encode and decode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest

import edgesam._hub
from edgesam import EdgeSam, InvalidImageError, InvalidInputError, InvalidPromptError, SamPredictor
from edgesam.errors import InvalidEmbeddingError, ProviderError
from tiny_models import expected_embedding

AZURE = "AzureExecutionProvider"
CPU = "CPUExecutionProvider"


def _embedding() -> np.ndarray:
    return np.full((1, 256, 64, 64), 0.5, dtype=np.float32)


# -- from_files / from_pretrained arguments --------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "path"),
    [
        ("encoder", None),
        ("encoder", 3),
        ("encoder", b"encoder.onnx"),
        ("decoder", None),
        ("decoder", 3.5),
        ("checkpoint", 3),  # None means no checkpoint
        ("checkpoint", ["model.pth"]),
    ],
)
def test_paths_must_be_str_or_pathlike(
    tiny_model_files: dict[str, Path], argument: str, path: object
) -> None:
    paths: dict[str, Any] = {
        "encoder": tiny_model_files["encoder"],
        "decoder": tiny_model_files["decoder"],
        argument: path,
    }
    with pytest.raises(InvalidInputError, match=f"{argument} must be the path of a file") as info:
        SamPredictor.from_files(**paths, providers=["cpu"])
    assert type(path).__name__ in str(info.value)


def test_name_must_be_a_str(tiny_model_files: dict[str, Path]) -> None:
    with pytest.raises(InvalidInputError, match="name must be a str") as info:
        EdgeSam.from_files(
            tiny_model_files["encoder"],
            tiny_model_files["decoder"],
            name=5,  # type: ignore[arg-type]
            providers=["cpu"],
        )
    assert "int 5" in str(info.value)


@pytest.mark.parametrize("options", ["fast", {}])
def test_session_options_are_checked_before_the_files(tmp_path: Path, options: object) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(InvalidInputError, match="session_options must be an onnxruntime"):
        EdgeSam.from_files(missing, missing, session_options=options)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"session_options": "fast"}, InvalidInputError),
        ({"providers": [("cpu",)]}, ProviderError),
        ({"providers": ["gpu"]}, ProviderError),
    ],
)
def test_from_pretrained_checks_its_arguments_before_downloading(
    monkeypatch: pytest.MonkeyPatch, arguments: dict[str, Any], error: type[Exception]
) -> None:
    def no_download(*args: object, **kwargs: object) -> Path:
        raise AssertionError("downloaded before checking the arguments")

    monkeypatch.setattr(edgesam._hub, "fetch_file", no_download)
    with pytest.raises(error):
        EdgeSam.from_pretrained(**arguments)


# -- encode ----------------------------------------------------------------------------------


def test_encode_casts_a_float64_image_input(tiny_model: EdgeSam) -> None:
    image = np.random.default_rng(0).normal(size=(1, 3, 1024, 1024))
    embedding = tiny_model.encode(image)
    assert embedding.dtype == np.float32
    np.testing.assert_allclose(embedding, expected_embedding(image), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((1, 3, 512, 512), dtype=np.float32), r"got shape \(1, 3, 512, 512\)"),
        (np.zeros((3, 1024, 1024), dtype=np.float32), r"got shape \(3, 1024, 1024\)"),
        (np.zeros((1, 3, 1024, 1024), dtype=bool), "got an array of bool"),
        ("photo.jpg", "got an array of <U9"),
        ([[1.0], [1.0, 2.0]], "got list"),
    ],
)
def test_encode_refuses_what_is_not_an_image_input(
    tiny_model: EdgeSam, image: object, match: str
) -> None:
    with pytest.raises(InvalidImageError, match="image_input must be") as info:
        tiny_model.encode(image)  # type: ignore[arg-type]
    assert info.match(match)
    assert info.value.argument == "image_input"


# -- decode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tiny_model", "tiny_full_model"])
def test_decode_casts_integer_points_and_labels(model: str, request: pytest.FixtureRequest) -> None:
    edge: EdgeSam = request.getfixturevalue(model)
    coords = np.array([[[10, 20], [30, 40]]])
    labels = np.array([[1, 0]])
    scores, logits = edge.decode(_embedding(), coords, labels)
    expected_scores, expected_logits = edge.decode(
        _embedding(), coords.astype(np.float32), labels.astype(np.float32)
    )
    np.testing.assert_array_equal(scores, expected_scores)
    np.testing.assert_array_equal(logits, expected_logits)
    # The tiny decoder's scores: [count, sum of labels, sum of x, mean embedding].
    np.testing.assert_allclose(scores, [[2.0, 1.0, 40.0, 0.5]], atol=1e-6)


_COORDS = np.array([[[10.0, 20.0]]], dtype=np.float32)
_LABELS = np.array([[1.0]], dtype=np.float32)


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"embedding": np.zeros((256, 64, 64), np.float32)}, InvalidEmbeddingError, "embedding"),
        ({"embedding": "embedding.npz"}, InvalidEmbeddingError, "embedding"),
        ({"point_coords": np.zeros((1, 2), np.float32)}, InvalidPromptError, "point_coords"),
        ({"point_coords": np.zeros((1, 1, 3), np.float32)}, InvalidPromptError, "point_coords"),
        ({"point_coords": np.zeros((0, 1, 2), np.float32)}, InvalidPromptError, "B, N >= 1"),
        ({"point_coords": np.array([[[np.nan, 1.0]]])}, InvalidPromptError, "finite"),
        ({"point_coords": None}, InvalidPromptError, "point_coords"),
        ({"point_labels": np.zeros((1, 2), np.float32)}, InvalidPromptError, "one entry per"),
        ({"point_labels": np.array([[5.0]])}, InvalidPromptError, r"got \[5.0\]"),
        ({"point_labels": np.array([[np.nan]])}, InvalidPromptError, "point_labels"),
        ({"point_labels": [["1"]]}, InvalidPromptError, "point_labels"),
        ({"mask_input": np.zeros((1, 256, 256), np.float32)}, InvalidPromptError, "mask_input"),
        ({"mask_input": np.full((1, 1, 256, 256), np.inf)}, InvalidPromptError, "finite"),
    ],
)
def test_decode_refuses_malformed_inputs(
    tiny_full_model: EdgeSam, arguments: dict[str, Any], error: type[Exception], match: str
) -> None:
    inputs: dict[str, Any] = {
        "embedding": _embedding(),
        "point_coords": _COORDS,
        "point_labels": _LABELS,
        **arguments,
    }
    with pytest.raises(error, match=match) as info:
        tiny_full_model.decode(**inputs)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.argument == next(iter(arguments))  # the one argument that was wrong


# -- a session on an accelerator keeps it ----------------------------------------------------


@pytest.mark.skipif(
    AZURE not in onnxruntime.get_available_providers(),
    reason="needs an onnxruntime build with AzureExecutionProvider (the stock CPU wheel)",
)
def test_bad_inputs_leave_the_providers_unchanged(tiny_model_files: dict[str, Path]) -> None:
    model = EdgeSam.from_files(
        tiny_model_files["encoder"], tiny_model_files["decoder"], providers=[AZURE, "cpu"]
    )
    both = {"encoder": [AZURE, CPU], "decoder": [AZURE, CPU]}
    assert model.providers == both
    # The audit's case: int64 points and labels are cast, not refused by onnxruntime.
    scores, _ = model.decode(_embedding(), np.array([[[10, 10]]]), np.array([[1]]))
    np.testing.assert_allclose(scores, [[1.0, 1.0, 10.0, 0.5]], atol=1e-6)
    with pytest.raises(InvalidPromptError):
        model.decode(_embedding(), np.zeros((1, 1, 3)), np.ones((1, 1)))
    with pytest.raises(InvalidImageError):
        model.encode(np.zeros((1, 3, 10, 10), dtype=np.float32))
    assert model.providers == both
