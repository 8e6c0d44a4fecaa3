"""Execution-provider resolution on simulated machines (onnxruntime's list is patched)."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterator

import onnxruntime
import pytest

from edgesam._providers import (
    AUTO_ORDER,
    CPU,
    available_providers,
    provider_name,
    resolve_providers,
    warn_if_shadowed,
    with_default_options,
)
from edgesam.errors import ProviderError

CUDA = "CUDAExecutionProvider"
COREML = "CoreMLExecutionProvider"
DML = "DmlExecutionProvider"
TRT = "TensorrtExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
ROCM = "ROCMExecutionProvider"
AZURE = "AzureExecutionProvider"

Machine = Callable[..., None]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESAM_PROVIDERS", raising=False)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Machine:
    """Pretend this onnxruntime build offers exactly the given providers."""

    def offer(*names: str) -> None:
        monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(names))

    return offer


@pytest.fixture
def fresh_shadow_check() -> Iterator[None]:
    warn_if_shadowed.cache_clear()
    yield
    warn_if_shadowed.cache_clear()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name == "edgesam._providers"
    ]


# -- what this build offers ------------------------------------------------------------------


def test_available_providers_reads_onnxruntime(machine: Machine) -> None:
    machine(CUDA, CPU)
    assert available_providers() == [CUDA, CPU]


def test_auto_order_constant() -> None:
    assert AUTO_ORDER == (CUDA, COREML, DML, CPU)


# -- automatic choice ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ((CPU,), [CPU]),
        ((AZURE, CPU), [CPU]),  # the stock CPU wheel
        ((CUDA, CPU), [CUDA, CPU]),
        ((COREML, CPU), [COREML, CPU]),
        ((DML, CPU), [DML, CPU]),
        ((TRT, CUDA, CPU), [CUDA, CPU]),  # TensorRT is never chosen automatically
        ((OPENVINO, CPU), [CPU]),  # nor OpenVINO
        ((ROCM, CPU), [CPU]),  # nor ROCm
        ((TRT, OPENVINO, CPU), [CPU]),
    ],
)
def test_automatic_choice(machine: Machine, offered: tuple[str, ...], expected: list[str]) -> None:
    machine(*offered)
    assert resolve_providers() == expected


def test_automatic_choice_prefers_cuda_then_coreml_then_directml(machine: Machine) -> None:
    # onnxruntime's own listing order must not matter.
    machine(CPU, DML, COREML, CUDA)
    chosen = resolve_providers()
    assert chosen[0] == CUDA
    assert chosen[-1] == CPU
    machine(CPU, DML, COREML)
    chosen = resolve_providers()
    assert chosen[0] == COREML
    assert chosen[-1] == CPU
    machine(CPU, DML)
    assert resolve_providers() == [DML, CPU]


# -- aliases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("cpu", CPU),
        ("CPU", CPU),
        ("cuda", CUDA),
        (" Cuda ", CUDA),
        ("coreml", COREML),
        ("CoreML", COREML),
        ("dml", DML),
        ("directml", DML),
        ("DirectML", DML),
        ("trt", TRT),
        ("tensorrt", TRT),
        ("openvino", OPENVINO),
        ("rocm", ROCM),
        (CUDA, CUDA),
        (CPU, CPU),
        ("DnnlExecutionProvider", "DnnlExecutionProvider"),  # known to onnxruntime, no alias
        (("cuda", {"device_id": 0}), CUDA),
    ],
)
def test_provider_name(alias: object, canonical: str) -> None:
    assert provider_name(alias) == canonical  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["gpu", "nvidia", "cudaexecutionprovider", "CUDA_EP"])
def test_unknown_provider_name(name: str) -> None:
    with pytest.raises(ProviderError, match="unknown execution provider") as info:
        provider_name(name)
    assert repr(name) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("spec", ["", 5, None, ("", {}), (3, {})])
def test_provider_that_is_not_a_name(spec: object) -> None:
    with pytest.raises(ProviderError, match="a provider must be a name"):
        provider_name(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec",
    [("cpu",), ("cpu", "bad"), ("cpu", None), ("cpu", {}, {}), ("cuda", ["device_id", 0])],
)
def test_provider_tuple_that_is_not_a_name_and_options(machine: Machine, spec: object) -> None:
    machine(CUDA, CPU)
    with pytest.raises(ProviderError, match=r"must be a \(name, dict\) pair") as info:
        resolve_providers([spec, "cpu"])  # type: ignore[list-item]
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize("requested", [5, {"cuda", "cpu"}, iter(["cpu"])])
def test_providers_that_are_not_a_sequence(machine: Machine, requested: object) -> None:
    machine(CPU)
    with pytest.raises(ProviderError, match="providers= must be a list of providers"):
        resolve_providers(requested)  # type: ignore[arg-type]


# -- explicit requests ---------------------------------------------------------------------


def test_aliases_resolve_and_cpu_is_appended_last(machine: Machine) -> None:
    machine(CUDA, CPU)
    assert resolve_providers(["cuda"]) == [CUDA, CPU]


def test_explicit_cpu_only(machine: Machine) -> None:
    machine(CUDA, CPU)
    assert resolve_providers(["cpu"]) == [CPU]


def test_single_string_request(machine: Machine) -> None:
    machine(DML, CPU)
    assert resolve_providers("dml") == [DML, CPU]  # type: ignore[arg-type]


def test_tensorrt_is_used_when_asked(machine: Machine) -> None:
    machine(TRT, CUDA, CPU)
    assert resolve_providers(["trt"]) == [TRT, CPU]
    assert resolve_providers(["tensorrt", "cuda"]) == [TRT, CUDA, CPU]


def test_openvino_is_used_when_asked(machine: Machine) -> None:
    machine(OPENVINO, CPU)
    assert resolve_providers(["openvino", "cpu"]) == [OPENVINO, CPU]


def test_requested_order_is_kept(machine: Machine) -> None:
    machine(CUDA, DML, CPU)
    assert resolve_providers(["dml", "cuda"]) == [DML, CUDA, CPU]


def test_duplicates_are_dropped(machine: Machine) -> None:
    machine(CUDA, CPU)
    assert resolve_providers(["cuda", CUDA, "cpu", "CPU"]) == [CUDA, CPU]


def test_provider_options_are_kept(machine: Machine) -> None:
    machine(CUDA, CPU)
    options = {"device_id": 1, "arena_extend_strategy": "kSameAsRequested"}
    chosen = resolve_providers([("cuda", options), "cpu"])
    assert chosen == [(CUDA, options), CPU]
    assert isinstance(chosen[0], tuple)
    assert chosen[0][1] is not options  # a copy: onnxruntime may not mutate the caller's dict


def test_single_spec_with_options(machine: Machine) -> None:
    machine(CUDA, CPU)
    assert resolve_providers(("cuda", {"device_id": 0})) == [(CUDA, {"device_id": 0}), CPU]  # type: ignore[arg-type]


def test_tuple_of_names_is_a_sequence_of_providers(machine: Machine) -> None:
    # providers is documented as a sequence of str or (str, dict): a tuple of names is
    # such a sequence, just as a list is.
    machine(CUDA, CPU)
    assert resolve_providers(("cuda", "cpu")) == [CUDA, CPU]
    assert resolve_providers(("cpu",)) == [CPU]


def test_tuple_of_names_when_the_first_is_unavailable(machine: Machine) -> None:
    machine(CPU)
    assert resolve_providers(("cuda", "cpu")) == [CPU]


def test_unavailable_provider_is_dropped_with_a_warning(
    machine: Machine, caplog: pytest.LogCaptureFixture
) -> None:
    machine(AZURE, CPU)
    with caplog.at_level(logging.WARNING, logger="edgesam._providers"):
        assert resolve_providers(["cuda", "cpu"]) == [CPU]
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert CUDA in messages[0]
    assert "providers=" in messages[0]
    assert "onnxruntime-gpu" in messages[0]


def test_nothing_requested_is_available(machine: Machine, caplog: pytest.LogCaptureFixture) -> None:
    machine(CPU)
    with (
        caplog.at_level(logging.WARNING, logger="edgesam._providers"),
        pytest.raises(ProviderError, match="none of the execution providers") as info,
    ):
        resolve_providers(["cuda", "coreml"])
    assert "CPUExecutionProvider" in str(info.value)
    assert "add 'cpu'" in str(info.value)
    assert len(_warnings(caplog)) == 2


def test_cpu_is_appended_only_behind_an_available_provider(machine: Machine) -> None:
    # An accelerator this build lacks is not silently replaced by CPU; naming CPU
    # too accepts it.
    machine(AZURE, CPU)
    with pytest.raises(ProviderError, match="none of the execution providers"):
        resolve_providers(["cuda"])
    assert resolve_providers(["cuda", "cpu"]) == [CPU]
    assert resolve_providers([AZURE]) == [AZURE, CPU]


def test_empty_request_is_refused(machine: Machine) -> None:
    machine(CPU)
    with pytest.raises(ProviderError, match="none of the execution providers"):
        resolve_providers([])


def test_unknown_name_in_request(machine: Machine) -> None:
    machine(CUDA, CPU)
    with pytest.raises(ProviderError, match="'gpu'"):
        resolve_providers(["gpu", "cpu"])


# -- EDGESAM_PROVIDERS -----------------------------------------------------------------------


def test_environment_variable_is_used(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(CUDA, CPU)
    monkeypatch.setenv("EDGESAM_PROVIDERS", "cpu")
    assert resolve_providers() == [CPU]  # not the automatic CUDA
    monkeypatch.setenv("EDGESAM_PROVIDERS", " cuda , cpu ")
    assert resolve_providers() == [CUDA, CPU]


def test_argument_overrides_environment(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(CUDA, CPU)
    monkeypatch.setenv("EDGESAM_PROVIDERS", "cpu")
    assert resolve_providers(["cuda"]) == [CUDA, CPU]


def test_argument_overrides_a_broken_environment(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(CUDA, CPU)
    monkeypatch.setenv("EDGESAM_PROVIDERS", "cuda,,cpu")
    assert resolve_providers(["cpu"]) == [CPU]


def test_environment_unavailable_provider_is_dropped_with_a_warning(
    machine: Machine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    machine(CPU)
    monkeypatch.setenv("EDGESAM_PROVIDERS", "coreml,cpu")
    with caplog.at_level(logging.WARNING, logger="edgesam._providers"):
        assert resolve_providers() == [CPU]
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "EDGESAM_PROVIDERS" in messages[0]
    assert COREML in messages[0]


def test_environment_with_nothing_available(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(CPU)
    monkeypatch.setenv("EDGESAM_PROVIDERS", "cuda")
    with pytest.raises(ProviderError, match="EDGESAM_PROVIDERS"):
        resolve_providers()


def test_environment_with_an_empty_entry(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(CPU)
    monkeypatch.setenv("EDGESAM_PROVIDERS", "cuda,,cpu")
    with pytest.raises(ProviderError, match="empty entry"):
        resolve_providers()


def test_environment_with_an_unknown_name(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(CPU)
    monkeypatch.setenv("EDGESAM_PROVIDERS", "gpu")
    with pytest.raises(ProviderError, match="unknown execution provider 'gpu'"):
        resolve_providers()


# -- several onnxruntime distributions ------------------------------------------------------


def _installed(monkeypatch: pytest.MonkeyPatch, *names: str) -> list[str]:
    asked: list[str] = []
    real = importlib.metadata.distribution

    def distribution(name: str) -> importlib.metadata.Distribution:
        asked.append(name)
        if name in names:
            return real("pytest")  # any installed distribution object will do
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    return asked


@pytest.mark.usefixtures("fresh_shadow_check")
def test_shadowing_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _installed(monkeypatch, "onnxruntime", "onnxruntime-gpu")
    with caplog.at_level(logging.WARNING, logger="edgesam._providers"):
        warn_if_shadowed()
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "onnxruntime, onnxruntime-gpu" in messages[0]
    assert messages[0].endswith("pip uninstall onnxruntime")


@pytest.mark.usefixtures("fresh_shadow_check")
def test_shadowing_warning_without_gpu_package(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _installed(monkeypatch, "onnxruntime", "onnxruntime-directml", "onnxruntime-openvino")
    with caplog.at_level(logging.WARNING, logger="edgesam._providers"):
        warn_if_shadowed()
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "onnxruntime, onnxruntime-directml, onnxruntime-openvino" in messages[0]
    assert "pip uninstall" in messages[0]


@pytest.mark.usefixtures("fresh_shadow_check")
def test_shadowing_warning_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, machine: Machine
) -> None:
    asked = _installed(monkeypatch, "onnxruntime", "onnxruntime-gpu")
    machine(CPU)
    with caplog.at_level(logging.WARNING, logger="edgesam._providers"):
        resolve_providers()  # resolving checks for shadowing ...
        resolve_providers()
        warn_if_shadowed()
    assert len(_warnings(caplog)) == 1  # ... but warns only once
    assert "onnxruntime-gpu" in asked


@pytest.mark.usefixtures("fresh_shadow_check")
@pytest.mark.parametrize("installed", [("onnxruntime",), ("onnxruntime-gpu",), ()])
def test_one_distribution_is_not_shadowed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, installed: tuple[str, ...]
) -> None:
    _installed(monkeypatch, *installed)
    with caplog.at_level(logging.WARNING, logger="edgesam._providers"):
        warn_if_shadowed()
    assert _warnings(caplog) == []


# -- default provider options -------------------------------------------------------------


def test_cuda_gets_the_heuristic_cudnn_search_by_default() -> None:
    assert with_default_options("cuda") == (CUDA, {"cudnn_conv_algo_search": "HEURISTIC"})
    assert with_default_options(CUDA) == (CUDA, {"cudnn_conv_algo_search": "HEURISTIC"})


def test_caller_options_win_over_the_defaults() -> None:
    given = {"cudnn_conv_algo_search": "EXHAUSTIVE", "device_id": 1}
    spec = with_default_options(("cuda", given))
    assert spec == (CUDA, {"cudnn_conv_algo_search": "EXHAUSTIVE", "device_id": 1})
    assert spec[1] is not given
    assert with_default_options((CUDA, {"device_id": 1})) == (
        CUDA,
        {"cudnn_conv_algo_search": "HEURISTIC", "device_id": 1},
    )


@pytest.mark.parametrize("spec", [CPU, "cpu", COREML, DML, (TRT, {"device_id": 0})])
def test_providers_without_defaults_are_unchanged(spec: object) -> None:
    assert with_default_options(spec) is spec  # type: ignore[arg-type]
