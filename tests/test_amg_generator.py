"""SamAutomaticMaskGenerator on the tiny models, checked against the predictor itself.

The tiny decoder's mask k is a disc of radius RADII[k] (1024 frame) around the
click, and its IoU output is [number of points, sum of labels, sum of x, mean
embedding]; see tests/tiny_models.py. The generator must give, for each click,
exactly the masks and scores that ``SamPredictor.predict`` gives for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from edgesam import EdgeSam, InvalidInputError, SamPredictor
from edgesam.amg import (
    MaskData,
    SamAutomaticMaskGenerator,
    box_iou,
    calculate_stability_score,
    generate_crop_boxes,
    mask_to_rle,
    rle_to_mask,
)

CENTRE = [np.array([[0.5, 0.5]])]  # one click in the middle of the image


def _image(height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def _generator(model: EdgeSam, **options: Any) -> SamAutomaticMaskGenerator:
    return SamAutomaticMaskGenerator(model, **options)


def _without_masks(records: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "segmentation"} for record in records]


def _same_records(first: list[Any], second: list[Any]) -> None:
    assert _without_masks(first) == _without_masks(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["segmentation"], b["segmentation"])


def test_one_click_gives_the_predictors_three_masks(tiny_model: EdgeSam) -> None:
    image = _image()
    generator = _generator(
        tiny_model,
        points_per_side=None,
        point_grids=CENTRE,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    records = generator.generate(image)
    predictor = SamPredictor(tiny_model)
    predictor.set_image(image)
    click = (np.array([[48.0, 32.0]]), np.array([1]))
    masks, scores, _ = predictor.predict(*click, use_stability_score=True)
    logits, _, _ = predictor.predict(*click, return_logits=True)
    # ranked by predicted IoU (here: low-res stability), best first
    order = np.argsort(-scores, kind="stable")
    assert len(records) == 3
    for record, output in zip(records, order, strict=True):
        mask = masks[output]
        np.testing.assert_array_equal(record["segmentation"], mask)
        assert record["predicted_iou"] == float(scores[output])
        assert record["stability_score"] == float(
            calculate_stability_score(logits[output], 0.0, 1.0)
        )
        assert record["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert record["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        assert record["point_coords"] == [[48.0, 32.0]]
        assert record["crop_box"] == [0, 0, 96, 64]
    # the discs of radius 120, 90, 30: bigger discs are more stable at a fixed offset
    assert [record["area"] for record in records] == sorted(
        (record["area"] for record in records), reverse=True
    )


def test_record_types_are_plain_python(tiny_model: EdgeSam) -> None:
    (record, *_) = _generator(
        tiny_model, points_per_side=None, point_grids=CENTRE, pred_iou_thresh=0.0
    ).generate(_image())
    assert type(record["area"]) is int
    assert all(type(value) is int for value in record["bbox"] + record["crop_box"])
    assert type(record["predicted_iou"]) is float
    assert type(record["stability_score"]) is float
    assert all(type(value) is float for value in record["point_coords"][0])
    assert record["segmentation"].dtype == np.bool_


def test_iou_head_scores_without_use_stability_score(tiny_model: EdgeSam) -> None:
    # IoU outputs 1..3 of the tiny decoder: sum of labels (1 - 1 = 0), sum of x
    # (48 px * 1024 / 96 = 512 in the frame, + 0 for the padding point), mean
    # embedding (< 0.88): only the middle output (radius 90) passes 0.88. (Its
    # full-resolution stability is 0.93, so the 0.95 filter is switched off.)
    records = _generator(
        tiny_model,
        points_per_side=None,
        point_grids=CENTRE,
        stability_score_thresh=0.0,
        use_stability_score=False,
    ).generate(_image())
    assert len(records) == 1
    assert records[0]["predicted_iou"] == 512.0


def test_pred_iou_thresh_is_strict(tiny_model: EdgeSam) -> None:
    options: dict[str, Any] = {
        "points_per_side": None,
        "point_grids": CENTRE,
        "stability_score_thresh": 0.0,
    }
    everything = _generator(tiny_model, pred_iou_thresh=0.0, **options).generate(_image())
    scores = [record["predicted_iou"] for record in everything]
    at_middle = _generator(tiny_model, pred_iou_thresh=scores[1], **options).generate(_image())
    assert [record["predicted_iou"] for record in at_middle] == scores[:1]


def test_stability_score_thresh_is_inclusive(tiny_model: EdgeSam) -> None:
    options: dict[str, Any] = {"points_per_side": None, "point_grids": CENTRE}
    everything = _generator(
        tiny_model, pred_iou_thresh=0.0, stability_score_thresh=0.0, **options
    ).generate(_image())
    lowest = min(record["stability_score"] for record in everything)
    kept = _generator(
        tiny_model, pred_iou_thresh=0.0, stability_score_thresh=lowest, **options
    ).generate(_image())
    assert len(kept) == 3
    above = np.nextafter(np.float32(lowest), np.float32(2.0))
    fewer = _generator(
        tiny_model, pred_iou_thresh=0.0, stability_score_thresh=float(above), **options
    ).generate(_image())
    assert len(fewer) == 2


def test_thresholds_compare_in_float32_like_torch(tiny_model: EdgeSam) -> None:
    options: dict[str, Any] = {"points_per_side": None, "point_grids": CENTRE}
    everything = _generator(
        tiny_model, pred_iou_thresh=0.0, stability_score_thresh=0.0, **options
    ).generate(_image())
    lowest = np.float32(min(record["stability_score"] for record in everything))
    # a float64 threshold just above the float32 score rounds down onto it: still kept
    just_above = float(lowest) + float(np.spacing(lowest)) / 4
    assert just_above > float(lowest)
    kept = _generator(
        tiny_model, pred_iou_thresh=0.0, stability_score_thresh=just_above, **options
    ).generate(_image())
    assert len(kept) == 3


def test_duplicate_clicks_are_removed_by_box_nms(tiny_model: EdgeSam) -> None:
    twice = [np.array([[0.5, 0.5], [0.5, 0.5]])]
    records = _generator(
        tiny_model,
        points_per_side=None,
        point_grids=twice,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    ).generate(_image())
    assert len(records) == 3


def test_no_two_masks_overlap_beyond_the_nms_threshold(tiny_model: EdgeSam) -> None:
    records = _generator(tiny_model, points_per_side=8, pred_iou_thresh=0.0).generate(
        _image(96, 128)
    )
    assert len(records) > 3
    boxes = np.array([record["bbox"] for record in records], dtype=np.float32)
    boxes[:, 2:] += boxes[:, :2]
    iou = box_iou(boxes, boxes)
    np.fill_diagonal(iou, 0.0)
    assert np.nanmax(iou) <= 0.7


def test_batch_size_and_batched_decoder_do_not_change_results(
    tiny_model: EdgeSam, tiny_full_model: EdgeSam
) -> None:
    image = _image(80, 60)
    options: dict[str, Any] = {"points_per_side": 5, "pred_iou_thresh": 0.0}
    reference = _generator(tiny_model, points_per_batch=64, **options).generate(image)
    assert len(reference) > 0
    _same_records(_generator(tiny_model, points_per_batch=1, **options).generate(image), reference)
    _same_records(_generator(tiny_model, points_per_batch=7, **options).generate(image), reference)
    _same_records(
        _generator(tiny_full_model, points_per_batch=7, **options).generate(image), reference
    )


def test_crop_layers(tiny_model: EdgeSam) -> None:
    height, width = 160, 240
    records = _generator(
        tiny_model, points_per_side=6, crop_n_layers=1, pred_iou_thresh=0.0
    ).generate(_image(height, width))
    crops, _ = generate_crop_boxes((height, width), 1, 512 / 1500)
    crops_xywh = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in crops]
    used = {tuple(record["crop_box"]) for record in records}
    assert used <= {tuple(crop) for crop in crops_xywh}
    assert len(used) > 1  # masks from the whole image and from crops
    for record in records:
        x0, y0, crop_w, crop_h = record["crop_box"]
        ((x, y),) = record["point_coords"]
        assert x0 <= x <= x0 + crop_w
        assert y0 <= y <= y0 + crop_h  # clicks are reported in image pixels
        bx, by, bw, bh = record["bbox"]
        # a crop's inner edges (not the image's) never hold a mask's box edge
        for box_edge, crop_edge, image_edge in [
            (bx, x0, 0),
            (by, y0, 0),
            (bx + bw, x0 + crop_w, width),
            (by + bh, y0 + crop_h, height),
        ]:
            if crop_edge != image_edge:
                assert abs(box_edge - crop_edge) > 20
        assert record["segmentation"].shape == (height, width)
        assert record["area"] == int(record["segmentation"].sum())


def test_output_modes_hold_the_same_masks(tiny_model: EdgeSam) -> None:
    options: dict[str, Any] = {"points_per_side": 4, "pred_iou_thresh": 0.0}
    binary = _generator(tiny_model, **options).generate(_image())
    uncompressed = _generator(tiny_model, output_mode="uncompressed_rle", **options).generate(
        _image()
    )
    compressed = _generator(tiny_model, output_mode="coco_rle", **options).generate(_image())
    assert _without_masks(binary) == _without_masks(uncompressed) == _without_masks(compressed)
    for a, b, c in zip(binary, uncompressed, compressed, strict=True):
        assert isinstance(b["segmentation"]["counts"], list)
        assert isinstance(c["segmentation"]["counts"], str)
        np.testing.assert_array_equal(rle_to_mask(b["segmentation"]), a["segmentation"])
        np.testing.assert_array_equal(rle_to_mask(c["segmentation"]), a["segmentation"])


def test_min_mask_region_area_leaves_clean_masks_alone(tiny_model: EdgeSam) -> None:
    options: dict[str, Any] = {"points_per_side": 4, "pred_iou_thresh": 0.0}
    plain = _generator(tiny_model, **options).generate(_image())
    cleaned = _generator(tiny_model, min_mask_region_area=5, **options).generate(_image())
    _same_records(cleaned, plain)  # discs have no holes or islands


def _data(masks: list[np.ndarray]) -> MaskData:
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
    count = len(masks)
    return MaskData(
        rles=[mask_to_rle(mask) for mask in masks],
        boxes=np.array(boxes, dtype=np.int64),
        iou_preds=np.linspace(0.9, 0.8, count).astype(np.float32),
        stability_score=np.ones(count, dtype=np.float32),
        points=np.zeros((count, 2)),
        crop_boxes=np.zeros((count, 4), dtype=np.int64),
    )


def test_cleaned_duplicate_loses_to_the_untouched_mask() -> None:
    square = np.zeros((20, 30), dtype=bool)
    square[5:15, 5:15] = True
    with_island = square.copy()
    with_island[18, 28] = True  # 1-pixel island stretches its box
    data = _data([with_island, square])
    kept = SamAutomaticMaskGenerator.postprocess_small_regions(data, 5, 0.7)
    # cleaned, the first equals the square (IoU 1): the unchanged square wins
    assert len(kept) == 1
    np.testing.assert_array_equal(rle_to_mask(kept.rles[0]), square)
    assert kept.boxes.tolist() == [[5, 5, 14, 14]]
    assert kept.iou_preds.tolist() == [np.float32(0.8)]


def test_cleaned_mask_gets_a_new_rle_and_box() -> None:
    ring = np.zeros((20, 30), dtype=bool)
    ring[2:10, 2:10] = True
    ring[5, 5] = False  # hole of 1
    ring[18, 28] = True  # island of 1
    kept = SamAutomaticMaskGenerator.postprocess_small_regions(_data([ring]), 3, 0.7)
    expected = np.zeros((20, 30), dtype=bool)
    expected[2:10, 2:10] = True
    np.testing.assert_array_equal(rle_to_mask(kept.rles[0]), expected)
    assert kept.boxes.tolist() == [[2, 2, 9, 9]]


def test_accepts_a_predictor_and_pil_images(tiny_model: EdgeSam) -> None:
    predictor = SamPredictor(tiny_model)
    generator = SamAutomaticMaskGenerator(predictor, points_per_side=2, pred_iou_thresh=0.0)
    assert generator.predictor is predictor
    from_pil = generator.generate(Image.fromarray(_image()))
    _same_records(from_pil, generator.generate(_image()))
    assert not predictor.is_image_set  # the generator resets its image after each crop


def test_nothing_passes_gives_no_records(tiny_model: EdgeSam) -> None:
    # Stability scores, the default "predicted IoU", are at most 1: none is above 1.
    assert _generator(tiny_model, points_per_side=2, pred_iou_thresh=1.0).generate(_image()) == []


@pytest.mark.parametrize("size", [(1, 2), (2, 1), (2, 2), (3, 3), (1, 5)])
@pytest.mark.parametrize("crop_n_layers", [0, 1, 2])
def test_tiny_images_give_records_not_errors(
    tiny_model: EdgeSam, size: tuple[int, int], crop_n_layers: int
) -> None:
    # Empty logit windows and crops under 2 pixels used to fail deep inside numpy.
    generator = _generator(
        tiny_model,
        points_per_side=2,
        crop_n_layers=crop_n_layers,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    assert isinstance(generator.generate(_image(*size)), list)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"points_per_side": None}, "exactly one of points_per_side"),
        ({"point_grids": CENTRE}, "exactly one of points_per_side"),
        ({"output_mode": "png"}, "output_mode"),
        ({"points_per_batch": 0}, "points_per_batch"),
        ({"pred_iou_thresh": "high"}, "pred_iou_thresh"),
        ({"pred_iou_thresh": 2}, r"pred_iou_thresh must be in \[0, 1\]: got 2 \(0 disables"),
        ({"pred_iou_thresh": -0.5}, r"pred_iou_thresh must be in \[0, 1\]"),
        ({"stability_score_thresh": -1}, r"stability_score_thresh must be in \[0, 1\]"),
        ({"stability_score_thresh": 1.01}, r"stability_score_thresh must be in \[0, 1\]"),
        ({"box_nms_thresh": 1.5}, r"box_nms_thresh must be in \[0, 1\]: got 1.5"),
        ({"crop_nms_thresh": -0.1}, r"crop_nms_thresh must be in \[0, 1\]"),
        ({"stability_score_offset": float("inf")}, "stability_score_offset must be a finite"),
        ({"box_nms_thresh": float("nan")}, "box_nms_thresh must be a finite"),
        ({"box_nms_thresh": True}, "box_nms_thresh must be a finite"),
        ({"crop_n_layers": -1}, "crop_n_layers"),
        ({"points_per_side": None, "point_grids": [np.array([[2.0, 0.5]])]}, r"\[0, 1\]"),
        (
            {"points_per_side": None, "point_grids": CENTRE, "crop_n_layers": 1},
            "one grid per crop layer",
        ),
    ],
)
def test_bad_options_are_rejected(tiny_model: EdgeSam, options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        SamAutomaticMaskGenerator(tiny_model, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"pred_iou_thresh": 0, "stability_score_thresh": 0},  # both filters off
        {"pred_iou_thresh": 1.0, "stability_score_thresh": 1.0},
        {"box_nms_thresh": 0.0, "crop_nms_thresh": 1.0},
        {"pred_iou_thresh": np.float32(0.5), "box_nms_thresh": np.float64(0.3)},
    ],
)
def test_boundary_options_are_accepted(tiny_model: EdgeSam, options: dict[str, Any]) -> None:
    SamAutomaticMaskGenerator(tiny_model, **options)


def test_model_must_be_a_predictor_or_edgesam() -> None:
    with pytest.raises(InvalidInputError, match=r"SamPredictor or edgesam\.EdgeSam"):
        SamAutomaticMaskGenerator("edge_sam_3x")  # type: ignore[arg-type]


def test_progress_counts_every_grid_point_of_every_crop(tiny_model: EdgeSam) -> None:
    generator = _generator(tiny_model, points_per_side=4, points_per_batch=5, crop_n_layers=1)
    calls: list[tuple[int, int]] = []
    with_progress = generator.generate(
        _image(), progress=lambda done, total: calls.append((done, total))
    )
    # The whole image's grid, then the same grid in each of layer 1's 4 crops, in
    # batches of at most 5 points.
    expected_total = sum(len(grid) for grid in generator.point_grids[:1]) + 4 * len(
        generator.point_grids[1]
    )
    assert {total for _, total in calls} == {expected_total}
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)
    assert dones[-1] == expected_total
    assert all(later - earlier <= 5 for earlier, later in zip([0, *dones], dones, strict=False))
    # Reporting progress changes nothing in the records.
    assert _without_masks(with_progress) == _without_masks(generator.generate(_image()))


def test_progress_must_be_callable(tiny_model: EdgeSam) -> None:
    with pytest.raises(InvalidInputError, match="progress must be a callable"):
        _generator(tiny_model, points_per_side=2).generate(_image(), progress=3)  # type: ignore[arg-type]
