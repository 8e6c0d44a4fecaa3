"""The batch pipeline's masks are the single-image API's masks, RLE for RLE (reference model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesam import SamPredictor
from edgesam.amg import SamAutomaticMaskGenerator, mask_to_coco_rle
from edgesam.batch import run_batch

from .batch_helpers import rows_by_name

pytestmark = pytest.mark.reference

BOXES = [[425.0, 600.0, 700.0, 875.0], [100.0, 50.0, 400.0, 300.0], [0.0, 0.0, 10.0, 10.0]]


@pytest.fixture(scope="module")
def reference_files(reference_dir: Path) -> dict[str, Path]:
    return {
        "encoder": reference_dir / "onnx" / "edge_sam_random_encoder.onnx",
        "decoder": reference_dir / "onnx" / "edge_sam_random_decoder.onnx",
        "images": reference_dir / "images",
    }


@pytest.fixture(scope="module")
def predictor(reference_files: dict[str, Path]) -> SamPredictor:
    return SamPredictor.from_files(
        reference_files["encoder"], reference_files["decoder"], providers=["cpu"]
    )


def _expected_prompts(predictor: SamPredictor, image: Path, row: dict[str, Any]) -> list[Any]:
    """What a user gets from SamPredictor, as `edgesam segment` picks the click's mask."""
    predictor.set_image(image)
    expected = []
    if "boxes" in row:
        masks, scores, _ = predictor.predict_batch(boxes=row["boxes"], multimask_output=False)
        expected += [(mask_to_coco_rle(masks[i, 0]), scores[i, 0]) for i in range(len(masks))]
    if "points" in row:
        points = np.array(row["points"], dtype=np.float32)
        labels = np.array(row.get("labels", [1] * len(points)))
        single = len(points) > 1
        masks, stability, _ = predictor.predict(
            point_coords=points,
            point_labels=labels,
            num_multimask_outputs=1 if single else 4,
            use_stability_score=not single,
        )
        best = int(stability.argmax())
        _, iou, _ = predictor.predict(
            point_coords=points, point_labels=labels, num_multimask_outputs=1 if single else 4
        )
        expected.append((mask_to_coco_rle(masks[best]), iou[best]))
    return expected


def test_prompt_masks_match_sam_predictor(
    tmp_path: Path, reference_files: dict[str, Path], predictor: SamPredictor
) -> None:
    images = reference_files["images"]
    rows = [
        {"path": str(images / "truck.jpg"), "boxes": BOXES, "points": [[500, 375]]},
        {
            "path": str(images / "groceries.jpg"),
            "points": [[300, 200], [500, 300]],
            "labels": [1, 0],
        },
        {"path": str(images / "synthetic_480x640.png"), "points": [[320, 240]]},
        {"path": str(images / "tiny_37x53.png"), "boxes": [[2, 3, 30, 20]]},
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = run_batch(
        manifest,
        tmp_path / "out",
        encoder=reference_files["encoder"],
        decoder=reference_files["decoder"],
        providers=["cpu"],
    )
    assert summary.failed == []
    output = rows_by_name(tmp_path / "out")
    assert sorted(output) == sorted(row["path"] for row in rows)
    for row in rows:
        got = output[row["path"]]["masks"]
        expected = _expected_prompts(predictor, Path(row["path"]), row)
        assert len(got) == len(expected)
        for index, (record, (rle, score)) in enumerate(zip(got, expected, strict=True)):
            assert record["prompt_index"] == index
            assert record["segmentation"]["counts"] == rle["counts"]
            assert list(record["segmentation"]["size"]) == list(rle["size"])
            assert record["score"] == pytest.approx(float(score), abs=1e-6)
        assert output[row["path"]]["model_fingerprint"] == predictor.model.fingerprint


def test_everything_masks_match_generator(
    tmp_path: Path, reference_files: dict[str, Path], predictor: SamPredictor
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("tiny_37x53.png", "groceries.jpg"):
        (folder / name).write_bytes((reference_files["images"] / name).read_bytes())
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    summary = run_batch(
        folder,
        tmp_path / "out",
        encoder=reference_files["encoder"],
        decoder=reference_files["decoder"],
        providers=["cpu"],
        everything=True,
        everything_options=options,
        output_format="jsonl",
    )
    assert sorted(summary.segmented) == ["groceries.jpg", "tiny_37x53.png"]
    output = rows_by_name(tmp_path / "out")
    generator = SamAutomaticMaskGenerator(predictor, output_mode="coco_rle", **options)
    total = 0
    for name, row in output.items():
        expected = generator.generate(folder / name)
        assert [m["segmentation"]["counts"] for m in row["masks"]] == [
            r["segmentation"]["counts"] for r in expected
        ]
        assert [m["bbox"] for m in row["masks"]] == [list(map(float, r["bbox"])) for r in expected]
        assert [m["area"] for m in row["masks"]] == [r["area"] for r in expected]
        total += len(expected)
    assert total > 0
