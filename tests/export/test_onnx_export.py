"""Our ONNX export has the authors' contract and computes what their files compute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from .export_helpers import (
    EMBEDDING_TOL,
    LOGITS_TOL,
    PROMPTS,
    SCORE_TOL,
    Reference,
    decoder_points,
    encoder_input,
    stability_scores,
)

pytest.importorskip("torch")

pytestmark = [pytest.mark.torch, pytest.mark.reference]


def signature(path: Path) -> dict[str, list[tuple[str, int, list[int | str]]]]:
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values: Any) -> list[tuple[str, int, list[int | str]]]:
        return [
            (
                value.name,
                value.type.tensor_type.elem_type,
                [
                    d.dim_param if d.HasField("dim_param") else d.dim_value
                    for d in value.type.tensor_type.shape.dim
                ],
            )
            for value in values
        ]

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}


def default_opset(path: Path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


@pytest.mark.parametrize("role", ["encoder", "decoder"])
def test_contract_is_the_official_one(exported: Any, reference: Reference, role: str) -> None:
    ours = signature(exported.files[role])
    theirs = signature(reference.directory / "onnx" / f"edge_sam_random_{role}.onnx")
    # Inputs: identical names, dtypes and shapes (including the "num_points" axis).
    assert ours["inputs"] == theirs["inputs"]
    # Outputs: identical names, order, dtypes and ranks (the authors' output
    # dims are exporter-generated symbols; ours may be concrete).
    assert [(n, t, len(s)) for n, t, s in ours["outputs"]] == [
        (n, t, len(s)) for n, t, s in theirs["outputs"]
    ]
    assert (
        default_opset(exported.files[role])
        == 11
        == default_opset(reference.directory / "onnx" / f"edge_sam_random_{role}.onnx")
    )


def test_encoder_matches_the_authors_file(
    exported: Any, reference: Reference, cpu_session: Any
) -> None:
    ours = cpu_session(exported.files["encoder"])
    theirs = cpu_session(reference.directory / "onnx" / "edge_sam_random_encoder.onnx")
    for name in ("groceries", "tiny"):
        feed = {"image": encoder_input(reference.image(name))}
        (a,) = ours.run(None, feed)
        (b,) = theirs.run(None, feed)
        assert a.shape == (1, 256, 64, 64)
        assert np.abs(a - b).max() <= EMBEDDING_TOL
        assert np.abs(a - reference.vectors[f"{name}/embedding"]).max() <= EMBEDDING_TOL


def decoder_cases(reference: Reference) -> list[dict[str, np.ndarray]]:
    """The reference prompts on two images, plus odd ones: many points, label -2, no padding."""
    cases = []
    for image in ("truck", "tiny"):
        original_size, _ = reference.sizes(image)
        for prompt in PROMPTS:
            coords, labels = decoder_points(reference.prompt(image, prompt), original_size)
            cases.append(
                {
                    "image_embeddings": reference.vectors[f"{image}/embedding"],
                    "point_coords": coords,
                    "point_labels": labels,
                }
            )
    rng = np.random.default_rng(7)
    for labels in ([1.0], [1, 0, 1, 0, 1, 0, 1, -1], [-2, 1, 2, 3], [0, 0, 2, 3, -1]):
        count = len(labels)
        cases.append(
            {
                "image_embeddings": reference.vectors["groceries/embedding"],
                "point_coords": (rng.random((1, count, 2)) * 1024).astype(np.float32),
                "point_labels": np.array([labels], dtype=np.float32),
            }
        )
    return cases


def test_decoder_matches_the_authors_file(
    exported: Any, reference: Reference, cpu_session: Any
) -> None:
    ours = cpu_session(exported.files["decoder"])
    theirs = cpu_session(reference.directory / "onnx" / "edge_sam_random_decoder.onnx")
    assert [o.name for o in ours.get_outputs()] == ["scores", "masks"]
    for feed in decoder_cases(reference):
        scores, masks = ours.run(None, feed)
        their_scores, their_masks = theirs.run(None, feed)
        assert scores.shape == their_scores.shape == (1, 4)
        assert masks.shape == their_masks.shape == (1, 4, 256, 256)
        assert np.abs(masks - their_masks).max() <= LOGITS_TOL
        assert np.abs(scores - their_scores).max() <= SCORE_TOL


def test_decoder_reproduces_the_reference_logits(
    exported: Any, reference: Reference, cpu_session: Any
) -> None:
    decoder = cpu_session(exported.files["decoder"])
    for image in reference.meta["images"]:
        original_size, _ = reference.sizes(image)
        for prompt in PROMPTS:
            coords, labels = decoder_points(reference.prompt(image, prompt), original_size)
            scores, masks = decoder.run(
                None,
                {
                    "image_embeddings": reference.vectors[f"{image}/embedding"],
                    "point_coords": coords,
                    "point_labels": labels,
                },
            )
            key = f"{image}/{prompt}"
            assert np.abs(masks[0] - reference.vectors[f"{key}/low_res_logits"]).max() <= LOGITS_TOL
            assert (
                np.abs(scores[0] - reference.vectors[f"{key}/iou_predictions"]).max() <= SCORE_TOL
            )


def test_stability_score_decoder(
    network: Any, reference: Reference, cpu_session: Any, tmp_path: Path
) -> None:
    from edgesam.export._onnx_export import decoder_spec, export_graph

    path = tmp_path / "stability_decoder.onnx"
    export_graph(decoder_spec(network, stability_score=True), path, opset=11)
    decoder = cpu_session(path)
    for image in ("truck", "synthetic"):
        original_size, _ = reference.sizes(image)
        for prompt in PROMPTS:
            coords, labels = decoder_points(reference.prompt(image, prompt), original_size)
            scores, masks = decoder.run(
                None,
                {
                    "image_embeddings": reference.vectors[f"{image}/embedding"],
                    "point_coords": coords,
                    "point_labels": labels,
                },
            )
            expected = reference.vectors[f"{image}/{prompt}/stability_scores"]
            assert np.abs(scores[0] - expected).max() <= SCORE_TOL
            np.testing.assert_array_equal(scores[0], stability_scores(masks[0]))


def test_stability_score_of_an_empty_mask_is_zero() -> None:
    import torch

    from edgesam.export._graphs import stability_score

    logits = torch.full((1, 2, 8, 8), -5.0)
    logits[0, 1, :4] = 3.0
    logits[0, 1, 4:5] = 0.5
    scores = stability_score(logits).numpy()
    np.testing.assert_allclose(scores, [[0.0, 32 / 40]], rtol=1e-6)


def test_other_opsets_export(network: Any, tmp_path: Path, cpu_session: Any) -> None:
    """A newer opset (here 17) gives the same decoder outputs."""
    from edgesam.export._onnx_export import decoder_spec, export_graph

    spec = decoder_spec(network, stability_score=False)
    export_graph(spec, tmp_path / "d17.onnx", opset=17)
    export_graph(spec, tmp_path / "d11.onnx", opset=11)
    assert default_opset(tmp_path / "d17.onnx") == 17
    feed = {
        "image_embeddings": np.random.default_rng(0).standard_normal((1, 256, 64, 64)),
        "point_coords": np.array([[[100.0, 200.0], [0.0, 0.0]]]),
        "point_labels": np.array([[1.0, -1.0]]),
    }
    feed = {k: v.astype(np.float32) for k, v in feed.items()}
    new = cpu_session(tmp_path / "d17.onnx").run(None, feed)
    old = cpu_session(tmp_path / "d11.onnx").run(None, feed)
    for a, b in zip(new, old, strict=True):
        assert np.abs(a - b).max() <= LOGITS_TOL
