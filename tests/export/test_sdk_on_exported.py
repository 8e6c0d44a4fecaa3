"""The runtime SamPredictor on our own exports reproduces the authors' pipeline.

Exported from edge_sam_random.pth (once per session), run through
``edgesam.SamPredictor`` on every reference image and prompt: masks IoU >=
0.999 and scores within 1e-3 of vectors.npz. With the full decoder, item
``e`` (mask input) is checked too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgesam import SamPredictor

from .export_helpers import LOGITS_TOL, MIN_MASK_IOU, PROMPTS, SCORE_TOL, Reference, image_names

pytest.importorskip("torch")

pytestmark = [pytest.mark.torch, pytest.mark.reference]

IMAGES = image_names()


@pytest.fixture(scope="module")
def predictors(exported: Any, reference: Reference) -> dict[str, dict[str, SamPredictor]]:
    """Per decoder ("official", "full"), one predictor per image with the image set."""
    result: dict[str, dict[str, SamPredictor]] = {}
    base = SamPredictor.from_files(
        exported.files["encoder"], exported.files["decoder"], providers=["cpu"]
    )
    full = SamPredictor.from_files(
        exported.files["encoder"], exported.files["full_decoder"], providers=["cpu"]
    )
    assert full.model.native_mask_input
    for decoder, model in (("official", base.model), ("full", full.model)):
        result[decoder] = {}
        for name in reference.meta["images"]:
            predictor = SamPredictor(model)
            if decoder == "full":  # reuse the embedding: the encoder is the same file
                predictor.set_image_embedding(result["official"][name].get_image_embedding())
            else:
                predictor.set_image(reference.image(name))
            result[decoder][name] = predictor
    return result


def check(prediction: Any, reference: Reference, key: str, scores_key: str) -> None:
    masks, scores, low_res = prediction
    expected_masks = reference.vectors[f"{key}/masks"]
    assert masks.shape == expected_masks.shape
    assert np.abs(scores - reference.vectors[f"{key}/{scores_key}"]).max() <= SCORE_TOL
    assert np.abs(low_res - reference.vectors[f"{key}/low_res_logits"]).max() <= LOGITS_TOL
    ious = [_iou(ours, theirs) for ours, theirs in zip(masks, expected_masks, strict=True)]
    assert min(ious) >= MIN_MASK_IOU, ious


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.mark.parametrize("image", IMAGES)
def test_embedding(
    predictors: dict[str, dict[str, SamPredictor]], reference: Reference, image: str
) -> None:
    embedding = np.asarray(predictors["official"][image].get_image_embedding())
    assert np.abs(embedding - reference.vectors[f"{image}/embedding"]).max() <= 1e-4


@pytest.mark.parametrize("decoder", ["official", "full"])
@pytest.mark.parametrize("use_stability_score", [False, True])
@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("image", IMAGES)
def test_prompts(
    predictors: dict[str, dict[str, SamPredictor]],
    reference: Reference,
    image: str,
    prompt: str,
    use_stability_score: bool,
    decoder: str,
) -> None:
    prediction = predictors[decoder][image].predict(
        **reference.prompt(image, prompt),
        num_multimask_outputs=4,
        use_stability_score=use_stability_score,
    )
    scores_key = "stability_scores" if use_stability_score else "iou_predictions"
    check(prediction, reference, f"{image}/{prompt}", scores_key)


@pytest.mark.parametrize("image", IMAGES)
def test_mask_input_on_the_full_decoder(
    predictors: dict[str, dict[str, SamPredictor]], reference: Reference, image: str
) -> None:
    mask_input = reference.vectors[f"{image}/a/low_res_logits"][0:1]
    prediction = predictors["full"][image].predict(
        **reference.prompt(image, "a"), mask_input=mask_input, num_multimask_outputs=4
    )
    check(prediction, reference, f"{image}/e", "iou_predictions")


@pytest.mark.parametrize("multimask_output", [False, True])
def test_segment_anything_selection(
    predictors: dict[str, dict[str, SamPredictor]], reference: Reference, multimask_output: bool
) -> None:
    masks, scores, _ = predictors["official"]["groceries"].predict(
        **reference.prompt("groceries", "b"), multimask_output=multimask_output
    )
    outputs = [1, 2, 3] if multimask_output else [0]
    assert np.abs(scores - reference.vectors["groceries/b/iou_predictions"][outputs]).max() <= (
        SCORE_TOL
    )
    assert masks.shape[0] == len(outputs)
