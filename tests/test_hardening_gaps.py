"""Tests a mutation audit found missing: batched mask input on the official decoder with a
checkpoint, AMG de-duplication across crop layers, and an interrupted ``everything``."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import edgesam._resumable_everything as everything
from edgesam import EdgeSam, SamAutomaticMaskGenerator, SamPredictor
from edgesam._mask_prompt import REQUIRED_KEYS
from edgesam._resumable_everything import DONE_MARKER, segment_everything
from tiny_checkpoint import write_state_dict

# -- several masks in one batch, official decoder + checkpoint ---------------------------------


def _mask_prompt_tensors(seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {
        "prompt_encoder.mask_downscaling.0.weight": (4, 1, 2, 2),
        "prompt_encoder.mask_downscaling.0.bias": (4,),
        "prompt_encoder.mask_downscaling.1.weight": (4,),
        "prompt_encoder.mask_downscaling.1.bias": (4,),
        "prompt_encoder.mask_downscaling.3.weight": (16, 4, 2, 2),
        "prompt_encoder.mask_downscaling.3.bias": (16,),
        "prompt_encoder.mask_downscaling.4.weight": (16,),
        "prompt_encoder.mask_downscaling.4.bias": (16,),
        "prompt_encoder.mask_downscaling.6.weight": (256, 16, 1, 1),
        "prompt_encoder.mask_downscaling.6.bias": (256,),
        "prompt_encoder.no_mask_embed.weight": (1, 256),
    }
    assert set(shapes) == set(REQUIRED_KEYS)
    return {
        key: (0.3 * rng.standard_normal(shape)).astype(np.float32) for key, shape in shapes.items()
    }


@pytest.fixture(scope="module")
def checkpoint_model(
    tiny_model_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> EdgeSam:
    checkpoint = write_state_dict(
        tmp_path_factory.mktemp("ckpt") / "tiny.pth", _mask_prompt_tensors()
    )
    return EdgeSam.from_files(
        tiny_model_files["encoder"],
        tiny_model_files["decoder"],
        checkpoint=checkpoint,
        providers=["cpu"],
    )


def test_several_masks_in_one_batch_match_their_single_predictions(
    checkpoint_model: EdgeSam,
) -> None:
    predictor = SamPredictor(checkpoint_model)
    predictor.set_image(np.random.default_rng(1).integers(0, 256, (60, 80, 3), np.uint8))
    rng = np.random.default_rng(2)
    masks_in = (4.0 * rng.standard_normal((3, 1, 256, 256))).astype(np.float32)
    points = np.array([[[10, 12]], [[40, 30]], [[70, 50]]], dtype=np.float32)
    labels = np.ones((3, 1), dtype=np.int64)
    batch = predictor.predict_batch(points, labels, mask_input=masks_in, num_multimask_outputs=4)
    singles = [
        predictor.predict(points[i], labels[i], mask_input=masks_in[i], num_multimask_outputs=4)
        for i in range(3)
    ]
    for i, single in enumerate(singles):
        for got, want in zip((part[i] for part in batch), single, strict=True):
            np.testing.assert_array_equal(got, want)
    # The mask input matters, and differs per item: otherwise the test proves nothing.
    plain = predictor.predict(points[0], labels[0], num_multimask_outputs=4)
    assert not np.array_equal(plain[1], singles[0][1])
    assert not np.array_equal(singles[0][1], singles[1][1])


# -- AMG: duplicates across crop layers --------------------------------------------------------


def _box_iou(a: list[int], b: list[int]) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def _records(model: EdgeSam, crop_nms_thresh: float) -> list[dict[str, Any]]:
    image = (np.random.default_rng(0).random((160, 240, 3)) * 255).astype(np.uint8)
    generator = SamAutomaticMaskGenerator(
        model,
        points_per_side=6,
        crop_n_layers=1,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        box_nms_thresh=1.0,
        crop_nms_thresh=crop_nms_thresh,
        output_mode="coco_rle",
    )
    return generator.generate(image)


def _crop_area(record: dict[str, Any]) -> int:
    return int(record["crop_box"][2] * record["crop_box"][3])


def test_masks_found_in_several_crop_layers_are_kept_once(tiny_model: EdgeSam) -> None:
    everything_kept = _records(tiny_model, crop_nms_thresh=1.0)  # no de-duplication
    duplicates = [
        (a, b)
        for a, b in itertools.combinations(everything_kept, 2)
        if a["crop_box"] != b["crop_box"] and _box_iou(a["bbox"], b["bbox"]) > 0.7
    ]
    assert duplicates, "the image must produce duplicates across crops for this test to bite"

    deduplicated = _records(tiny_model, crop_nms_thresh=0.7)
    assert len(deduplicated) < len(everything_kept)
    for a, b in itertools.combinations(deduplicated, 2):
        assert _box_iou(a["bbox"], b["bbox"]) <= 0.7
    # Of each pair of duplicates at most one survives.
    kept = {(tuple(r["bbox"]), tuple(r["crop_box"])) for r in deduplicated}
    for a, b in duplicates:
        both = {(tuple(a["bbox"]), tuple(a["crop_box"])), (tuple(b["bbox"]), tuple(b["crop_box"]))}
        assert not both <= kept


# -- everything: an interrupted image is not marked done ---------------------------------------


def test_everything_interrupted_inside_one_images_writes_leaves_no_done_marker(
    tiny_model: EdgeSam, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    images = []
    for name in ("a.png", "b.png"):
        path = inputs / name
        Image.fromarray(
            np.random.default_rng(len(name)).integers(0, 256, (40, 60, 3), np.uint8)
        ).save(path)
        images.append(path)
    output = tmp_path / "out"
    predictor = SamPredictor(tiny_model)
    real_overlay = everything.save_overlay
    calls = []

    def interrupted_overlay(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:  # inside the second image, after its masks are written
            raise KeyboardInterrupt
        return real_overlay(*args, **kwargs)

    monkeypatch.setattr(everything, "save_overlay", interrupted_overlay)
    options = {"points_per_side": 3, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    with pytest.raises(KeyboardInterrupt):
        segment_everything(predictor, images, output, overlay=True, **options)
    assert (output / "a.png" / DONE_MARKER).is_file()
    assert (output / "b.png" / "metadata.csv").is_file()  # its writes had begun
    assert not (output / "b.png" / DONE_MARKER).exists()
    assert not list((output / "b.png").glob(f".{DONE_MARKER}*"))

    monkeypatch.setattr(everything, "save_overlay", real_overlay)
    summary = segment_everything(predictor, images, output, overlay=True, **options)
    assert summary.already_done == [images[0]]
    assert summary.segmented == [images[1]]
    assert (output / "b.png" / DONE_MARKER).is_file()
