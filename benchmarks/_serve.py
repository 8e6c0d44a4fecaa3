"""The ``serve`` section: ``edgesam serve`` on 127.0.0.1, latency percentiles and RSS.

Starts the server as a subprocess on the reference models and measures, from
HTTP clients on the same machine:

- embed, cache miss: distinct images one after another (encoder + upload);
- embed, cache hit: the same image again;
- decode, one client: one click, four masks with stability scores (the page's request);
- decode, 8 clients x 50: the same request from 8 threads at once;
- embed, 20 at once: 20 distinct images posted together;

and the server's RSS before and after the load.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks._report import Row

__all__ = ["serve_rows"]

_ROOT = Path(__file__).resolve().parents[1]
_MIB = 1 << 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / _MIB
    return float("nan")


@contextmanager
def _server(reference: Path, workers: int) -> Iterator[tuple[str, int]]:
    import httpx

    port = _free_port()
    onnx = reference / "onnx"
    env = {**os.environ, "PYTHONPATH": str(_ROOT / "src")}
    env.pop("EDGESAM_API_KEY", None)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgesam.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--queue",
                "64",
                "--encoder",
                str(onnx / "edge_sam_random_encoder.onnx"),
                "--decoder",
                str(onnx / "edge_sam_random_decoder.onnx"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"edgesam serve did not start: {log.read().decode()}")
                time.sleep(0.3)
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _png(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _timed(call: Callable[[], int]) -> float:
    start = time.perf_counter()
    status = call()
    if status != 200:
        raise RuntimeError(f"HTTP {status}")
    return (time.perf_counter() - start) * 1000


def _row(name: str, times: list[float], note: str = "") -> Row:
    p50, p99 = np.percentile(times, [50, 99])
    return Row(
        "serve",
        name,
        value=float(p50),
        note=f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, n={len(times)}" + (f"; {note}" if note else ""),
        details={"p50_ms": float(p50), "p99_ms": float(p99), "n": len(times)},
    )


def serve_rows(reference: Path, image: Path, quick: bool) -> list[Row]:
    """Rows of the ``serve`` section (needs the serve extra and httpx)."""
    try:
        import httpx
    except ImportError:
        return [Row("serve", "edgesam serve", status="not run", note="pip install httpx")]
    workers = 2
    misses = 4 if quick else 10
    clients, per_client = (8, 5) if quick else (8, 50)
    burst = 20
    photo = image.read_bytes()
    rows: list[Row] = []
    with _server(reference, workers) as (url, pid), httpx.Client(base_url=url, timeout=600) as api:
        rss_start = _rss(pid)
        miss_times = [
            _timed(lambda seed=seed: api.post("/v1/embed", content=_png(seed)).status_code)
            for seed in range(misses)
        ]
        embed = api.post("/v1/embed", content=photo).json()
        hit_times = [
            _timed(lambda: api.post("/v1/embed", content=photo).status_code) for _ in range(misses)
        ]
        height, width = embed["original_size"]
        rng = np.random.default_rng(0)

        def decode() -> int:
            body = {
                "image_id": embed["image_id"],
                "points": [[float(rng.uniform(0, width)), float(rng.uniform(0, height))]],
                "labels": [1],
                "num_multimask_outputs": 4,
                "use_stability_score": True,
            }
            return api.post("/v1/decode", json=body).status_code

        single = [_timed(decode) for _ in range(3 * misses)]
        rss_before = _rss(pid)
        with ThreadPoolExecutor(clients) as pool:
            started = time.perf_counter()
            loaded = list(pool.map(lambda _: _timed(decode), range(clients * per_client)))
            elapsed = time.perf_counter() - started
        rss_decodes = _rss(pid)
        with ThreadPoolExecutor(burst) as pool:
            images = [_png(1000 + seed) for seed in range(burst)]
            bursts = list(
                pool.map(
                    lambda data: _timed(lambda: api.post("/v1/embed", content=data).status_code),
                    images,
                )
            )
        rss_end = _rss(pid)
    size = f"{width}x{height} image ({image.name})"
    rows += [
        _row("embed, cache miss, 1 client", miss_times, "640x480 PNG upload + encoder"),
        _row("embed, cache hit, 1 client", hit_times, f"{len(photo) // 1024} KiB upload"),
        _row("decode, 1 client", single, f"one click, 4 masks as COCO RLE, {size}"),
        _row(
            f"decode, {clients} clients x {per_client}",
            loaded,
            f"{len(loaded) / elapsed:.1f} decodes/s with {workers} workers",
        ),
        _row(f"embed, {burst} at once", bursts, f"{workers} workers"),
        Row(
            "serve",
            "server RSS",
            unit="MiB",
            value=rss_end,
            note=f"start {rss_start:.0f}, before the decode load {rss_before:.0f}, after it "
            f"{rss_decodes:.0f}, after {burst} embeds {rss_end:.0f} MiB (cache: 512 MiB max)",
            details={
                "start": rss_start,
                "before_load": rss_before,
                "after_decodes": rss_decodes,
                "after_embeds": rss_end,
            },
        ),
    ]
    return rows
