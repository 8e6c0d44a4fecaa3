"""ModelSession: damaged files, contract checks, and CPU fallback at creation and at run time.

Accelerators are simulated by replacing ``onnxruntime.InferenceSession`` (as
``edgesam._session`` sees it) with wrappers that fail the way CUDA does: at
creation (a missing library) or at run time (a kernel error).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

import edgesam._session
from edgesam import EdgeSam, InvalidInputError
from edgesam._session import (
    DECODER_CONTRACT,
    ENCODER_CONTRACT,
    ModelSession,
    default_session_options,
    physical_cores,
)
from edgesam.errors import CorruptModelError, InferenceError, ModelContractError, ModelFileError
from tiny_models import build_encoder, expected_embedding

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
REAL_SESSION = onnxruntime.InferenceSession


def _names(providers: Sequence[Any]) -> list[str]:
    return [spec[0] if isinstance(spec, tuple) else spec for spec in providers]


def _image_input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1, 3, 1024, 1024)).astype(np.float32)


def _session_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name == "edgesam._session"
    ]


def _save_model(
    path: Path,
    inputs: list[tuple[str, int, list[Any]]],
    outputs: list[tuple[str, list[Any]]],
    nodes: list[onnx.NodeProto],
) -> Path:
    graph = helper.make_graph(
        nodes,
        "contract_test",
        [helper.make_tensor_value_info(name, dtype, shape) for name, dtype, shape in inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# -- loading ---------------------------------------------------------------------------------


def test_encoder_session_runs_and_reports_cpu(tiny_model_files: dict[str, Path]) -> None:
    session = ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU])
    assert session.providers == [CPU]
    assert session.input_names == ["image"]
    assert session.output_names == ["image_embeddings"]
    assert session.has_optional_inputs is False
    image = _image_input()
    (embedding,) = session.run({"image": image})
    assert embedding.dtype == np.float32
    np.testing.assert_allclose(embedding, expected_embedding(image), rtol=0, atol=1e-5)


def test_decoder_sessions_and_optional_inputs(tiny_model_files: dict[str, Path]) -> None:
    official = ModelSession(tiny_model_files["decoder"], DECODER_CONTRACT, [CPU])
    assert official.has_optional_inputs is False
    assert official.input_shape("point_coords") == [1, "num_points", 2]
    assert set(official.output_names) == {"scores", "masks"}
    full = ModelSession(tiny_model_files["full_decoder"], DECODER_CONTRACT, [CPU])
    assert full.has_optional_inputs is True
    assert full.input_shape("mask_input") == ["num_prompts", 1, 256, 256]
    with pytest.raises(KeyError):
        full.input_shape("image")


def test_default_session_options() -> None:
    options = default_session_options()
    assert isinstance(options, onnxruntime.SessionOptions)
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Pools stop spinning when a run returns, so that they leave the cores to what follows.
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    # One thread per physical core, asked for explicitly so that onnxruntime does not pin them.
    assert options.intra_op_num_threads == physical_cores()


def test_caller_session_options_are_passed_through(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    def recording(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        seen.append(sess_options)
        return REAL_SESSION(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(edgesam._session.ort, "InferenceSession", recording)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU], options)
    assert seen == [options]
    seen.clear()
    ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU])
    assert len(seen) == 1
    assert seen[0].graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_info_log_says_what_runs(
    tiny_model_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edgesam._session"):
        ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU])
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("tiny_encoder.onnx" in m and CPU in m for m in infos)


# -- damaged files ---------------------------------------------------------------------------


def test_random_bytes_are_a_corrupt_model(tmp_path: Path) -> None:
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CorruptModelError, match="could not be loaded as an ONNX model") as info:
        ModelSession(path, ENCODER_CONTRACT, [CPU])
    assert str(path) in str(info.value)
    assert "encoder" in str(info.value)
    assert isinstance(info.value, ModelFileError)
    assert isinstance(info.value, ValueError)
    assert info.value.__cause__ is not None


def test_truncated_encoder_is_a_corrupt_model(
    tiny_model_files: dict[str, Path], tmp_path: Path
) -> None:
    data = tiny_model_files["encoder"].read_bytes()
    path = tmp_path / "truncated_encoder.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match="truncated"):
        ModelSession(path, ENCODER_CONTRACT, [CPU])


def test_empty_file_is_a_corrupt_model(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(CorruptModelError):
        ModelSession(path, DECODER_CONTRACT, [CPU])


# -- contract ---------------------------------------------------------------------------------


def test_encoder_given_as_decoder(tiny_model_files: dict[str, Path]) -> None:
    with pytest.raises(ModelContractError, match="is not an EdgeSAM decoder") as info:
        ModelSession(tiny_model_files["encoder"], DECODER_CONTRACT, [CPU])
    message = str(info.value)
    assert "this looks like an encoder file: swap encoder= and decoder=" in message
    assert "missing input 'point_coords'" in message
    assert "image: tensor(float) [1, 3, 1024, 1024]" in message
    assert isinstance(info.value, ModelFileError)


@pytest.mark.parametrize("which", ["decoder", "full_decoder"])
def test_decoder_given_as_encoder(tiny_model_files: dict[str, Path], which: str) -> None:
    with pytest.raises(ModelContractError, match="is not an EdgeSAM encoder") as info:
        ModelSession(tiny_model_files[which], ENCODER_CONTRACT, [CPU])
    message = str(info.value)
    assert "this looks like a decoder file: swap encoder= and decoder=" in message
    assert "missing input 'image'" in message


def test_encoder_with_another_input_name(tmp_path: Path) -> None:
    path = build_encoder(tmp_path / "renamed.onnx", input_name="input")
    with pytest.raises(ModelContractError) as info:
        ModelSession(path, ENCODER_CONTRACT, [CPU])
    message = str(info.value)
    assert "missing input 'image'" in message
    assert "unexpected inputs ['input']" in message
    assert "swap" not in message


def test_encoder_with_double_input(tmp_path: Path) -> None:
    path = _save_model(
        tmp_path / "double.onnx",
        [("image", TensorProto.DOUBLE, [1, 3, 1024, 1024])],
        [("image_embeddings", [1, 3, 1024, 1024])],
        [helper.make_node("Cast", ["image"], ["image_embeddings"], to=TensorProto.FLOAT)],
    )
    with pytest.raises(ModelContractError, match=r"input 'image' is tensor\(double\) of rank 4"):
        ModelSession(path, ENCODER_CONTRACT, [CPU])


def test_encoder_of_wrong_rank(tmp_path: Path) -> None:
    path = _save_model(
        tmp_path / "rank3.onnx",
        [("image", TensorProto.FLOAT, [3, 1024, 1024])],
        [("image_embeddings", [3, 1024, 1024])],
        [helper.make_node("Identity", ["image"], ["image_embeddings"])],
    )
    with pytest.raises(ModelContractError) as info:
        ModelSession(path, ENCODER_CONTRACT, [CPU])
    message = str(info.value)
    assert "input 'image' is tensor(float) of rank 3, expected tensor(float) of rank 4" in message
    assert "output 'image_embeddings' is tensor(float) of rank 3" in message


def test_encoder_with_an_extra_input(tmp_path: Path) -> None:
    path = _save_model(
        tmp_path / "extra.onnx",
        [("image", TensorProto.FLOAT, [1, 3, 8, 8]), ("gain", TensorProto.FLOAT, [1])],
        [("image_embeddings", [1, 3, 8, 8])],
        [helper.make_node("Mul", ["image", "gain"], ["image_embeddings"])],
    )
    with pytest.raises(ModelContractError, match=r"unexpected inputs \['gain'\]"):
        ModelSession(path, ENCODER_CONTRACT, [CPU])


def test_decoder_with_half_of_the_optional_inputs(tmp_path: Path) -> None:
    path = _save_model(
        tmp_path / "half_mask.onnx",
        [
            ("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64]),
            ("point_coords", TensorProto.FLOAT, [1, "n", 2]),
            ("point_labels", TensorProto.FLOAT, [1, "n"]),
            ("mask_input", TensorProto.FLOAT, [1, 1, 256, 256]),
        ],
        [("scores", [1, "n"]), ("masks", [1, 1, 256, 256])],
        [
            helper.make_node("Identity", ["point_labels"], ["scores"]),
            helper.make_node("Identity", ["mask_input"], ["masks"]),
        ],
    )
    with pytest.raises(ModelContractError, match="missing input 'has_mask_input'"):
        ModelSession(path, DECODER_CONTRACT, [CPU])


def test_decoder_missing_an_output(tmp_path: Path) -> None:
    path = _save_model(
        tmp_path / "no_scores.onnx",
        [
            ("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64]),
            ("point_coords", TensorProto.FLOAT, [1, "n", 2]),
            ("point_labels", TensorProto.FLOAT, [1, "n"]),
        ],
        [("masks", [1, 256, 64, 64])],
        [helper.make_node("Identity", ["image_embeddings"], ["masks"])],
    )
    with pytest.raises(ModelContractError, match="missing output 'scores'"):
        ModelSession(path, DECODER_CONTRACT, [CPU])


# -- fallback at creation ---------------------------------------------------------------------


def _patch_sessions(
    monkeypatch: pytest.MonkeyPatch, on_accelerator: Callable[[str, Any], Any]
) -> list[list[str]]:
    """Replace InferenceSession; requests naming CUDA go to ``on_accelerator``."""
    calls: list[list[str]] = []

    def factory(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        names = _names(providers)
        calls.append(names)
        if CUDA in names:
            return on_accelerator(path, sess_options)
        return REAL_SESSION(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(edgesam._session.ort, "InferenceSession", factory)
    return calls


def _cuda_library_missing(path: str, sess_options: Any) -> Any:
    raise RuntimeError("Failed to load library libonnxruntime_providers_cuda.so: libcublasLt.so.12")


def test_creation_failure_falls_back_to_cpu(
    tiny_model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = _patch_sessions(monkeypatch, _cuda_library_missing)
    with caplog.at_level(logging.WARNING, logger="edgesam._session"):
        session = ModelSession(
            tiny_model_files["encoder"], ENCODER_CONTRACT, [(CUDA, {"device_id": 0}), CPU]
        )
    assert calls == [[CUDA, CPU], [CPU]]
    assert session.providers == [CPU]
    warnings = _session_warnings(caplog)
    assert len(warnings) == 1
    assert "falling back to CPU" in warnings[0]
    assert "libcublasLt" in warnings[0]
    image = _image_input(1)
    np.testing.assert_allclose(
        session.run({"image": image})[0], expected_embedding(image), rtol=0, atol=1e-5
    )


def test_creation_fallback_through_from_files(
    tiny_model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("EDGESAM_PROVIDERS", raising=False)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, CPU])
    calls = _patch_sessions(monkeypatch, _cuda_library_missing)
    with caplog.at_level(logging.WARNING, logger="edgesam._session"):
        model = EdgeSam.from_files(
            tiny_model_files["encoder"], tiny_model_files["decoder"], providers=["cuda"]
        )
    assert calls == [[CUDA, CPU], [CPU], [CUDA, CPU], [CPU]]
    assert model.providers == {"encoder": [CPU], "decoder": [CPU]}
    assert len(_session_warnings(caplog)) == 2  # one per session


def test_provider_silently_dropped_by_onnxruntime_is_reported(
    tiny_model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def gives_cpu(path: str, sess_options: Any) -> Any:
        return REAL_SESSION(path, sess_options=sess_options, providers=[CPU])

    _patch_sessions(monkeypatch, gives_cpu)
    with caplog.at_level(logging.WARNING, logger="edgesam._session"):
        session = ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CUDA, CPU])
    assert session.providers == [CPU]
    warnings = _session_warnings(caplog)
    assert len(warnings) == 1
    assert f"asked for {CUDA} but onnxruntime gave it ['{CPU}']" in warnings[0]


def test_corrupt_file_on_cpu_alone_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "random.onnx"
    path.write_bytes(b"\x00not an onnx file")
    calls = _patch_sessions(monkeypatch, _cuda_library_missing)
    with pytest.raises(CorruptModelError):
        ModelSession(path, ENCODER_CONTRACT, [CPU])
    assert calls == [[CPU]]


# -- fallback at run time ---------------------------------------------------------------------


class FlakyAccelerator:
    """A session that claims CUDA and fails every run, like a cuDNN mismatch."""

    instances: ClassVar[list[FlakyAccelerator]] = []

    def __init__(self, path: str, sess_options: Any) -> None:
        self._session = REAL_SESSION(path, sess_options=sess_options, providers=[CPU])
        self.runs = 0
        FlakyAccelerator.instances.append(self)

    def get_providers(self) -> list[str]:
        return [CUDA, CPU]

    def get_inputs(self) -> Any:
        return self._session.get_inputs()

    def get_outputs(self) -> Any:
        return self._session.get_outputs()

    def run(self, output_names: Any, feeds: Any, run_options: Any = None) -> Any:
        self.runs += 1
        raise RuntimeError("CUDNN_STATUS_EXECUTION_FAILED")

    # On CUDA, edgesam runs through IO binding (the embedding stays on the device).
    def io_binding(self) -> Any:
        return self._session.io_binding()

    def run_with_iobinding(self, binding: Any, run_options: Any = None) -> Any:
        self.runs += 1
        raise RuntimeError("CUDNN_STATUS_EXECUTION_FAILED")


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    FlakyAccelerator.instances = []
    return _patch_sessions(monkeypatch, FlakyAccelerator)


def test_run_failure_rebuilds_on_cpu_once(
    tiny_model_files: dict[str, Path],
    flaky: list[list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CUDA, CPU])
    assert session.providers == [CUDA, CPU]
    image = _image_input(2)
    with caplog.at_level(logging.WARNING, logger="edgesam._session"):
        (embedding,) = session.run({"image": image})
    np.testing.assert_allclose(embedding, expected_embedding(image), rtol=0, atol=1e-5)
    assert session.providers == [CPU]
    assert flaky == [[CUDA, CPU], [CPU]]
    assert FlakyAccelerator.instances[0].runs == 1
    warnings = _session_warnings(caplog)
    assert len(warnings) == 1
    assert "rebuilding it on CPU" in warnings[0]
    assert "CUDNN_STATUS_EXECUTION_FAILED" in warnings[0]
    assert CUDA in warnings[0]
    # Later runs stay on CPU: no second rebuild, no further warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edgesam._session"):
        session.run({"image": image})
    assert flaky == [[CUDA, CPU], [CPU]]
    assert _session_warnings(caplog) == []


def test_run_failure_in_decoder_falls_back_too(
    tiny_model_files: dict[str, Path], flaky: list[list[str]]
) -> None:
    session = ModelSession(tiny_model_files["decoder"], DECODER_CONTRACT, [CUDA, CPU])
    feeds = {
        "image_embeddings": np.zeros((1, 256, 64, 64), dtype=np.float32),
        "point_coords": np.array([[[512.0, 256.0], [0.0, 0.0]]], dtype=np.float32),
        "point_labels": np.array([[1.0, -1.0]], dtype=np.float32),
    }
    outputs = dict(zip(session.output_names, session.run(feeds), strict=True))
    scores, masks = outputs["scores"], outputs["masks"]
    # The tiny decoder's scores: [count, sum of labels, sum of x, mean embedding].
    np.testing.assert_allclose(scores, [[2.0, 0.0, 512.0, 0.0]], atol=1e-6)
    assert masks.shape == (1, 4, 256, 256)
    assert session.providers == [CPU]


def test_failure_on_cpu_is_an_inference_error(tiny_model_files: dict[str, Path]) -> None:
    session = ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU])
    with pytest.raises(InferenceError, match="the encoder failed on CPU") as info:
        session.run({"image": np.zeros((1, 3, 10, 10), dtype=np.float32)})
    assert isinstance(info.value, RuntimeError)
    assert info.value.__cause__ is not None


class FailingCpu(FlakyAccelerator):
    """A CPU session that fails every run, like an out-of-memory kernel."""

    def get_providers(self) -> list[str]:
        return [CPU]


def test_failure_on_cpu_after_fallback_is_an_inference_error(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def factory(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        calls.append(_names(providers))
        return (FlakyAccelerator if CUDA in calls[-1] else FailingCpu)(path, sess_options)

    monkeypatch.setattr(edgesam._session.ort, "InferenceSession", factory)
    session = ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CUDA, CPU])
    with pytest.raises(InferenceError, match="failed on CPU too") as info:
        session.run({"image": _image_input()})
    assert calls == [[CUDA, CPU], [CPU]]
    assert info.value.__cause__ is not None


# -- inputs that any provider refuses ----------------------------------------------------------


def _bad_encoder_feeds() -> list[dict[str, Any]]:
    return [
        {"image": np.zeros((1, 3, 1024, 1024), dtype=np.float64)},  # dtype
        {"image": np.zeros((1, 3, 10, 10), dtype=np.float32)},  # size
        {"image": np.zeros((3, 1024, 1024), dtype=np.float32)},  # rank
        {"picture": np.zeros((1, 3, 1024, 1024), dtype=np.float32)},  # name
    ]


class HealthyAccelerator(FlakyAccelerator):
    """A session that claims CUDA and runs correctly (on CPU, through IO binding)."""

    def run(self, output_names: Any, feeds: Any, run_options: Any = None) -> Any:
        self.runs += 1
        return self._session.run(output_names, feeds, run_options)

    def run_with_iobinding(self, binding: Any, run_options: Any = None) -> Any:
        self.runs += 1
        return self._session.run_with_iobinding(binding, run_options)


@pytest.mark.parametrize("feeds", _bad_encoder_feeds())
def test_refused_inputs_keep_the_accelerator(
    tiny_model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    feeds: dict[str, Any],
) -> None:
    # On CUDA edgesam runs through IO binding, which reports a refused input as a
    # plain RuntimeError: it must not pass for a provider failure.
    HealthyAccelerator.instances = []
    calls = _patch_sessions(monkeypatch, HealthyAccelerator)
    session = ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CUDA, CPU])
    with (
        caplog.at_level(logging.WARNING, logger="edgesam._session"),
        pytest.raises(InferenceError, match="refused its inputs on CUDAExecutionProvider") as info,
    ):
        session.run(feeds)
    assert "not retried on CPU" in str(info.value)
    assert session.providers == [CUDA, CPU]
    assert calls == [[CUDA, CPU]]
    assert _session_warnings(caplog) == []
    image = _image_input(3)
    np.testing.assert_allclose(
        session.run({"image": image})[0], expected_embedding(image), rtol=0, atol=1e-5
    )
    assert calls == [[CUDA, CPU]]


@pytest.mark.skipif(
    "AzureExecutionProvider" not in onnxruntime.get_available_providers(),
    reason="needs an onnxruntime build with AzureExecutionProvider (the stock CPU wheel)",
)
@pytest.mark.parametrize("feeds", _bad_encoder_feeds())
def test_refused_inputs_keep_a_real_accelerator_session(
    tiny_model_files: dict[str, Path], feeds: dict[str, Any]
) -> None:
    # Without IO binding onnxruntime reports these as INVALID_ARGUMENT or ValueError.
    azure = "AzureExecutionProvider"
    session = ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [azure, CPU])
    assert session.providers == [azure, CPU]
    with pytest.raises(InferenceError, match=f"refused its inputs on {azure}"):
        session.run(feeds)
    assert session.providers == [azure, CPU]


# -- session_options ---------------------------------------------------------------------------


@pytest.mark.parametrize("options", ["fast", {"intra_op_num_threads": 1}, 4])
def test_session_options_of_the_wrong_type(
    tiny_model_files: dict[str, Path], options: object
) -> None:
    with pytest.raises(InvalidInputError, match="session_options must be an onnxruntime") as info:
        ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU], options)
    assert "edgesam.default_session_options()" in str(info.value)
    assert type(options).__name__ in str(info.value)
    assert not isinstance(info.value, ModelFileError)


def test_optimized_model_filepath_in_a_missing_folder(
    tiny_model_files: dict[str, Path], tmp_path: Path
) -> None:
    options = default_session_options()
    options.optimized_model_filepath = str(tmp_path / "missing" / "optimized.onnx")
    with pytest.raises(InvalidInputError, match="optimized_model_filepath") as info:
        ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU], options)
    assert "create the folder" in str(info.value)
    assert not isinstance(info.value, ModelFileError)


def test_session_options_onnxruntime_refuses_do_not_blame_the_file(
    tiny_model_files: dict[str, Path], tmp_path: Path
) -> None:
    options = default_session_options()
    options.optimized_model_filepath = str(tmp_path)  # a folder: onnxruntime cannot write it
    with pytest.raises(InvalidInputError, match="check session_options") as info:
        ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CPU], options)
    assert "loads with edgesam's own" in str(info.value)
    assert not isinstance(info.value, ModelFileError)
    assert info.value.__cause__ is not None


def test_corrupt_file_with_session_options_is_still_a_corrupt_model(tmp_path: Path) -> None:
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CorruptModelError, match="could not be loaded as an ONNX model"):
        ModelSession(path, ENCODER_CONTRACT, [CPU], default_session_options())


def test_cuda_sessions_get_the_default_provider_options(
    tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What onnxruntime is asked for; the CUDA request itself fails (no GPU here).
    requested: list[Any] = []

    def factory(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        requested.append(providers)
        if CUDA in _names(providers):
            raise RuntimeError("no CUDA in this test")
        return REAL_SESSION(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(edgesam._session.ort, "InferenceSession", factory)
    ModelSession(tiny_model_files["encoder"], ENCODER_CONTRACT, [CUDA, CPU])
    ModelSession(
        tiny_model_files["encoder"],
        ENCODER_CONTRACT,
        [(CUDA, {"cudnn_conv_algo_search": "DEFAULT", "device_id": 0}), CPU],
    )
    assert requested == [
        [(CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}), CPU],
        [CPU],
        [(CUDA, {"cudnn_conv_algo_search": "DEFAULT", "device_id": 0}), CPU],
        [CPU],
    ]


# -- physical_cores: the thread count of default_session_options ----------------------


def _topology(root: Path, siblings: dict[int, str], name: str = "core_cpus_list") -> Path:
    """A fake /sys/devices/system/cpu: for each CPU, the list of its core's CPUs."""
    for cpu, core in siblings.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / name).write_text(core + "\n")
    return root


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)


@pytest.mark.usefixtures("four_cpus")
def test_hyperthreads_of_one_core_count_once(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert physical_cores(sysfs) == 2


@pytest.mark.usefixtures("four_cpus")
def test_one_cpu_per_core(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0", 1: "1", 2: "2", 3: "3"})
    assert physical_cores(sysfs) == 4


@pytest.mark.usefixtures("four_cpus")
def test_older_kernels_name_the_siblings_file_differently(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0-1", 1: "0-1", 2: "2-3", 3: "2-3"}, "thread_siblings_list")
    assert physical_cores(sysfs) == 2


def test_only_the_cpus_in_the_affinity_mask_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # taskset -c 0,2 on a 2-core, 4-thread machine: both CPUs are one core's threads.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2}, raising=False)
    sysfs = _topology(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert physical_cores(sysfs) == 1


@pytest.mark.usefixtures("four_cpus")
def test_unreadable_topology_leaves_the_choice_to_onnxruntime(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0", 1: "1", 2: "2"})  # cpu3 has no topology
    assert physical_cores(sysfs) == 0
    assert physical_cores(tmp_path / "missing") == 0


def test_no_affinity_api_leaves_the_choice_to_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS and Windows have no sched_getaffinity.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert physical_cores() == 0


@pytest.mark.skipif(not Path("/sys/devices/system/cpu/cpu0/topology").is_dir(), reason="no sysfs")
def test_this_machine_has_at_least_one_core_and_no_more_than_its_cpus() -> None:
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))
