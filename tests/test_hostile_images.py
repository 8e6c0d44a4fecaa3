"""Crafted image files and damaged PIL images: InvalidImageError, never a raw Pillow error.

Crafted files are read in a child process limited in time and memory
(``sandbox.run_limited``); the CLI is run as a user would run it.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from edgesam._image import load_rgb
from edgesam.errors import InvalidImageError
from sandbox import SRC, run_limited

BAD_EXIF = b"garbage-not-a-tiff-header"


def _png_with_exif(path: Path, exif: bytes, image_format: str = "PNG") -> Path:
    image = Image.fromarray(np.full((40, 60, 3), 90, dtype=np.uint8))
    image.save(path, format=image_format, exif=exif)
    return path


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width x height`` RGB pixels but holds almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (min(width, 20000) * 3 + 1) * 4)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


def _load_in_child(path: Path, memory: int = 1024 * 1024 * 1024) -> str:
    return run_limited(
        f"""
        from edgesam._image import load_rgb
        _report(lambda: load_rgb({str(path)!r}))
        """,
        seconds=60,
        memory_bytes=memory,
    )


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_malformed_exif_is_an_invalid_image_naming_the_file(
    tmp_path: Path, image_format: str
) -> None:
    path = _png_with_exif(tmp_path / f"bad.{image_format.lower()}", BAD_EXIF, image_format)
    result = _load_in_child(path)
    assert result.startswith("RAISED InvalidImageError"), result
    assert path.name in result


def test_a_valid_file_loads_in_the_child(tmp_path: Path) -> None:
    path = _png_with_exif(tmp_path / "good.png", Image.Exif().tobytes())
    assert _load_in_child(path) == "OK"


def test_a_bomb_just_under_pillows_hard_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    # 13000 x 13000 = 169 M pixels: over MAX_IMAGE_PIXELS (89 M), under Pillow's error
    # threshold (2x). Decoding it would need 507 MB; the child has less to spend.
    path = _png_declaring(tmp_path / "bomb.png", 13000, 13000)
    result = _load_in_child(path, memory=450 * 1024 * 1024)
    assert result.startswith("RAISED InvalidImageError"), result
    assert "13000x13000" in result


def test_a_header_of_impossible_size_is_an_invalid_image(tmp_path: Path) -> None:
    path = _png_declaring(tmp_path / "huge.png", 2**31 - 1, 2**31 - 1)
    result = _load_in_child(path)
    assert result.startswith("RAISED InvalidImageError"), result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = _load_in_child(fifo)
    assert result.startswith("RAISED InvalidImageError"), result


def test_a_lazily_opened_truncated_pil_image_is_an_invalid_image(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buffer, format="PNG"
    )
    cut = tmp_path / "cut.png"
    cut.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with Image.open(cut) as lazy, pytest.raises(InvalidImageError, match="truncated or damaged"):
        load_rgb(lazy)


@pytest.mark.parametrize(
    "error",
    [
        SyntaxError("not a TIFF file"),
        NotImplementedError("unsupported compression"),
        struct.error("unpack requires a buffer"),
        OSError("broken data stream"),
        ValueError("tile cannot extend outside image"),
        EOFError(),
        IndexError("list index out of range"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_any_pillow_failure_while_decoding_a_file_is_an_invalid_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    path = _png_with_exif(tmp_path / "photo.png", Image.Exif().tobytes())

    def fail(self: Image.Image) -> None:
        raise error

    monkeypatch.setattr(Image.Image, "load", fail)
    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    with pytest.raises(InvalidImageError, match=r"photo\.png") as caught:
        load_rgb(path)
    assert caught.value.__cause__ is error


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesam.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        timeout=300,
        check=False,
    )


def test_cli_segment_of_a_bad_image_exits_2_with_one_line(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    bad = _png_with_exif(tmp_path / "bad.png", BAD_EXIF)
    result = _cli(
        "segment",
        bad,
        "--point",
        "5,5,1",
        "--output",
        tmp_path / "m.png",
        "--encoder",
        tiny_model_files["encoder"],
        "--decoder",
        tiny_model_files["decoder"],
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.png" in lines[0]


def test_cli_everything_skips_a_bad_image_and_does_the_others(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _png_with_exif(inputs / "a.png", Image.Exif().tobytes())
    _png_with_exif(inputs / "b.png", BAD_EXIF)
    _png_with_exif(inputs / "c.png", Image.Exif().tobytes())
    result = _cli(
        "everything",
        inputs,
        "--output",
        tmp_path / "out",
        "--points-per-side",
        "4",
        "--quiet",
        "--encoder",
        tiny_model_files["encoder"],
        "--decoder",
        tiny_model_files["decoder"],
    )
    assert result.returncode == 0, result.stderr
    assert "2 segmented" in result.stdout
    assert "1 unreadable" in result.stdout
    assert "Traceback" not in result.stderr
