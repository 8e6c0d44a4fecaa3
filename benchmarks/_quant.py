"""int8 / fp16 encoders against fp32: speed-up and mask agreement.

Speed: the two encoders run round-robin on the same preprocessed input. Mask
agreement: every reference image and every recorded prompt (``vectors.npz``),
all four decoder outputs, IoU of the variant's masks against fp32's.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks._latency import load_rgb
from benchmarks._report import Row, Target
from benchmarks._timing import interleaved, paired_ratio
from benchmarks._variants import ModelVariant

__all__ = ["quantisation_rows"]


def _iou(first: NDArray[np.bool_], second: NDArray[np.bool_]) -> float:
    union = np.logical_or(first, second).sum()
    return 1.0 if union == 0 else float(np.logical_and(first, second).sum() / union)


def _prompts(reference: Path) -> dict[str, list[dict[str, NDArray[np.float32]]]]:
    manifest = json.loads((reference / "vectors.json").read_text())
    vectors = np.load(reference / "vectors.npz")
    prompts: dict[str, list[dict[str, NDArray[np.float32]]]] = {}
    for name in manifest["images"]:
        prompts[name] = []
        for letter in "abcd":
            prefix = f"{name}/{letter}/prompt/"
            keys = [key for key in vectors.files if key.startswith(prefix)]
            if keys:
                prompts[name].append({key[len(prefix) :]: vectors[key] for key in keys})
    return prompts


def _sensitivity_row(base: Any, rgb: NDArray[np.uint8], provider: str) -> Row:
    """How much the fp32 embedding moves when every pixel moves by at most one grey level.

    A yardstick for the IoU rows: quantisation perturbs every layer, and a
    network that already amplifies +-1 input noise into a large embedding change
    (random weights do; trained ones are far calmer) cannot keep masks through
    8-bit activations.
    """
    base.set_image(rgb)
    clean = np.asarray(base.get_image_embedding())
    noise = np.random.default_rng(0).integers(-1, 2, rgb.shape)
    base.set_image(np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    noisy = np.asarray(base.get_image_embedding())
    change = float(np.linalg.norm(noisy - clean) / np.linalg.norm(clean))
    return Row(
        "quantised",
        "fp32 embedding change for +-1 grey-level input noise",
        variant="fp32",
        provider=provider,
        unit="%",
        value=change * 100,
        note="relative L2 change of the embedding; a measure of how sensitive these weights are",
    )


def quantisation_rows(
    variants: list[ModelVariant], reference: Path, quick: bool, provider: str = "cpu"
) -> list[Row]:
    """Speed-up and mask IoU of each int8/fp16 variant against the fp32 encoder."""
    from edgesam import SamPredictor
    from edgesam._transforms import preprocess_image

    fp32 = next((variant for variant in variants if variant.name == "fp32"), None)
    others = [variant for variant in variants if variant.precision in {"int8", "fp16"}]
    if fp32 is None or not others:
        return [
            Row(
                "quantised",
                f"{name} encoder vs fp32",
                variant=name,
                status="not available",
                note="needs edgesam.export to write the quantised encoder",
            )
            for name in ("int8", "fp16")
            if not any(variant.precision == name for variant in others)
        ]
    manifest = json.loads((reference / "vectors.json").read_text())
    base = SamPredictor.from_files(fp32.encoder, fp32.decoder, providers=[provider])
    truck = load_rgb(reference / "images" / "truck.jpg")
    image_input, _ = preprocess_image(truck)
    prompts = _prompts(reference)
    rows: list[Row] = [_sensitivity_row(base, truck, provider)]
    for variant in others:
        other = SamPredictor.from_files(variant.encoder, fp32.decoder, providers=[provider])
        timings = interleaved(
            {
                "fp32": partial(base.model.encode, image_input),
                "variant": partial(other.model.encode, image_input),
            },
            repeat=3 if quick else 10,
        )
        speedup = paired_ratio(timings["fp32"], timings["variant"])
        rows.append(
            Row(
                "quantised",
                f"{variant.precision} encoder speed-up vs fp32",
                variant=variant.name,
                provider=provider,
                unit="ms",
                value=timings["variant"].median * 1e3,
                baseline=timings["fp32"].median * 1e3,
                ratio=speedup,
                target=Target(">=", 1.5) if variant.precision == "int8" else None,
                note="ratio = fp32 time / variant time (higher is better)",
                details={
                    "variant": timings["variant"].as_dict(),
                    "fp32": timings["fp32"].as_dict(),
                },
            )
        )
        ious: list[float] = []
        for name, info in manifest["images"].items():
            rgb = load_rgb(reference / info["file"])
            base.set_image(rgb)
            other.set_image(rgb)
            for prompt in prompts.get(name, []):
                expected, _, _ = base.predict(
                    prompt.get("point_coords"),
                    prompt.get("point_labels"),
                    prompt.get("box"),
                    num_multimask_outputs=4,
                )
                found, _, _ = other.predict(
                    prompt.get("point_coords"),
                    prompt.get("point_labels"),
                    prompt.get("box"),
                    num_multimask_outputs=4,
                )
                ious.extend(_iou(a, b) for a, b in zip(expected, found, strict=True))
        rows.append(
            Row(
                "quantised",
                f"{variant.precision} mask IoU vs fp32 (min)",
                variant=variant.name,
                provider=provider,
                unit="IoU",
                value=min(ious),
                target=Target(">=", 0.97),
                note=f"{len(ious)} masks: 4 outputs x recorded prompts x reference images; "
                f"mean {np.mean(ious):.4f}",
                details={"ious": ious},
            )
        )
    return rows
