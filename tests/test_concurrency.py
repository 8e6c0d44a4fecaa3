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


# -- one predictor shared by threads (misuse, made safe by the predictor's lock) -------------


def _single_thread_results(
    model: EdgeSam, images: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    predictor = SamPredictor(model)
    results = []
    for image in images:
        predictor.set_image(image)
        embedding = np.asarray(predictor.get_image_embedding()).copy()
        _, scores, logits = predictor.predict(point_coords=[[20, 20]], point_labels=[1])
        results.append((embedding, scores, logits))
    return results


def test_one_predictor_shared_by_threads_never_mixes_images(tiny_model: EdgeSam) -> None:
    images = _images(6)
    expected = _single_thread_results(tiny_model, images)
    shared = SamPredictor(tiny_model)

    def hammer(worker: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        seen = []
        for step in range(12):
            shared.set_image(images[(worker + step) % len(images)])
            embedding = np.asarray(shared.get_image_embedding()).copy()
            _, scores, logits = shared.predict(point_coords=[[20, 20]], point_labels=[1])
            seen.append((embedding, scores, logits))
        return seen

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = [item for batch in pool.map(hammer, range(8)) for item in batch]
    assert len(outcomes) == 96
    for embedding, scores, logits in outcomes:
        # Each call saw one whole image: the embedding is one image's, and the
        # prediction is exactly some image's single-threaded prediction.
        assert any(np.array_equal(embedding, want[0]) for want in expected)
        assert any(
            np.array_equal(scores, want[1]) and np.array_equal(logits, want[2])
            for want in expected
        )


def test_a_second_thread_waits_for_the_running_call(
    tiny_model: EdgeSam, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    image = _images(1)[0]
    predictor = SamPredictor(tiny_model)
    predictor.set_image(image)
    expected = predictor.predict(point_coords=[[20, 20]], point_labels=[1])

    inside, release = threading.Event(), threading.Event()
    order: list[str] = []
    decode = type(tiny_model)._decode

    def paused_decode(self: EdgeSam, *args: object, **kwargs: object) -> object:
        inside.set()
        release.wait(30)
        return decode(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(type(tiny_model), "_decode", paused_decode)
    results: list[object] = []

    def first() -> None:
        results.append(predictor.predict(point_coords=[[20, 20]], point_labels=[1]))
        order.append("predict")

    def second() -> None:
        predictor.reset_image()
        order.append("reset")

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(30)
    two = threading.Thread(target=second)
    two.start()
    two.join(1.0)  # without the lock, reset_image would finish here, mid-predict
    release.set()
    one.join(30)
    two.join(30)
    assert order == ["predict", "reset"]
    got = results[0]
    assert isinstance(got, tuple)
    for part, want in zip(got, expected, strict=True):
        np.testing.assert_array_equal(part, want)
    assert not predictor.is_image_set
