"""The torch network, loaded from edge_sam_random.pth, reproduces the authors' arrays.

Every array in ../shared/reference/vectors.npz: the encoder input samples,
embeddings (max abs 1e-4), low-res logits (1e-3), IoU predictions and
stability scores (1e-3), masks at the original size (IoU >= 0.999), and
item ``e`` (prompt ``a`` with ``a``'s single-mask logits as mask input).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from .export_helpers import (
    EMBEDDING_TOL,
    LOGITS_TOL,
    MIN_MASK_IOU,
    PROMPTS,
    SCORE_TOL,
    Reference,
    decoder_points,
    encoder_input,
    image_names,
    mask_iou,
    stability_scores,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = [pytest.mark.torch, pytest.mark.reference]

IMAGES = image_names()


@pytest.fixture(scope="module")
def embeddings(network: Any, reference: Reference) -> dict[str, Any]:
    """Embedding of each reference image, computed by the torch encoder once."""
    result = {}
    with torch.no_grad():
        for name in reference.meta["images"]:
            image = torch.from_numpy(encoder_input(reference.image(name)))
            result[name] = network.encode(image)
    return result


def upsample_masks(
    low_res: Any, original_size: tuple[int, int], input_size: tuple[int, int]
) -> np.ndarray:
    """256 -> 1024 -> crop -> H x W, torch bilinear (no antialias), threshold 0."""
    frame = F.interpolate(low_res, (1024, 1024), mode="bilinear", align_corners=False)
    cropped = frame[..., : input_size[0], : input_size[1]]
    full = F.interpolate(cropped, original_size, mode="bilinear", align_corners=False)
    return (full > 0.0).numpy()[0]


def decode(network: Any, embedding: Any, reference: Reference, image: str, prompt: str) -> Any:
    original_size, _ = reference.sizes(image)
    source = "a" if prompt == "e" else prompt
    coords, labels = decoder_points(reference.prompt(image, source), original_size)
    mask_input = None
    if prompt == "e":
        mask_input = torch.from_numpy(reference.vectors[f"{image}/a/low_res_logits"][0:1])[None]
    with torch.no_grad():
        return network.decode(
            embedding, torch.from_numpy(coords), torch.from_numpy(labels), mask_input
        )


@pytest.mark.parametrize("image", IMAGES)
def test_preprocessing_matches_the_reference_input(reference: Reference, image: str) -> None:
    x = encoder_input(reference.image(image))[0]
    rows_cols = reference.vectors[f"{image}/input_samples_yx"]
    samples = x[:, rows_cols[:, 0], rows_cols[:, 1]].T
    np.testing.assert_allclose(samples, reference.vectors[f"{image}/input_samples"], atol=1e-5)
    np.testing.assert_allclose(
        x.mean(axis=(1, 2)), reference.vectors[f"{image}/input_channel_mean"], atol=1e-5
    )
    np.testing.assert_allclose(
        x.std(axis=(1, 2)), reference.vectors[f"{image}/input_channel_std"], atol=1e-5
    )


@pytest.mark.parametrize("image", IMAGES)
def test_embedding(embeddings: dict[str, Any], reference: Reference, image: str) -> None:
    expected = reference.vectors[f"{image}/embedding"]
    assert embeddings[image].shape == expected.shape
    assert np.abs(embeddings[image].numpy() - expected).max() <= EMBEDDING_TOL


@pytest.mark.parametrize("prompt", [*PROMPTS, "e"])
@pytest.mark.parametrize("image", IMAGES)
def test_decoder_outputs(network: Any, reference: Reference, image: str, prompt: str) -> None:
    # The reference embedding, so that decoder differences are not hidden by encoder ones.
    embedding = torch.from_numpy(reference.vectors[f"{image}/embedding"])
    low_res, iou_predictions = decode(network, embedding, reference, image, prompt)
    key = f"{image}/{prompt}"
    logits = low_res.numpy()[0]
    assert np.abs(logits - reference.vectors[f"{key}/low_res_logits"]).max() <= LOGITS_TOL
    assert (
        np.abs(iou_predictions.numpy()[0] - reference.vectors[f"{key}/iou_predictions"]).max()
        <= SCORE_TOL
    )
    if prompt != "e":
        assert (
            np.abs(stability_scores(logits) - reference.vectors[f"{key}/stability_scores"]).max()
            <= SCORE_TOL
        )


@pytest.mark.parametrize("prompt", [*PROMPTS, "e"])
@pytest.mark.parametrize("image", IMAGES)
def test_masks_end_to_end(
    network: Any, embeddings: dict[str, Any], reference: Reference, image: str, prompt: str
) -> None:
    # Our own embedding this time: image in, masks out, all in torch.
    original_size, input_size = reference.sizes(image)
    low_res, _ = decode(network, embeddings[image], reference, image, prompt)
    masks = upsample_masks(low_res, original_size, input_size)
    expected = reference.vectors[f"{image}/{prompt}/masks"]
    assert masks.shape == expected.shape
    ious = [mask_iou(ours, theirs) for ours, theirs in zip(masks, expected, strict=True)]
    assert min(ious) >= MIN_MASK_IOU, ious


def test_network_is_in_eval_mode_with_bilinear_fusion(network: Any) -> None:
    assert not network.training
    assert all(not module.training for module in network.modules())
    assert network.image_encoder.upsample_mode == "bilinear"


def test_bicubic_fusion_is_not_what_the_reference_used(
    checkpoint: Any, reference: Reference
) -> None:
    """The tolerance tells the two upsampling modes apart (facts: bicubic moves logits ~4)."""
    from edgesam.export import load_checkpoint

    bicubic = load_checkpoint(checkpoint, upsample_mode="bicubic")
    assert bicubic.image_encoder.upsample_mode == "bicubic"
    with torch.no_grad():
        embedding = bicubic.encode(torch.from_numpy(encoder_input(reference.image("tiny"))))
    assert np.abs(embedding.numpy() - reference.vectors["tiny/embedding"]).max() > EMBEDDING_TOL
