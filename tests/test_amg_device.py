"""Everything mode with the device pipeline: the same records as the host path.

With ``device_pipeline=True`` (the graphs on onnxruntime's CPU provider here),
:class:`~edgesam.SamAutomaticMaskGenerator` upsamples, scores, filters and boxes
each decoder batch in ``graphs/postprocess_everything.onnx``. Every record field
(RLE counts, scores, stability scores, boxes, points, crop boxes, order) must
equal the host path's, on the tiny models and on the reference model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from edgesam import SamAutomaticMaskGenerator, SamPredictor
from edgesam import _device_pipeline as pipeline_module
from edgesam._device_pipeline import _graph_bytes
from edgesam._device_post import everything_feeds
from edgesam._postprocess import upsample_logits
from edgesam._transforms import input_size_for
from edgesam.amg import _generator as generator_module
from edgesam.amg import calculate_stability_score, masks_to_boxes

CPU = "CPUExecutionProvider"


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def _predictors(encoder: Path, decoder: Path) -> tuple[SamPredictor, SamPredictor]:
    device, host = (
        SamPredictor.from_files(encoder, decoder, providers=["cpu"], device_pipeline=choice)
        for choice in (True, False)
    )
    assert device.pipeline_providers["postprocess"] == [CPU]
    assert host.pipeline_providers["postprocess"] == ["host"]
    return device, host


def _host_filter_forbidden(generator: SamAutomaticMaskGenerator) -> None:
    """Make the generator fail if it falls back to the host filter (the graph must run)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the device generator used the host filter")

    generator._filter_on_host = refuse  # type: ignore[method-assign]


def _both(
    device: SamPredictor, host: SamPredictor, image: np.ndarray, **options: Any
) -> tuple[list[Any], list[Any]]:
    on_device = SamAutomaticMaskGenerator(device, output_mode="uncompressed_rle", **options)
    _host_filter_forbidden(on_device)
    on_host = SamAutomaticMaskGenerator(host, output_mode="uncompressed_rle", **options)
    return on_device.generate(image), on_host.generate(image)


def _assert_identical(first: list[Any], second: list[Any]) -> None:
    assert len(first) == len(second)
    for index, (a, b) in enumerate(zip(first, second, strict=True)):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == b[key], f"record {index}: {key} differs"
            assert type(a[key]) is type(b[key])


TINY_CASES: list[dict[str, Any]] = [
    {"points_per_side": 6, "pred_iou_thresh": 0.0},
    {"points_per_side": 6, "pred_iou_thresh": 0.0, "crop_n_layers": 1},
    {
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "box_nms_thresh": 1.0,
        "points_per_batch": 5,
    },
    {
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_score_offset": 3.0,
        "stability_score_thresh": 0.87,
    },
    {"points_per_side": 4, "pred_iou_thresh": 0.0, "min_mask_region_area": 50},
]


@pytest.mark.parametrize("options", TINY_CASES)
@pytest.mark.parametrize("decoder", ["decoder", "full_decoder"])
def test_tiny_models_give_identical_records(
    tiny_model_files: dict[str, Path], options: dict[str, Any], decoder: str
) -> None:
    device, host = _predictors(tiny_model_files["encoder"], tiny_model_files[decoder])
    first, second = _both(device, host, _image(160, 240), **options)
    assert len(second) > 0
    _assert_identical(first, second)


def test_chunks_that_fit_the_memory_bound_give_the_same_records(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    device, host = _predictors(tiny_model_files["encoder"], tiny_model_files["decoder"])
    image = _image(90, 70)
    # Room for 3 masks of 90x70 per graph run: the batch goes through in chunks.
    monkeypatch.setattr(pipeline_module, "MAX_GRAPH_BYTES", 3 * 16 * 90 * 70)
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "box_nms_thresh": 1.0}
    first, second = _both(device, host, image, **options)
    assert len(second) > 3
    _assert_identical(first, second)


def test_the_device_binding_path_gives_the_same_records(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The IO-binding path used on CUDA (outputs bound to the host), exercised on CPU.
    monkeypatch.setitem(pipeline_module._DEVICES, CPU, "cpu")
    device, host = _predictors(tiny_model_files["encoder"], tiny_model_files["decoder"])
    pipeline = device.model._pipeline
    assert pipeline is not None
    assert pipeline._everything is not None
    assert pipeline._everything.device == "cpu"
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "crop_n_layers": 1}
    first, second = _both(device, host, _image(120, 90), **options)
    assert len(second) > 0
    _assert_identical(first, second)


def test_a_mask_too_large_for_the_graph_goes_to_the_host(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    device, host = _predictors(tiny_model_files["encoder"], tiny_model_files["decoder"])
    monkeypatch.setattr(pipeline_module, "MAX_GRAPH_BYTES", 100)
    options = {"points_per_side": 3, "pred_iou_thresh": 0.0}
    records = SamAutomaticMaskGenerator(device, **options).generate(_image(60, 80))
    expected = SamAutomaticMaskGenerator(host, **options).generate(_image(60, 80))
    assert len(expected) > 0
    assert [r["bbox"] for r in records] == [r["bbox"] for r in expected]


class _FailingSession:
    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session

    def get_providers(self) -> list[str]:
        return list(self._session.get_providers())

    def run(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated provider failure")


def test_a_failing_graph_hands_the_batch_to_the_host(
    tiny_model_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    device, host = _predictors(tiny_model_files["encoder"], tiny_model_files["decoder"])
    pipeline = device.model._pipeline
    assert pipeline is not None
    assert pipeline._everything is not None
    session = pipeline._everything._session
    assert session is not None
    pipeline._everything._session = _FailingSession(session)  # type: ignore[assignment]
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0}
    with caplog.at_level(logging.WARNING, logger="edgesam._device_pipeline"):
        records = SamAutomaticMaskGenerator(device, **options).generate(_image(60, 80))
    assert any("everything postprocessing graph failed" in r.getMessage() for r in caplog.records)
    assert pipeline._everything.session is None
    expected = SamAutomaticMaskGenerator(host, **options).generate(_image(60, 80))
    assert len(expected) > 0
    assert [r["bbox"] for r in records] == [r["bbox"] for r in expected]


@pytest.fixture(scope="module")
def everything_graph() -> ort.InferenceSession:
    return ort.InferenceSession(_graph_bytes("postprocess_everything.onnx"), providers=[CPU])


@pytest.mark.parametrize("original_size", [(534, 800), (37, 53), (1, 300), (300, 1)])
def test_graph_scores_boxes_and_masks_match_the_host_functions(
    everything_graph: ort.InferenceSession, original_size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(original_size))
    low_res = (rng.standard_normal((6, 256, 256)) * 4).astype(np.float32)
    low_res[1] = -5.0  # empty at every threshold: score 0, box [0, 0, 0, 0]
    low_res[2] = 0.5  # full mask, nothing above +1: score 0
    low_res[3] -= 2.0
    input_size = input_size_for(original_size)
    scores, keep, boxes, masks = everything_graph.run(
        None, everything_feeds(low_res, original_size, input_size, 1.0, 0.0)
    )
    logits = upsample_logits(low_res, original_size, input_size)
    expected_scores = calculate_stability_score(logits, 0.0, 1.0)
    np.testing.assert_array_equal(scores, expected_scores)
    assert scores[1] == 0.0
    assert scores[2] == 0.0
    np.testing.assert_array_equal(keep, np.arange(6))
    np.testing.assert_array_equal(masks, logits > 0.0)
    np.testing.assert_array_equal(boxes, masks_to_boxes(logits > 0.0))
    assert boxes.dtype == np.int64
    assert masks.dtype == np.bool_
    # A threshold between the scores keeps exactly those at or above it, in order.
    threshold = float(np.sort(expected_scores)[3])
    scores2, keep2, boxes2, masks2 = everything_graph.run(
        None, everything_feeds(low_res, original_size, input_size, 1.0, threshold)
    )
    wanted = np.flatnonzero(expected_scores >= np.float32(threshold))
    assert 0 < wanted.shape[0] < 6
    np.testing.assert_array_equal(scores2, scores)
    np.testing.assert_array_equal(keep2, wanted)
    np.testing.assert_array_equal(boxes2, boxes[wanted])
    np.testing.assert_array_equal(masks2, masks[wanted])


def _reference_image(reference_dir: Path, name: str) -> np.ndarray:
    with Image.open(reference_dir / "images" / name) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.reference
def test_reference_model_gives_identical_records(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_dir = reference_dir / "onnx"
    device, host = _predictors(
        onnx_dir / "edge_sam_random_encoder.onnx", onnx_dir / "edge_sam_random_decoder.onnx"
    )
    # Whole image, 16 clicks, every candidate kept to the end (no NMS): 48 masks compared.
    options: dict[str, Any] = {
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "box_nms_thresh": 1.0,
    }
    image = _reference_image(reference_dir, "truck.jpg")
    first, second = _both(device, host, image, **options)
    assert len(second) == 48
    _assert_identical(first, second)
    # Crop layer 1 on another size. The random weights' masks are large and all end at a
    # crop's inner edge: with that filter off, the crops' masks reach the records too.
    monkeypatch.setattr(
        generator_module,
        "is_box_near_crop_edge",
        lambda boxes, *args, **kwargs: np.zeros(len(boxes), dtype=np.bool_),
    )
    grids = [
        np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]),
        np.array([[0.3, 0.3], [0.5, 0.5], [0.7, 0.7]]),
    ]
    crop_options: dict[str, Any] = {
        "points_per_side": None,
        "point_grids": grids,
        "crop_n_layers": 1,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.5,
        "box_nms_thresh": 1.0,
        "crop_nms_thresh": 1.0,
    }
    image = _reference_image(reference_dir, "groceries.jpg")
    first, second = _both(device, host, image, **crop_options)
    assert len({tuple(record["crop_box"]) for record in second}) > 1
    _assert_identical(first, second)
