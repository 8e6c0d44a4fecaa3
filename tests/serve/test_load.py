"""A bounded load test on 127.0.0.1: 8 concurrent decode clients, then 20 concurrent embeds.

Two identical rounds; no errors allowed, and the server's RSS during the second
round must stay where the first round left it (the cache is bounded). Each client
makes ``EDGESAM_LOAD_DECODES`` decodes per round (default 8; the issue's full
size is 50, which takes minutes on a small shared machine). Latency is not
asserted here: ``python -m benchmarks --sections serve`` prints it.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from .serve_helpers import serve_process

CLIENTS = 8
DECODES_PER_CLIENT = int(os.environ.get("EDGESAM_LOAD_DECODES", "8"))
EMBEDS = 20
MIB = 1 << 20


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (120 + seed % 7, 160, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_load(reference_dir: Path) -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("RSS is read from /proc (Linux)")
    image = (reference_dir / "images" / "groceries.jpg").read_bytes()
    # A cache of 4 embeddings: rounds of 20 distinct images keep evicting.
    options = ("--cache-mb", "16", "--queue", "64")
    with (
        serve_process(reference_dir, *options, log_name="load.log") as (url, process),
        httpx.Client(base_url=url, timeout=300) as client,
    ):

        def decodes(worker: int) -> list[int]:
            statuses = []
            rng = np.random.default_rng(worker)
            for _ in range(DECODES_PER_CLIENT):
                x, y = rng.uniform(0, 800), rng.uniform(0, 534)
                body = {
                    "image_id": image_id,
                    "points": [[x, y]],
                    "labels": [1],
                    "num_multimask_outputs": 4,
                    "use_stability_score": True,
                }
                statuses.append(client.post("/v1/decode", json=body).status_code)
            return statuses

        def embeds(round_: int) -> list[int]:
            with ThreadPoolExecutor(EMBEDS) as pool:
                answers = pool.map(
                    lambda seed: client.post("/v1/embed", content=_png(seed)),
                    range(round_ * EMBEDS, (round_ + 1) * EMBEDS),
                )
                return [answer.status_code for answer in answers]

        rss = {"start": _rss(process.pid)}
        for round_ in range(2):
            # Embedded again each round: the previous round's embeds evicted it.
            image_id = client.post("/v1/embed", content=image).json()["image_id"]
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = [s for batch in pool.map(decodes, range(CLIENTS)) for s in batch]
            assert statuses == [200] * CLIENTS * DECODES_PER_CLIENT
            rss[f"decodes {round_ + 1}"] = _rss(process.pid)
            assert embeds(round_) == [200] * EMBEDS
            rss[f"embeds {round_ + 1}"] = _rss(process.pid)
        health = client.get("/v1/health").json()
    print(
        "\nserver RSS (MiB): "
        + ", ".join(f"{name} {value / MIB:.0f}" for name, value in rss.items())
        + f"; cache {health['cache']}"
    )
    assert health["cache"]["images"] <= 4
    # The first round grows the arenas and the cache to their working size; the second,
    # the same work again, must not need more memory than that.
    assert max(rss["decodes 2"], rss["embeds 2"]) - rss["embeds 1"] < 64 * MIB
