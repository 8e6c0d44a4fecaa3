"""Fresh-process measurements: cold start, peak RSS, RSS growth over many images.

Each measurement runs :mod:`benchmarks._child` in a new interpreter. SDK and
bare children alternate, and the first pair is a warm-up (it pulls the model
files into the page cache), so both sides start from the same disk state.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._env import REPO_ROOT
from benchmarks._report import Row, Target
from benchmarks._timing import stats_of
from benchmarks._variants import ModelVariant

__all__ = ["cold_start_rows", "growth_rows"]

_MIB = 2**20


def _run_child(
    task: str, variant: ModelVariant, extra: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks._child",
        task,
        "--encoder",
        str(variant.encoder),
        "--decoder",
        str(variant.decoder),
        *extra,
    ]
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env or {}))
    start = time.perf_counter()
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(
            f"benchmark child {task!r} failed ({completed.returncode}):\n{completed.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def cold_start_rows(
    variant: ModelVariant, provider: str, provider_name: str, image: Path, pairs: int
) -> list[Row]:
    """Cold start (import to first mask) and peak RSS, SDK vs bare, ``pairs`` times each."""
    extra = ["--image", str(image), "--provider", provider, "--provider-name", provider_name]
    sdk: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for index in range(pairs + 1):  # pair 0 warms the page cache and is dropped
        first, second = ("cold-sdk", "cold-bare") if index % 2 else ("cold-bare", "cold-sdk")
        results = {name: _run_child(name, variant, extra) for name in (first, second)}
        if index:
            sdk.append(results["cold-sdk"])
            bare.append(results["cold-bare"])

    def series(runs: list[dict[str, Any]], key: str) -> list[float]:
        return [float(run[key]) for run in runs]

    def ratio(key: str) -> float:
        return statistics.median(
            top / bottom for top, bottom in zip(series(sdk, key), series(bare, key), strict=True)
        )

    def parts(runs: list[dict[str, Any]]) -> str:
        keys = ("import_s", "sessions_s", "set_image_s", "predict_s")
        return ", ".join(
            f"{key[:-2]} {statistics.median(series(runs, key)) * 1e3:.0f}" for key in keys
        )

    rows = [
        Row(
            "cold start",
            "import -> first mask (in process)",
            variant=variant.name,
            provider=provider,
            unit="s",
            value=statistics.median(series(sdk, "total_s")),
            baseline=statistics.median(series(bare, "total_s")),
            ratio=ratio("total_s"),
            target=Target("<=", 1.2),
            note=f"ms: SDK {parts(sdk)} | bare {parts(bare)}",
            details={"sdk": sdk, "bare": bare},
        ),
        Row(
            "cold start",
            "process wall (spawn -> exit)",
            variant=variant.name,
            provider=provider,
            unit="s",
            value=statistics.median(series(sdk, "process_wall_s")),
            baseline=statistics.median(series(bare, "process_wall_s")),
            ratio=ratio("process_wall_s"),
            note="includes interpreter start-up and exit",
        ),
        Row(
            "memory",
            "peak RSS, load + segment one image",
            variant=variant.name,
            provider=provider,
            unit="MiB",
            value=statistics.median(series(sdk, "peak_rss_bytes")) / _MIB,
            baseline=statistics.median(series(bare, "peak_rss_bytes")) / _MIB,
            ratio=ratio("peak_rss_bytes"),
            target=Target("<=", 1.15),
            note="VmHWM; bare = the cold-start script (low-res masks only)",
        ),
    ]
    return rows


def growth_rows(
    variant: ModelVariant, provider: str, sources: list[Path], calls: int, modes: list[str]
) -> list[Row]:
    """RSS over ``calls`` set_image calls on different images, per memory-arena mode."""
    rows: list[Row] = []
    for mode in modes:
        # "fixed-mmap": edgesam's defaults in a process whose glibc malloc keeps a fixed
        # mmap threshold (docs/performance.md, "Memory over a long session").
        env = {"MALLOC_MMAP_THRESHOLD_": "131072"} if mode == "fixed-mmap" else None
        extra = [
            "--provider",
            provider,
            "--calls",
            str(calls),
            "--arena",
            "edgesam" if mode == "fixed-mmap" else mode,
            "--sources",
            *map(str, sources),
        ]
        result = _run_child("growth", variant, extra, env)
        rss = [value / _MIB for value in result["rss_bytes"]]
        # Calls 6-15 (the arena and the allocator have settled) against the last 10:
        # medians, so that the size of one image at either end does not decide it.
        early = statistics.median(rss[5:15] or rss)
        late = statistics.median(rss[-10:])
        growth = (late - early) / early * 100.0
        times = stats_of(result["set_image_s"])
        rows.append(
            Row(
                "memory",
                f"RSS growth over {calls} set_image [{mode}]",
                variant=variant.name,
                provider=provider,
                unit="%",
                value=growth,
                target=Target("<=", 5.0) if mode == "edgesam" else None,
                note=(
                    f"median RSS calls 6-15 {early:.0f} MiB -> last 10 {late:.0f} MiB; "
                    f"first call {rss[0]:.0f}, max {max(rss):.0f}, peak "
                    f"{result['peak_rss_bytes'] / _MIB:.0f} MiB; "
                    f"set_image median {times.median * 1e3:.0f} ms"
                ),
                details={
                    "rss_mib": rss,
                    "set_image_s": times.as_dict(),
                    "rss_after_load_mib": result["rss_after_load_bytes"] / _MIB,
                    "peak_rss_mib": result["peak_rss_bytes"] / _MIB,
                },
            )
        )
    return rows
