"""Mask prompts on the official decoder: erf, the downscaling stack, and the authors' outputs.

Three independent references: ``math.erf`` and a naive loop-by-loop float64
implementation of the conv stack (no torch needed), torch's own ``F.conv2d`` /
``F.gelu`` (marked ``torch``), and the authors' torch pipeline itself: the
``e`` vectors are ``predict(mask_input=...)`` outputs, reproduced here with the
official (mask-less) ONNX decoder and a conditioned embedding.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from edgesam._mask_prompt import (
    REQUIRED_KEYS,
    MaskPromptWeights,
    condition_embedding,
    downscale_mask,
    erf,
    gelu,
)
from edgesam.errors import (
    CheckpointError,
    InvalidInputError,
)

# -- erf ------------------------------------------------------------------------------------


def test_erf_matches_math_erf_on_a_dense_grid() -> None:
    x = np.linspace(-7.0, 7.0, 700_001, dtype=np.float32)
    expected = np.array([math.erf(float(v)) for v in x])
    got = erf(x)
    assert got.dtype == np.float32
    assert got.shape == x.shape
    # float32 itself cannot do better than 3e-8 near 1; measured 6.9e-8.
    assert np.abs(got - expected).max() <= 1e-7


def test_erf_is_relatively_accurate_near_zero() -> None:
    x = np.concatenate([np.geomspace(1e-30, 0.5, 5000), [0.0]]).astype(np.float32)
    expected = np.array([math.erf(float(v)) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=2e-7, atol=0)


def test_erf_is_odd_and_saturates() -> None:
    x = np.linspace(0.0, 9.0, 10_001, dtype=np.float32)
    np.testing.assert_array_equal(erf(-x), -erf(x))
    special = np.array([np.inf, -np.inf, 1e30, -1e30, 4.5, np.nan], dtype=np.float32)
    got = erf(special)
    np.testing.assert_array_equal(got[:5], [1.0, -1.0, 1.0, -1.0, 1.0])
    assert np.isnan(got[5])


def test_gelu_matches_its_definition() -> None:
    x = np.linspace(-12.0, 12.0, 40_001, dtype=np.float32)
    expected = np.array([v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.tolist()])
    # relative to max(|x|, 1): float32 rounding of x * 0.5 * (...) dominates for large |x|
    error = np.abs(gelu(x) - expected) / np.maximum(np.abs(x), 1.0)
    assert error.max() <= 2e-7


# -- weights --------------------------------------------------------------------------------


def random_weights(seed: int, c1: int = 4, c2: int = 16, e: int = 256) -> MaskPromptWeights:
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 1.0, mean: float = 0.0) -> NDArray[np.float32]:
        return (mean + scale * rng.standard_normal(shape)).astype(np.float32)

    return MaskPromptWeights(
        conv1_weight=normal(c1, 1, 2, 2, scale=0.5),
        conv1_bias=normal(c1, scale=0.1),
        norm1_weight=normal(c1, scale=0.2, mean=1.0),
        norm1_bias=normal(c1, scale=0.2),
        conv2_weight=normal(c2, c1, 2, 2, scale=0.3),
        conv2_bias=normal(c2, scale=0.1),
        norm2_weight=normal(c2, scale=0.2, mean=1.0),
        norm2_bias=normal(c2, scale=0.2),
        conv3_weight=normal(e, c2, 1, 1, scale=0.3),
        conv3_bias=normal(e, scale=0.1),
        no_mask_embed=normal(1, e, scale=0.5),
    )


def naive_downscale(mask: NDArray[Any], w: MaskPromptWeights) -> NDArray[np.float64]:
    """The conv stack written out index by index, in float64, with math.erf."""

    def conv(
        x: NDArray[np.float64], weight: NDArray[Any], bias: NDArray[Any], k: int
    ) -> NDArray[np.float64]:
        c_out = weight.shape[0]
        h, wd = x.shape[1] // k, x.shape[2] // k
        out = np.empty((c_out, h, wd))
        for o in range(c_out):
            for i in range(h):
                for j in range(wd):
                    patch = x[:, i * k : i * k + k, j * k : j * k + k]
                    out[o, i, j] = float(np.sum(patch * weight[o])) + float(bias[o])
        return out

    def norm_gelu(
        x: NDArray[np.float64], weight: NDArray[Any], bias: NDArray[Any]
    ) -> NDArray[np.float64]:
        mean = x.mean(axis=0)
        var = ((x - mean) ** 2).mean(axis=0)
        y = (x - mean) / np.sqrt(var + 1e-6) * weight[:, None, None] + bias[:, None, None]
        cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in y.ravel().tolist()])
        result: NDArray[np.float64] = y * cdf.reshape(y.shape)
        return result

    results = []
    for item in mask.astype(np.float64):
        x = norm_gelu(conv(item, w.conv1_weight, w.conv1_bias, 2), w.norm1_weight, w.norm1_bias)
        x = norm_gelu(conv(x, w.conv2_weight, w.conv2_bias, 2), w.norm2_weight, w.norm2_bias)
        results.append(conv(x, w.conv3_weight, w.conv3_bias, 1))
    return np.stack(results)


def test_downscale_matches_a_naive_float64_implementation() -> None:
    weights = random_weights(1, e=8)
    rng = np.random.default_rng(2)
    mask = (4 * rng.standard_normal((2, 1, 16, 24))).astype(np.float32)  # not square
    got = downscale_mask(mask, weights)
    assert got.dtype == np.float32
    assert got.shape == (2, 8, 4, 6)
    np.testing.assert_allclose(got, naive_downscale(mask, weights), rtol=0, atol=1e-5)


def test_condition_embedding_is_embedding_plus_dense_minus_no_mask() -> None:
    weights = random_weights(3, e=8)
    rng = np.random.default_rng(4)
    embedding = rng.standard_normal((1, 8, 4, 4)).astype(np.float32)
    masks = (4 * rng.standard_normal((3, 1, 16, 16))).astype(np.float32)
    got = condition_embedding(embedding, masks, weights)
    assert got.shape == (3, 8, 4, 4)
    assert got.dtype == np.float32
    expected = (
        embedding.astype(np.float64)
        + naive_downscale(masks, weights)
        - weights.no_mask_embed.astype(np.float64)[0, :, None, None]
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # one embedding per mask is accepted as well
    per_mask = condition_embedding(np.repeat(embedding, 3, axis=0), masks, weights)
    np.testing.assert_array_equal(per_mask, got)


def test_weights_are_read_only_float32_copies() -> None:
    source = random_weights(5)
    conv1 = source.conv1_weight.astype(np.float64)
    weights = MaskPromptWeights(**{**vars(source), "conv1_weight": conv1})
    assert weights.conv1_weight.dtype == np.float32
    assert not weights.conv1_weight.flags.writeable
    conv1[0, 0, 0, 0] = 99.0
    assert weights.conv1_weight[0, 0, 0, 0] != 99.0
    assert weights.embed_dim == 256


def test_inconsistent_shapes_are_rejected() -> None:
    source = vars(random_weights(6))
    with pytest.raises(InvalidInputError, match=r"conv2_weight has shape \(16, 3, 2, 2\)"):
        MaskPromptWeights(**{**source, "conv2_weight": np.zeros((16, 3, 2, 2), np.float32)})
    with pytest.raises(InvalidInputError, match=r"no_mask_embed has shape \(256,\)"):
        MaskPromptWeights(**{**source, "no_mask_embed": np.zeros(256, np.float32)})


def state_dict_of(weights: MaskPromptWeights) -> dict[str, NDArray[np.float32]]:
    fields = [
        "conv1_weight",
        "conv1_bias",
        "norm1_weight",
        "norm1_bias",
        "conv2_weight",
        "conv2_bias",
        "norm2_weight",
        "norm2_bias",
        "conv3_weight",
        "conv3_bias",
        "no_mask_embed",
    ]
    return {key: getattr(weights, name) for key, name in zip(REQUIRED_KEYS, fields, strict=True)}


def test_required_keys_are_the_checkpoint_names() -> None:
    assert MaskPromptWeights.REQUIRED_KEYS == REQUIRED_KEYS
    assert len(REQUIRED_KEYS) == 11
    assert "prompt_encoder.no_mask_embed.weight" in REQUIRED_KEYS
    assert all(key.startswith("prompt_encoder.mask_downscaling.") for key in REQUIRED_KEYS[:-1])


def test_from_state_dict_names_missing_and_misshapen_keys() -> None:
    state: dict[str, NDArray[Any]] = {"unrelated": np.zeros(1), **state_dict_of(random_weights(7))}
    MaskPromptWeights.from_state_dict(state)
    broken = dict(state)
    del broken["prompt_encoder.mask_downscaling.4.bias"]
    with pytest.raises(CheckpointError, match=r"lacks 1 .*mask_downscaling\.4\.bias"):
        MaskPromptWeights.from_state_dict(broken)
    broken = {**state, "prompt_encoder.mask_downscaling.6.bias": np.zeros(255, np.float32)}
    with pytest.raises(CheckpointError, match=r"mask_downscaling\.6\.bias has shape \(255,\)"):
        MaskPromptWeights.from_state_dict(broken)


# -- against torch ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def torch_downscale(torch: Any, mask: NDArray[np.float32], state: dict[str, Any]) -> Any:
    """SAM's mask_downscaling with torch's own ops, from a torch state dict."""
    functional = torch.nn.functional
    prefix = "prompt_encoder.mask_downscaling."

    def layer_norm_2d(x: Any, index: int) -> Any:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + 1e-6)
        weight, bias = state[f"{prefix}{index}.weight"], state[f"{prefix}{index}.bias"]
        return weight[:, None, None] * x + bias[:, None, None]

    def conv(x: Any, index: int, stride: int) -> Any:
        weight, bias = state[f"{prefix}{index}.weight"], state[f"{prefix}{index}.bias"]
        return functional.conv2d(x, weight, bias, stride=stride)

    x = torch.from_numpy(mask)
    x = functional.gelu(layer_norm_2d(conv(x, 0, 2), 1), approximate="none")
    x = functional.gelu(layer_norm_2d(conv(x, 3, 2), 4), approximate="none")
    return conv(x, 6, 1)


@pytest.mark.torch
def test_gelu_matches_torch(torch: Any) -> None:
    x = np.linspace(-10.0, 10.0, 200_001, dtype=np.float32)
    expected = torch.nn.functional.gelu(torch.from_numpy(x), approximate="none").numpy()
    # measured 1.2e-6, near x = -3.5 and 3: torch's vectorised (SIMD) erf is the one off
    # there (its scalar path agrees with ours, and ours with math.erf, see above)
    np.testing.assert_allclose(gelu(x), expected, rtol=0, atol=2e-6)


@pytest.mark.torch
@pytest.mark.parametrize("batch", [1, 3])
def test_downscale_matches_torch_with_random_weights(torch: Any, batch: int) -> None:
    weights = random_weights(11 + batch)
    state = {
        key: torch.from_numpy(np.array(value)) for key, value in state_dict_of(weights).items()
    }
    rng = np.random.default_rng(batch)
    mask = (6 * rng.standard_normal((batch, 1, 256, 256))).astype(np.float32)
    expected = torch_downscale(torch, mask, state).numpy()
    got = downscale_mask(mask, weights)
    assert got.shape == expected.shape == (batch, 256, 64, 64)
    # measured max abs diff 1.7e-6 (outputs up to ~4.6), mostly torch's vectorised erf
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.torch
@pytest.mark.reference
def test_downscale_matches_torch_with_the_checkpoint(torch: Any, reference_dir: Path) -> None:
    path = reference_dir / "edge_sam_random.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)  # torch's own reader
    weights = MaskPromptWeights.from_checkpoint(path)
    vectors = np.load(reference_dir / "vectors.npz")
    rng = np.random.default_rng(0)
    masks = np.concatenate(
        [
            vectors["truck/a/low_res_logits"][:, None],  # real logits, 4 masks
            (4 * rng.standard_normal((2, 1, 256, 256))).astype(np.float32),
        ]
    )
    expected = torch_downscale(torch, masks, state).numpy()
    got = downscale_mask(masks, weights)
    # measured max abs diff 4.9e-7 (outputs up to ~1.6)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    embedding = vectors["truck/embedding"]
    no_mask = state["prompt_encoder.no_mask_embed.weight"].numpy()[0, :, None, None]
    np.testing.assert_allclose(
        condition_embedding(embedding, masks, weights),
        embedding + expected - no_mask,
        rtol=0,
        atol=1e-5,
    )


# -- the authors' outputs, through the official decoder ----------------------------------------


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> dict[str, Any]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(
        str(reference_dir / "onnx" / "edge_sam_random_decoder.onnx"),
        providers=["CPUExecutionProvider"],
    )
    return {
        "session": session,
        "vectors": np.load(reference_dir / "vectors.npz"),
        "meta": json.loads((reference_dir / "vectors.json").read_text()),
        "weights": MaskPromptWeights.from_checkpoint(reference_dir / "edge_sam_random.pth"),
    }


def decoder_prompt(
    vectors: Any, image: str, meta: dict[str, Any]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Prompt ``a`` in the 1024 frame, plus the padding point the torch predictor adds."""
    height, width = meta["images"][image]["original_size"]
    new_height, new_width = meta["images"][image]["input_size"]
    points = vectors[f"{image}/a/prompt/point_coords"].astype(np.float64)
    points = points * np.array([new_width / width, new_height / height])
    labels = vectors[f"{image}/a/prompt/point_labels"].astype(np.float64)
    coords = np.concatenate([points, [[0.0, 0.0]]]).astype(np.float32)[None]
    return coords, np.concatenate([labels, [-1.0]]).astype(np.float32)[None]


@pytest.mark.reference
def test_mask_input_reproduces_the_authors_predictions(reference: dict[str, Any]) -> None:
    """``e`` = prompt ``a`` with ``mask_input = a/low_res_logits[0:1]``, for every image."""
    vectors, meta, session = reference["vectors"], reference["meta"], reference["session"]
    images = list(meta["images"])
    assert len(images) == 4
    worst = {"plain logits": 0.0, "plain iou": 0.0, "mask logits": 0.0, "mask iou": 0.0}
    smallest_effect = math.inf
    for image in images:
        coords, labels = decoder_prompt(vectors, image, meta)
        embedding = vectors[f"{image}/embedding"]
        mask = vectors[f"{image}/a/low_res_logits"][0:1][None]  # (1, 1, 256, 256)

        # the harness itself: without a mask the decoder reproduces "a"
        scores, logits = session.run(
            None, {"image_embeddings": embedding, "point_coords": coords, "point_labels": labels}
        )
        worst["plain logits"] = max(
            worst["plain logits"], np.abs(logits[0] - vectors[f"{image}/a/low_res_logits"]).max()
        )
        worst["plain iou"] = max(
            worst["plain iou"], np.abs(scores[0] - vectors[f"{image}/a/iou_predictions"]).max()
        )

        conditioned = condition_embedding(embedding, mask, reference["weights"])
        assert conditioned.shape == (1, 256, 64, 64)
        scores, logits = session.run(
            None,
            {"image_embeddings": conditioned, "point_coords": coords, "point_labels": labels},
        )
        assert logits.shape == (1, 4, 256, 256)
        expected = vectors[f"{image}/e/low_res_logits"]
        worst["mask logits"] = max(worst["mask logits"], np.abs(logits[0] - expected).max())
        worst["mask iou"] = max(
            worst["mask iou"], np.abs(scores[0] - vectors[f"{image}/e/iou_predictions"]).max()
        )
        # the mask matters: "e" is far from "a", so matching "e" is not luck
        smallest_effect = min(
            smallest_effect, np.abs(expected - vectors[f"{image}/a/low_res_logits"]).max()
        )

    # measured: logits 2.3e-5 (plain) and 2.0e-5 (mask), iou 2.4e-7 and 1.9e-7
    assert all(value <= 1e-3 for value in worst.values()), worst
    assert smallest_effect > 1.0
