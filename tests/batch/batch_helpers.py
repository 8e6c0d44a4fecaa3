"""Shared helpers of the batch tests: images on disk, the CLI as a subprocess, reading output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edgesam.batch import iter_rows


def write_images(folder: Path, count: int, size: tuple[int, int] = (48, 64)) -> list[Path]:
    """``count`` distinct small PNGs (a bright square at a different place in each)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    for index in range(count):
        image = rng.integers(0, 60, size=(*size, 3), dtype=np.uint8)
        y, x = index % (size[0] - 8), (index * 3) % (size[1] - 8)
        image[y : y + 8, x : x + 8] = 230
        path = folder / f"img{index:04d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesam.cli", "batch", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def rows_by_name(output: Path) -> dict[str, dict[str, Any]]:
    """Output rows keyed by ``path``; fails on a duplicate."""
    rows: dict[str, dict[str, Any]] = {}
    for row in iter_rows(output):
        name = row.get("path") or row.get("uri")
        assert name not in rows, f"{name} appears twice in {output}"
        rows[name] = row
    return rows


def model_args(files: dict[str, Path]) -> list[str | Path]:
    return ["--encoder", files["encoder"], "--decoder", files["decoder"]]
