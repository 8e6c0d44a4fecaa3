"""The full decoder: B prompt sets with optional masks in one run, same answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

from .export_helpers import LOGITS_TOL, SCORE_TOL, Reference, decoder_points

pytest.importorskip("torch")

pytestmark = [pytest.mark.torch, pytest.mark.reference]


def test_signature(exported: Any) -> None:
    graph = onnx.load(str(exported.files["full_decoder"])).graph

    def dims(value: Any) -> list[int | str]:
        return [
            d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value.type.tensor_type.shape.dim
        ]

    inputs = {v.name: (v.type.tensor_type.elem_type, dims(v)) for v in graph.input}
    float32 = onnx.TensorProto.FLOAT
    assert inputs == {
        "image_embeddings": (float32, [1, 256, 64, 64]),
        "point_coords": (float32, ["num_prompts", "num_points", 2]),
        "point_labels": (float32, ["num_prompts", "num_points"]),
        "mask_input": (float32, ["num_prompts", 1, 256, 256]),
        "has_mask_input": (float32, ["num_prompts"]),
    }
    outputs = [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in graph.output]
    assert outputs == [
        ("scores", float32, ["num_prompts", 4]),
        ("masks", float32, ["num_prompts", 4, 256, 256]),
    ]


def test_batch_equals_runs_of_the_official_decoder(
    exported: Any, reference: Reference, cpu_session: Any
) -> None:
    full = cpu_session(exported.files["full_decoder"])
    official = cpu_session(reference.directory / "onnx" / "edge_sam_random_decoder.onnx")
    embedding = reference.vectors["truck/embedding"]
    original_size, _ = reference.sizes("truck")
    rng = np.random.default_rng(3)
    # Prompt sets of one batch share N: a and c have 2 points (with padding or
    # box corners), b and d 3, and five random sets of 4.
    groups = [
        [decoder_points(reference.prompt("truck", p), original_size) for p in ("a", "c")],
        [decoder_points(reference.prompt("truck", p), original_size) for p in ("b", "d")],
        [
            (
                (rng.random((1, 4, 2)) * 1024).astype(np.float32),
                rng.choice([-1.0, 0.0, 1.0, 2.0, 3.0], size=(1, 4)).astype(np.float32),
            )
            for _ in range(5)
        ],
    ]
    for group in groups:
        coords = np.concatenate([c for c, _ in group])
        labels = np.concatenate([lab for _, lab in group])
        batch = len(group)
        scores, masks = full.run(
            None,
            {
                "image_embeddings": embedding,
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": np.zeros((batch, 1, 256, 256), dtype=np.float32),
                "has_mask_input": np.zeros(batch, dtype=np.float32),
            },
        )
        assert scores.shape == (batch, 4)
        assert masks.shape == (batch, 4, 256, 256)
        for row, (c, lab) in enumerate(group):
            one_scores, one_masks = official.run(
                None, {"image_embeddings": embedding, "point_coords": c, "point_labels": lab}
            )
            assert np.abs(masks[row] - one_masks[0]).max() <= LOGITS_TOL
            assert np.abs(scores[row] - one_scores[0]).max() <= SCORE_TOL


@pytest.mark.parametrize("image", ["truck", "tiny"])
def test_mask_input_reproduces_item_e(
    exported: Any, reference: Reference, cpu_session: Any, image: str
) -> None:
    """Row 0 with a's mask = reference e; row 1 without = reference a; NaN is ignored."""
    full = cpu_session(exported.files["full_decoder"])
    original_size, _ = reference.sizes(image)
    coords, labels = decoder_points(reference.prompt(image, "a"), original_size)
    previous = reference.vectors[f"{image}/a/low_res_logits"][0:1]
    mask_input = np.stack([previous, np.full_like(previous, np.nan)])
    scores, masks = full.run(
        None,
        {
            "image_embeddings": reference.vectors[f"{image}/embedding"],
            "point_coords": np.repeat(coords, 2, axis=0),
            "point_labels": np.repeat(labels, 2, axis=0),
            "mask_input": mask_input,
            "has_mask_input": np.array([1.0, 0.0], dtype=np.float32),
        },
    )
    for row, item in enumerate(("e", "a")):
        key = f"{image}/{item}"
        assert np.abs(masks[row] - reference.vectors[f"{key}/low_res_logits"]).max() <= LOGITS_TOL
        assert np.abs(scores[row] - reference.vectors[f"{key}/iou_predictions"]).max() <= SCORE_TOL


def test_stability_flavour(
    checkpoint: Any, reference: Reference, cpu_session: Any, tmp_path: Any
) -> None:
    from edgesam.export import export_onnx

    result = export_onnx(checkpoint, tmp_path, variants=["full"], stability_score=True)
    assert set(result.files) == {"full_decoder"}
    full = cpu_session(result.files["full_decoder"])
    original_size, _ = reference.sizes("groceries")
    points = [decoder_points(reference.prompt("groceries", p), original_size) for p in "bd"]
    scores, _ = full.run(
        None,
        {
            "image_embeddings": reference.vectors["groceries/embedding"],
            "point_coords": np.concatenate([c for c, _ in points]),
            "point_labels": np.concatenate([lab for _, lab in points]),
            "mask_input": np.zeros((2, 1, 256, 256), dtype=np.float32),
            "has_mask_input": np.zeros(2, dtype=np.float32),
        },
    )
    for row, prompt in enumerate("bd"):
        expected = reference.vectors[f"groceries/{prompt}/stability_scores"]
        assert np.abs(scores[row] - expected).max() <= SCORE_TOL
