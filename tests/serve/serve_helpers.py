"""Start ``edgesam serve`` as a subprocess for the browser and load tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_process(
    reference_dir: Path, *options: str, log_name: str = "server.log"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``edgesam serve`` on the reference models, on 127.0.0.1 and a free port."""
    import httpx

    port = free_port()
    onnx = reference_dir / "onnx"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    env.pop("EDGESAM_API_KEY", None)
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / log_name
    command = [
        sys.executable,
        "-m",
        "edgesam.cli",
        "serve",
        "--port",
        str(port),
        "--encoder",
        str(onnx / "edge_sam_random_encoder.onnx"),
        "--decoder",
        str(onnx / "edge_sam_random_decoder.onnx"),
        *options,
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=5).status_code in (200, 401):
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"edgesam serve did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
