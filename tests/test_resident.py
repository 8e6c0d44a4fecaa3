"""The IO-binding path that keeps the embedding on the device between encoder and decoder.

On CUDA, ``ModelSession`` binds outputs to device memory and the predictor
feeds the encoder's output buffer straight to every decoder call. No GPU here:
the same code runs with onnxruntime's ``"cpu"`` device (``resident_device="cpu"``),
so these tests check the plumbing (what is bound, what is returned, that
results equal the plain path); the CUDA run itself is in docs/performance.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgesam import EdgeSam, SamPredictor
from edgesam._providers import CPU
from edgesam._session import DECODER_CONTRACT, ENCODER_CONTRACT, ModelSession


def _model(files: dict[str, Path], decoder: str, resident_device: str | None) -> EdgeSam:
    return EdgeSam(
        ModelSession(files["encoder"], ENCODER_CONTRACT, [CPU], resident_device=resident_device),
        ModelSession(files[decoder], DECODER_CONTRACT, [CPU], resident_device=resident_device),
        name="tiny",
    )


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (300, 500, 3), dtype=np.uint8)


def test_plain_cpu_sessions_have_no_resident_device(tiny_model: EdgeSam) -> None:
    assert tiny_model.resident_device is None
    predictor = SamPredictor(tiny_model)
    predictor.set_image(_image())
    assert predictor._resident is None


def test_run_resident_returns_device_values_that_feed_back(
    tiny_model_files: dict[str, Path],
) -> None:
    session = ModelSession(
        tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU], resident_device="cpu"
    )
    image = np.random.default_rng(1).random((1, 3, 1024, 1024), dtype=np.float32)
    (value,) = session.run_resident({"image": image})
    assert isinstance(value, ort.OrtValue)
    assert value.device_name() == "cpu"
    (plain,) = session.run({"image": image})
    np.testing.assert_array_equal(value.numpy(), plain)


@pytest.mark.parametrize("decoder", ["decoder", "full_decoder"])
def test_resident_predictions_equal_plain_ones(
    tiny_model_files: dict[str, Path], decoder: str
) -> None:
    resident = SamPredictor(_model(tiny_model_files, decoder, "cpu"))
    plain = SamPredictor(_model(tiny_model_files, decoder, None))
    assert resident.model.resident_device == "cpu"
    for predictor in (resident, plain):
        predictor.set_image(_image())
    assert isinstance(resident._resident, ort.OrtValue)
    np.testing.assert_array_equal(
        np.asarray(resident.get_image_embedding()), np.asarray(plain.get_image_embedding())
    )
    boxes = np.array([[10, 20, 200, 150], [300, 100, 480, 290]])
    for kwargs in (
        {"point_coords": [[120, 80]], "point_labels": [1]},
        {"box": boxes},
    ):
        expected = plain.predict(**kwargs)  # type: ignore[arg-type]
        got = resident.predict(**kwargs)  # type: ignore[arg-type]
        for want, have in zip(expected, got, strict=True):
            np.testing.assert_array_equal(have, want)


def test_restored_embedding_is_uploaded_once(tiny_model_files: dict[str, Path]) -> None:
    model = _model(tiny_model_files, "decoder", "cpu")
    source = SamPredictor(model)
    source.set_image(_image(2))
    embedding = source.get_image_embedding()
    expected = source.predict([[50, 60]], [1])
    restored = SamPredictor(model)
    restored.set_image_embedding(embedding)
    assert isinstance(restored._resident, ort.OrtValue)
    np.testing.assert_array_equal(restored._resident.numpy(), np.asarray(embedding))
    for want, have in zip(expected, restored.predict([[50, 60]], [1]), strict=True):
        np.testing.assert_array_equal(have, want)
    restored.reset_image()
    assert restored._resident is None


def test_device_values_reach_a_session_that_fell_back_to_cpu(
    tiny_model_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """After a fallback the session has no device: bound values are read back to the host."""
    session = ModelSession(
        tiny_model_files["decoder"], DECODER_CONTRACT, [CPU], resident_device=None
    )
    embedding = np.random.default_rng(3).random((1, 256, 64, 64), dtype=np.float32)
    feeds = {
        "point_coords": np.array([[[512.0, 256.0], [0.0, 0.0]]], dtype=np.float32),
        "point_labels": np.array([[1.0, -1.0]], dtype=np.float32),
    }
    device_value = ort.OrtValue.ortvalue_from_numpy(embedding, "cpu", 0)
    with caplog.at_level(logging.WARNING):
        from_device = session.run({"image_embeddings": device_value, **feeds})
    from_host = session.run({"image_embeddings": embedding, **feeds})
    for have, want in zip(from_device, from_host, strict=True):
        np.testing.assert_array_equal(have, want)
    # and run_resident without a device gives host arrays
    outputs = session.run_resident({"image_embeddings": embedding, **feeds})
    assert all(isinstance(output, np.ndarray) for output in outputs)


@pytest.mark.parametrize("decoder", ["decoder", "full_decoder"])
def test_decoder_reads_the_resident_embedding(
    tiny_model_files: dict[str, Path], decoder: str
) -> None:
    """The device copy, not the host array, is what reaches the decoder.

    The tiny decoder's fourth score is the mean of the embedding it received;
    a resident value of all 2s must show up there, whatever the host copy holds.
    """
    predictor = SamPredictor(_model(tiny_model_files, decoder, "cpu"))
    predictor.set_image(_image(4))
    host_mean = float(np.asarray(predictor.get_image_embedding()).mean())
    predictor._resident = ort.OrtValue.ortvalue_from_numpy(
        np.full((1, 256, 64, 64), 2.0, dtype=np.float32), "cpu", 0
    )
    _, scores, _ = predictor.predict([[50, 60]], [1], num_multimask_outputs=4)
    assert scores[3] == pytest.approx(2.0)
    assert host_mean != pytest.approx(2.0)
