"""The machine, the versions, and where the reference files are."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

__all__ = [
    "REPO_ROOT",
    "RESULTS_DIR",
    "find_reference_dir",
    "machine_info",
    "versions",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def find_reference_dir(configured: str | None = None) -> Path | None:
    """``--reference``, else ``EDGESAM_REFERENCE_DIR``, else ``../shared/reference``."""
    candidates = [configured, os.environ.get("EDGESAM_REFERENCE_DIR")]
    for candidate in [*candidates, str(REPO_ROOT.parent / "shared" / "reference")]:
        if candidate and (Path(candidate) / "onnx").is_dir():
            return Path(candidate)
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    physical, core = "0", None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
            cores.add((physical, core))
    return len(cores) or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _cpu_flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "fma", "f16c", "amx_tile")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [flag for flag in wanted if flag in flags]
    except OSError:
        pass
    return []


def machine_info() -> dict[str, object]:
    """CPU model, core counts, memory, OS, and the onnxruntime providers on offer."""
    import onnxruntime as ort

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "usable_cpus": affinity,
        "cpu_flags": _cpu_flags(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "providers_available": list(ort.get_available_providers()),
        "gpu": "no CUDA GPU found"
        if "CUDAExecutionProvider" not in ort.get_available_providers()
        else "CUDA provider available",
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Python and the libraries the numbers depend on (torch is never imported)."""
    import numpy as np
    import onnxruntime

    import edgesam

    blas = "unknown"
    try:
        config = np.show_config(mode="dicts")
        if isinstance(config, dict):
            blas_info = config.get("Build Dependencies", {}).get("blas", {})
            blas = f"{blas_info.get('name', '?')} {blas_info.get('version', '')}".strip()
    except (TypeError, ValueError, AttributeError):
        pass
    return {
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "numpy": np.__version__,
        "numpy_blas": blas,
        # the imported module's own version: with several onnxruntime packages
        # installed, package metadata may name one that is not the one imported
        "onnxruntime": onnxruntime.__version__,
        "pillow": _version("pillow"),
        "edgesam": edgesam.__version__,
        "onnx": _version("onnx"),
        "torch": _version("torch"),
    }
