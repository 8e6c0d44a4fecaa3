"""Crafted ``.npz`` embeddings: refused with InvalidEmbeddingError, in bounded time and memory.

Each file is loaded in a child process limited in time and address space
(``sandbox.run_limited``).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sandbox import run_limited

GOOD_META = {
    "format_version": 1,
    "original_size": [1200, 1800],
    "input_size": [683, 1024],
    "model_name": "m",
    "fingerprint": "f" * 64,
}


def _npy(header: str, data: bytes = b"") -> bytes:
    text = header.encode("latin1")
    padding = 64 - (10 + len(text) + 1) % 64
    text += b" " * padding + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def _array_npy(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def _good_embedding() -> bytes:
    return _array_npy(np.zeros((1, 256, 64, 64), dtype=np.float32))


def _meta(meta: object = GOOD_META) -> bytes:
    return _array_npy(np.array(json.dumps(meta)))


def _npz(path: Path, members: dict[str, bytes], *, deflate: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _load(path: Path, *, memory: int = 1024 * 1024 * 1024) -> str:
    return run_limited(
        f"""
        from edgesam import ImageEmbedding
        _report(lambda: ImageEmbedding.load({str(path)!r}))
        """,
        seconds=60,
        memory_bytes=memory,
    )


def test_a_valid_file_loads_in_the_sandbox(tmp_path: Path) -> None:
    path = _npz(tmp_path / "ok.npz", {"embedding.npy": _good_embedding(), "meta.npy": _meta()})
    assert _load(path) == "OK"


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (10000000000000,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 256, 64, 64 ",
        "{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 900 + ")" * 900 + ", }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1" + "0" * 3000 + ",), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 256, 64, 64), }",
        "{'descr': 'O', 'fortran_order': False, 'shape': (1, 256, 64, 64), }",
        "{'descr': [('a', '<f4')] * 5, 'fortran_order': False, 'shape': (1,), }",
        "\x00\xff garbage",
    ],
    ids=["huge-shape", "unclosed", "deep", "long-int", "negative", "object", "expr", "garbage"],
)
def test_malformed_npy_headers_are_refused(tmp_path: Path, header: str) -> None:
    members = {"embedding.npy": _npy(header, bytes(64)), "meta.npy": _meta()}
    result = _load(_npz(tmp_path / "bad.npz", members))
    assert result.startswith("RAISED InvalidEmbeddingError"), result


def test_a_deflated_gigantic_member_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    header = _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (16384, 16384), }")
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("embedding.npy", "w", force_zip64=True) as member,
    ):
        member.write(header)
        chunk = bytes(16 * 1024 * 1024)
        for _ in range(64):  # 1 GiB of zeros, about 1 MiB deflated
            member.write(chunk)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("meta.npy", _meta())
    result = _load(path, memory=600 * 1024 * 1024)
    assert result.startswith("RAISED InvalidEmbeddingError"), result
    assert "(16384, 16384)" in result


@pytest.mark.parametrize(
    "meta_text",
    ["[" * 1_000_000 + "]" * 1_000_000, '{"format_version": 1e999999}', "x" * 70_000],
    ids=["deep-json", "huge-number", "too-long"],
)
def test_malformed_metadata_is_refused(tmp_path: Path, meta_text: str) -> None:
    members = {"embedding.npy": _good_embedding(), "meta.npy": _array_npy(np.array(meta_text))}
    result = _load(_npz(tmp_path / "meta.npz", members, deflate=True))
    assert result.startswith("RAISED InvalidEmbeddingError"), result


@pytest.mark.parametrize(
    "meta",
    [
        {**GOOD_META, "original_size": [1e309, 5]},
        {**GOOD_META, "original_size": "ab"},
        {**GOOD_META, "model_name": ["x"] * 1000},
        {**GOOD_META, "fingerprint": {"a": 1}},
        {**GOOD_META, "input_size": [[1, 2], [3, 4]]},
    ],
    ids=["inf", "string", "list-name", "dict-fingerprint", "nested"],
)
def test_ill_typed_metadata_is_refused(tmp_path: Path, meta: dict[str, object]) -> None:
    members = {"embedding.npy": _good_embedding(), "meta.npy": _meta(meta)}
    result = _load(_npz(tmp_path / "typed.npz", members))
    assert result.startswith("RAISED InvalidEmbeddingError"), result


def test_a_truncated_embedding_member_is_refused(tmp_path: Path) -> None:
    members = {"embedding.npy": _good_embedding()[:5000], "meta.npy": _meta()}
    result = _load(_npz(tmp_path / "short.npz", members))
    assert result.startswith("RAISED InvalidEmbeddingError"), result
    assert "truncated" in result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    result = _load(fifo)
    assert result.startswith("RAISED InvalidEmbeddingError"), result
    assert "FIFO" in result
