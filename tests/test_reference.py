"""End to end on the authors' own ONNX exports: the SDK must reproduce their torch pipeline.

``../shared/reference/onnx/`` holds ``edge_sam_random.pth`` exported by the
authors' script (the same graphs as the published files) and ``vectors.npz``
what their torch ``SamPredictor`` produced from that checkpoint. Tolerances
(see ../shared/reference/README.md): embedding 1e-4 and low-res logits 1e-3
max abs (float differences between torch and onnxruntime), scores 1e-3, every
mask IoU >= 0.999.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import REFERENCE_IMAGES
from edgesam import SamPredictor

pytestmark = pytest.mark.reference

PROMPTS = ("a", "b", "c", "d")
SELECTIONS = [
    # (predict keyword arguments, which reference outputs they return)
    ({"multimask_output": False}, [0]),
    ({"multimask_output": True}, [1, 2, 3]),
    ({"num_multimask_outputs": 1}, [0]),
    ({"num_multimask_outputs": 3}, [1, 2, 3]),
    ({"num_multimask_outputs": 4}, [0, 1, 2, 3]),
]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> dict[str, Any]:
    return {
        "vectors": np.load(reference_dir / "vectors.npz"),
        "meta": json.loads((reference_dir / "vectors.json").read_text()),
        "dir": reference_dir,
    }


@pytest.fixture(scope="module")
def predictors(reference: dict[str, Any]) -> dict[str, SamPredictor]:
    """One predictor per reference image, image already set (the encoder runs once each)."""
    onnx_dir = reference["dir"] / "onnx"
    base = SamPredictor.from_files(
        onnx_dir / "edge_sam_random_encoder.onnx",
        onnx_dir / "edge_sam_random_decoder.onnx",
        providers=["cpu"],
    )
    result = {}
    for name, info in reference["meta"]["images"].items():
        predictor = SamPredictor(base.model)
        with Image.open(reference["dir"] / info["file"]) as image:
            predictor.set_image(np.asarray(image.convert("RGB")))
        result[name] = predictor
    return result


IMAGES = list(REFERENCE_IMAGES)


def test_reference_images_are_the_ones_tests_are_parametrised_with(reference: Any) -> None:
    assert list(reference["meta"]["images"]) == IMAGES


def prompt_of(vectors: Any, image: str, prompt: str) -> dict[str, np.ndarray]:
    prefix = f"{image}/{prompt}/prompt/"
    return {key[len(prefix) :]: vectors[key] for key in vectors.files if key.startswith(prefix)}


@pytest.mark.parametrize("image", IMAGES)
def test_sizes_and_embedding(
    image: str, reference: dict[str, Any], predictors: dict[str, SamPredictor]
) -> None:
    info = reference["meta"]["images"][image]
    predictor = predictors[image]
    assert predictor.original_size == tuple(info["original_size"])
    assert predictor.input_size == tuple(info["input_size"])
    embedding = np.asarray(predictor.get_image_embedding())
    expected = reference["vectors"][f"{image}/embedding"]
    assert embedding.shape == expected.shape
    assert np.abs(embedding - expected).max() <= 1e-4


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize(("selection", "outputs"), SELECTIONS)
@pytest.mark.parametrize("use_stability_score", [False, True])
def test_predict_matches_reference(
    image: str,
    prompt: str,
    selection: dict[str, Any],
    outputs: list[int],
    use_stability_score: bool,
    reference: dict[str, Any],
    predictors: dict[str, SamPredictor],
) -> None:
    vectors = reference["vectors"]
    key = f"{image}/{prompt}"
    masks, scores, low_res = predictors[image].predict(
        **prompt_of(vectors, image, prompt), **selection, use_stability_score=use_stability_score
    )
    expected_masks = vectors[f"{key}/masks"][outputs]
    expected_scores = vectors[
        f"{key}/stability_scores" if use_stability_score else f"{key}/iou_predictions"
    ][outputs]
    assert masks.dtype == np.bool_
    assert masks.shape == expected_masks.shape
    assert scores.shape == (len(outputs),)
    assert low_res.shape == (len(outputs), 256, 256)
    assert np.abs(low_res - vectors[f"{key}/low_res_logits"][outputs]).max() <= 1e-3
    assert np.abs(scores - expected_scores).max() <= 1e-3
    for got, want in zip(masks, expected_masks, strict=True):
        assert mask_iou(got, want) >= 0.999


@pytest.mark.parametrize("image", IMAGES)
def test_return_logits_threshold_to_the_reference_masks(
    image: str, reference: dict[str, Any], predictors: dict[str, SamPredictor]
) -> None:
    vectors = reference["vectors"]
    logits, _, _ = predictors[image].predict(
        **prompt_of(vectors, image, "a"), num_multimask_outputs=4, return_logits=True
    )
    assert logits.dtype == np.float32
    for got, want in zip(logits > 0.0, vectors[f"{image}/a/masks"], strict=True):
        assert mask_iou(got, want) >= 0.999


@pytest.mark.parametrize("image", IMAGES)
def test_batched_boxes_match_single_calls(
    image: str, reference: dict[str, Any], predictors: dict[str, SamPredictor]
) -> None:
    vectors = reference["vectors"]
    boxes = np.stack([vectors[f"{image}/c/prompt/box"], vectors[f"{image}/d/prompt/box"]])
    masks, scores, low_res = predictors[image].predict_batch(boxes=boxes, multimask_output=False)
    assert masks.shape[:2] == (2, 1)
    single = predictors[image].predict(box=boxes[1], multimask_output=False)
    np.testing.assert_array_equal(masks[1], single[0])
    np.testing.assert_allclose(scores[1], single[1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(low_res[0], vectors[f"{image}/c/low_res_logits"][[0]], atol=1e-3)


@pytest.mark.parametrize("image", IMAGES)
def test_mask_input_on_official_decoder_matches_reference(
    image: str, reference: dict[str, Any], predictors: dict[str, SamPredictor]
) -> None:
    """Prompt ``e``: prompt ``a`` plus ``mask_input = a/low_res_logits[0:1]``.

    The official decoder has no mask input; the SDK conditions the embedding with
    the prompt encoder's mask weights read, without torch, from the checkpoint.
    """
    vectors = reference["vectors"]
    onnx_dir = reference["dir"] / "onnx"
    predictor = SamPredictor.from_files(
        onnx_dir / "edge_sam_random_encoder.onnx",
        onnx_dir / "edge_sam_random_decoder.onnx",
        checkpoint=reference["dir"] / "edge_sam_random.pth",
        providers=["cpu"],
    )
    assert "mask_input=via checkpoint" in repr(predictor.model)
    predictor.set_image_embedding(_rebind(predictors[image], predictor))
    masks, scores, low_res = predictor.predict(
        **prompt_of(vectors, image, "a"),
        mask_input=vectors[f"{image}/a/low_res_logits"][0:1],
        num_multimask_outputs=4,
    )
    assert np.abs(low_res - vectors[f"{image}/e/low_res_logits"]).max() <= 1e-3
    assert np.abs(scores - vectors[f"{image}/e/iou_predictions"]).max() <= 1e-3
    for got, want in zip(masks, vectors[f"{image}/e/masks"], strict=True):
        assert mask_iou(got, want) >= 0.999


def _rebind(source: SamPredictor, target: SamPredictor) -> Any:
    """The source predictor's embedding (same encoder file, so the fingerprint matches)."""
    embedding = source.get_image_embedding()
    assert embedding.fingerprint == target.model.fingerprint
    return embedding
