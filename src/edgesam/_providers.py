"""Which onnxruntime execution providers to use, in which order.

Precedence: the ``providers=`` argument, then ``EDGESAM_PROVIDERS``, then the
automatic choice: those of CUDA, CoreML and DirectML that this onnxruntime
build offers, in that order of preference, followed by CPU. TensorRT, OpenVINO
and ROCm are used only when asked for, because their first-run compilation or
numerics are not what most users expect. CPU is always
kept last as the fallback that ``_session`` retreats to.

CPU is appended behind providers that this build offers; it does not stand in
for them. A request none of whose providers is available (``["cuda"]`` on a
CPU-only build) is a :class:`ProviderError`: running on CPU instead would hide
a broken install (usually the wrong onnxruntime package). Listing ``"cpu"`` too
(``["cuda", "cpu"]``) accepts CPU, with a warning.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import onnxruntime as ort

from edgesam._config import ENV_PROVIDERS, providers_from_env
from edgesam.errors import ProviderError

__all__ = [
    "AUTO_ORDER",
    "CPU",
    "DEFAULT_PROVIDER_OPTIONS",
    "ProviderSpec",
    "available_providers",
    "provider_name",
    "resolve_providers",
    "warn_if_shadowed",
    "with_default_options",
]

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
AUTO_ORDER = (CUDA, "CoreMLExecutionProvider", "DmlExecutionProvider", CPU)

ProviderSpec = str | tuple[str, Mapping[str, Any]]

# onnxruntime's CUDA default, EXHAUSTIVE, benchmarks cuDNN's algorithms again whenever
# an input's shape changes: on an H100 the decoder's first run after going from one
# prompt to a batch of 8, or back, took about 50 ms instead of 3-5 ms. HEURISTIC picks
# at once, and ran the encoder and decoder as fast (docs/performance.md, CUDA).
DEFAULT_PROVIDER_OPTIONS: Mapping[str, Mapping[str, str]] = {
    CUDA: {"cudnn_conv_algo_search": "HEURISTIC"},
}

_ALIASES = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}

_RUNTIME_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-openvino",
    "onnxruntime-silicon",
    "onnxruntime-qnn",
)


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build offers."""
    return list(ort.get_available_providers())


def provider_name(spec: ProviderSpec) -> str:
    """The canonical onnxruntime name of a provider given by alias or full name.

    Raises
    ------
    ProviderError
        For an unknown name, or a tuple that is not a ``(name, dict)`` pair.
    """
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[1], Mapping):
            raise ProviderError(
                "a provider with options must be a (name, dict) pair such as "
                f"('cuda', {{'device_id': 0}}): got {spec!r}. Pass the bare name when there "
                "are no options"
            )
        name: object = spec[0]
    else:
        name = spec
    if not isinstance(name, str) or not name:
        raise ProviderError(
            f"a provider must be a name such as 'cuda' or 'CPUExecutionProvider': got {name!r}"
        )
    canonical = _ALIASES.get(name.strip().lower(), name.strip())
    known = set(_ALIASES.values()) | set(ort.get_all_providers())
    if canonical not in known:
        raise ProviderError(
            f"unknown execution provider {name!r}; use one of {sorted(_ALIASES)} or a full "
            f"onnxruntime name such as {AUTO_ORDER[0]!r}"
        )
    return canonical


def _with_name(spec: ProviderSpec, name: str) -> ProviderSpec:
    return (name, dict(spec[1])) if isinstance(spec, tuple) else name


def with_default_options(spec: ProviderSpec) -> ProviderSpec:
    """``spec`` with edgesam's :data:`DEFAULT_PROVIDER_OPTIONS` beneath the caller's own.

    An option the caller gives always wins; providers without defaults are
    returned unchanged.
    """
    name = provider_name(spec)
    defaults = DEFAULT_PROVIDER_OPTIONS.get(name)
    if not defaults:
        return spec
    given = dict(spec[1]) if isinstance(spec, tuple) else {}
    return (name, {**defaults, **given})


def resolve_providers(requested: Sequence[ProviderSpec] | None = None) -> list[ProviderSpec]:
    """Return the providers to create sessions with, best first, CPU last.

    Parameters
    ----------
    requested : sequence of str or (str, dict), optional
        Providers by alias (``"cuda"``) or full name, optionally with
        provider options as in onnxruntime. None means ``EDGESAM_PROVIDERS``,
        or automatic selection when that is unset too.

    Raises
    ------
    ProviderError
        For an unknown name, an entry that is neither a name nor a
        ``(name, dict)`` pair, or when none of the requested providers is
        available in this onnxruntime build.
    """
    warn_if_shadowed()
    available = available_providers()
    source = "providers="
    if requested is None:
        requested = providers_from_env()
        source = ENV_PROVIDERS
    if requested is None:
        chosen: list[ProviderSpec] = [name for name in AUTO_ORDER if name in available]
        return chosen if chosen else [CPU]
    if isinstance(requested, str) or (
        isinstance(requested, tuple)
        and len(requested) == 2
        and isinstance(requested[0], str)
        and isinstance(requested[1], Mapping)
    ):
        requested = [requested]
    if not isinstance(requested, Sequence):
        raise ProviderError(
            f"{source} must be a list of providers, best first, such as ['cuda', 'cpu']: got "
            f"{type(requested).__name__}"
        )
    chosen = []
    for spec in requested:
        name = provider_name(spec)
        if name not in available:
            logger.warning(
                "%s asks for %s, which this onnxruntime build does not offer (available: %s); "
                "skipping it. Install the matching onnxruntime package (e.g. onnxruntime-gpu "
                "for CUDA) to use it.",
                source,
                name,
                ", ".join(available),
            )
            continue
        if all(provider_name(other) != name for other in chosen):
            chosen.append(_with_name(spec, name))
    if not chosen:
        raise ProviderError(
            f"none of the execution providers in {source} ({list(requested)!r}) is available; "
            f"this onnxruntime offers {available}. Ask for one of those (add 'cpu' to run on "
            "CPU when the others are missing), or leave providers unset for automatic selection"
        )
    if all(provider_name(spec) != CPU for spec in chosen):
        chosen.append(CPU)
    return chosen


@lru_cache(maxsize=1)
def warn_if_shadowed() -> None:
    """Log a warning once if several onnxruntime distributions are installed."""
    installed = []
    for dist in _RUNTIME_DISTRIBUTIONS:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        installed.append(dist)
    if len(installed) > 1:
        logger.warning(
            "several onnxruntime packages are installed (%s); they share the 'onnxruntime' "
            "module and shadow each other, so the providers you get depend on install order. "
            "Keep one: e.g. pip uninstall %s",
            ", ".join(installed),
            " ".join(name for name in installed if name != "onnxruntime-gpu")
            if "onnxruntime-gpu" in installed
            else " ".join(installed[1:]),
        )
