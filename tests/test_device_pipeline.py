"""device_pipeline: which path runs, what is reported, the fallback, and the shipped graphs."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime as ort
import pytest

from edgesam import EdgeSam, SamPredictor
from edgesam import _device_pipeline as pipeline_module
from edgesam._device_pipeline import HOST, DevicePipeline
from edgesam.errors import InvalidImageError, InvalidInputError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _predictor(files: dict[str, Path], choice: object) -> SamPredictor:
    return SamPredictor.from_files(
        files["encoder"],
        files["decoder"],
        providers=["cpu"],
        device_pipeline=choice,  # type: ignore[arg-type]
    )


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "edgesam._device_pipeline" and record.levelno == logging.WARNING
    ]


def test_auto_keeps_the_host_path_on_cpu(tiny_model: EdgeSam) -> None:
    assert tiny_model.pipeline_providers == {"preprocess": [HOST], "postprocess": [HOST]}
    assert SamPredictor(tiny_model).pipeline_providers == tiny_model.pipeline_providers


def test_auto_chooses_the_graphs_where_the_encoder_runs_on_an_accelerator() -> None:
    # The encoder reports an accelerator; the graphs go where it runs, here CPU as well.
    pipeline = DevicePipeline("auto", [CPU], [CUDA, CPU])
    assert pipeline.providers == {"preprocess": [CPU], "postprocess": [CPU]}
    assert DevicePipeline("auto", [CPU], [CPU]).providers["preprocess"] == [HOST]
    assert DevicePipeline(False, [CPU], [CUDA, CPU]).providers["postprocess"] == [HOST]


def test_true_runs_the_graphs_on_cpu_and_says_so(tiny_model_files: dict[str, Path]) -> None:
    predictor = _predictor(tiny_model_files, True)
    assert predictor.pipeline_providers == {"preprocess": [CPU], "postprocess": [CPU]}
    assert predictor.providers == {"encoder": [CPU], "decoder": [CPU]}
    assert _predictor(tiny_model_files, False).pipeline_providers["preprocess"] == [HOST]


@pytest.mark.parametrize("value", ["yes", 1, None, "AUTO", "cuda"])
def test_invalid_choices_are_refused_before_any_file_is_read(value: object) -> None:
    with pytest.raises(InvalidInputError, match="device_pipeline must be"):
        EdgeSam.from_files(
            "missing_encoder.onnx",
            "missing_decoder.onnx",
            device_pipeline=value,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("size", [(300, 500), (1200, 90), (37, 53)])
def test_graphs_and_host_give_the_same_embedding_and_masks(
    tiny_model_files: dict[str, Path], size: tuple[int, int]
) -> None:
    host, device = _predictor(tiny_model_files, False), _predictor(tiny_model_files, True)
    image = _image(*size)
    host.set_image(image)
    device.set_image(image)
    np.testing.assert_array_equal(
        np.asarray(device.get_image_embedding()), np.asarray(host.get_image_embedding())
    )
    assert device.input_size == host.input_size
    point = [[size[1] // 3, size[0] // 2]]
    masks, scores, low_res = device.predict(point, [1], multimask_output=True)
    host_masks, host_scores, host_low_res = host.predict(point, [1], multimask_output=True)
    assert masks.dtype == np.bool_
    assert masks.shape == (3, *size)
    np.testing.assert_array_equal(masks, host_masks)
    np.testing.assert_array_equal(scores, host_scores)
    np.testing.assert_array_equal(low_res, host_low_res)
    logits, _, _ = device.predict(point, [1], return_logits=True)
    host_logits, _, _ = host.predict(point, [1], return_logits=True)
    # Dense vs banded products: float32 rounding apart (1 ulp).
    np.testing.assert_allclose(logits, host_logits, rtol=1e-6, atol=1e-5)
    batch = device.predict_batch(point_coords=[point, point], point_labels=[[1], [1]])[0]
    assert batch.shape == (2, 3, *size)
    np.testing.assert_array_equal(batch[1], masks)


class _FailingSession:
    """Stands in for a graph session whose provider fails every run."""

    def __init__(self, real: ort.InferenceSession) -> None:
        self._real = real

    def get_providers(self) -> list[str]:
        return list(self._real.get_providers())

    def io_binding(self) -> ort.IOBinding:
        return self._real.io_binding()

    def run(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError("simulated provider failure")

    run_with_iobinding = run


def test_a_graph_that_fails_at_run_time_hands_over_to_the_host(
    tiny_model_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    device, host = _predictor(tiny_model_files, True), _predictor(tiny_model_files, False)
    pipeline = device.model._pipeline
    assert pipeline is not None
    for graph in [*pipeline._pre.values(), pipeline._post]:
        assert graph is not None
        graph._session = _FailingSession(graph._session)  # type: ignore[assignment]
    image = _image(200, 300)
    with caplog.at_level(logging.WARNING, logger="edgesam._device_pipeline"):
        device.set_image(image)
        masks, _, _ = device.predict([[100, 100]], [1])
    warnings = _warnings(caplog)
    assert any("preprocessing graph failed" in line for line in warnings)
    assert any("postprocessing graph failed" in line for line in warnings)
    assert any("simulated provider failure" in line for line in warnings)
    assert device.pipeline_providers == {"preprocess": [HOST], "postprocess": [HOST]}
    host.set_image(image)
    np.testing.assert_array_equal(
        np.asarray(device.get_image_embedding()), np.asarray(host.get_image_embedding())
    )
    np.testing.assert_array_equal(masks, host.predict([[100, 100]], [1])[0])


def test_a_graph_that_cannot_be_created_leaves_the_host_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pipeline_module, "_graph_bytes", lambda name: b"not an onnx graph")
    with caplog.at_level(logging.WARNING, logger="edgesam._device_pipeline"):
        pipeline = DevicePipeline(True, [CPU], [CPU])
    assert pipeline.providers == {"preprocess": [HOST], "postprocess": [HOST]}
    assert pipeline.preprocess(_image(10, 10)) is None
    assert (
        pipeline.upsample(np.zeros((1, 256, 256), np.float32), (10, 10), (1024, 1024), False)
        is None
    )
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert all("runs on the host" in line for line in warnings)


def test_a_provider_onnxruntime_does_not_grant_leaves_the_host_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the test needs a provider it lacks")
    # onnxruntime refuses or replaces a provider it lacks; either way the graphs would
    # not run where the model runs, so they stay off.
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = DevicePipeline(True, [CUDA, CPU], [CUDA, CPU])
    assert pipeline.providers == {"preprocess": [HOST], "postprocess": [HOST]}
    assert any("runs on the host" in line for line in _warnings(caplog))


def test_the_device_binding_path_keeps_the_result_for_the_encoder(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The IO-binding path used on CUDA, exercised on CPU: the preprocessed image comes
    # back as an OrtValue that the encoder session takes as its input.
    monkeypatch.setitem(pipeline_module._DEVICES, CPU, "cpu")
    device, host = _predictor(tiny_model_files, True), _predictor(tiny_model_files, False)
    image = _image(333, 222)
    prepared = device.model._pipeline.preprocess(image)  # type: ignore[union-attr]
    assert prepared is not None
    assert isinstance(prepared[0], ort.OrtValue)
    device.set_image(image)
    host.set_image(image)
    np.testing.assert_array_equal(
        np.asarray(device.get_image_embedding()), np.asarray(host.get_image_embedding())
    )
    np.testing.assert_array_equal(
        device.predict([[50, 60]], [1])[0], host.predict([[50, 60]], [1])[0]
    )


def _builder() -> ModuleType:
    path = REPO_ROOT / "tools" / "build_device_graphs.py"
    spec = importlib.util.spec_from_file_location("build_device_graphs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_graphs_are_what_the_builder_makes() -> None:
    pytest.importorskip("onnx", reason="the graph builder needs the onnx package")
    built = _builder().build_all()
    shipped = REPO_ROOT / "src" / "edgesam" / "graphs"
    assert sorted(built) == sorted(path.name for path in shipped.glob("*.onnx"))
    for name, data in built.items():
        assert (shipped / name).read_bytes() == data, (
            f"{name} differs from tools/build_device_graphs.py's output: run "
            "python tools/build_device_graphs.py"
        )


def test_builder_constants_are_the_runtimes() -> None:
    pytest.importorskip("onnx", reason="the graph builder needs the onnx package")
    from edgesam._device_pre import PRECISION_BITS
    from edgesam._transforms import IMAGE_SIZE, PIXEL_MEAN, PIXEL_STD

    builder = _builder()
    np.testing.assert_array_equal(builder.PIXEL_MEAN, PIXEL_MEAN)
    np.testing.assert_array_equal(builder.PIXEL_STD, PIXEL_STD)
    assert builder.PRECISION_BITS == PRECISION_BITS
    assert builder.IMAGE_SIZE == IMAGE_SIZE


def test_the_graphs_run_without_the_onnx_package() -> None:
    code = (
        "import sys; from edgesam._device_pipeline import DevicePipeline; "
        "p = DevicePipeline(True, ['CPUExecutionProvider'], ['CPUExecutionProvider']); "
        "assert p.providers['preprocess'] == ['CPUExecutionProvider'], p.providers; "
        "assert 'onnx' not in sys.modules, 'onnx was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_images_the_graph_cannot_take_go_to_the_host(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    device, host = _predictor(tiny_model_files, True), _predictor(tiny_model_files, False)
    # Too elongated to resize: the same error as on the host path.
    with pytest.raises(InvalidImageError, match="too elongated"):
        device.set_image(np.zeros((1, 3000, 3), dtype=np.uint8))
    # Over the graph's memory bound: resized on the host, same result.
    monkeypatch.setattr(pipeline_module, "MAX_GRAPH_BYTES", 1000)
    pipeline = device.model._pipeline
    assert pipeline is not None
    image = _image(120, 80)
    assert pipeline.preprocess(image) is None
    device.set_image(image)
    host.set_image(image)
    np.testing.assert_array_equal(
        np.asarray(device.get_image_embedding()), np.asarray(host.get_image_embedding())
    )
    assert device.pipeline_providers["preprocess"] == [CPU]
    low_res = np.zeros((2, 256, 256), np.float32)
    assert pipeline.upsample(low_res, (120, 80), (1024, 683), False) is None
    np.testing.assert_array_equal(
        device.predict([[40, 60]], [1])[0], host.predict([[40, 60]], [1])[0]
    )
