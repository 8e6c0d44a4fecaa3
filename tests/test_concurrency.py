"""One EdgeSam shared by many predictors in many threads gives the single-threaded results."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edgesam import EdgeSam, SamPredictor


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    sizes = [(90, 120), (120, 90), (64, 64), (200, 50), (37, 53), (150, 151)]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(count)]


def _work(model: EdgeSam, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    predictor = SamPredictor(model)
    predictor.set_image(image)
    height, width = image.shape[:2]
    masks, scores, logits = predictor.predict(
        point_coords=[[width * 0.3, height * 0.6]], point_labels=[1], num_multimask_outputs=4
    )
    return masks, scores, logits


def _check_threads(model: EdgeSam, images: list[np.ndarray], workers: int) -> None:
    expected = [_work(model, image) for image in images]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda image: _work(model, image), images))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])


def test_threads_share_tiny_model(tiny_model: EdgeSam) -> None:
    _check_threads(tiny_model, _images(24), workers=8)


@pytest.mark.reference
def test_threads_share_reference_model(reference_dir: Path) -> None:
    onnx_dir = reference_dir / "onnx"
    model = EdgeSam.from_files(
        onnx_dir / "edge_sam_random_encoder.onnx",
        onnx_dir / "edge_sam_random_decoder.onnx",
        providers=["cpu"],
    )
    _check_threads(model, _images(6), workers=3)
