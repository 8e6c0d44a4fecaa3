"""_files: regular-file opening and size-capped reprs for messages about untrusted values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgesam._files import NotARegularFileError, open_regular_file, short_repr


def test_short_repr_is_bounded_on_shared_structures() -> None:
    node: list[object] = []
    for _ in range(200):
        node = [node, node]  # 2**200 leaves if walked
    assert len(short_repr(node)) <= 80


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10**5000, "<16610-bit integer>"),
        ("x" * 1000, "'" + "x" * 76 + "..."),
        ((1, 2, 3, 4, 5, 6), "(1, 2, 3, 4, ...)"),
        ([1], "[1]"),
        ((1,), "(1,)"),
        ({"a": [1, 2]}, "{'a': <list of 2 items>}"),
        (object(), "<object>"),
        (float("nan"), "nan"),
    ],
    ids=["huge-int", "long-str", "tuple", "list", "one-tuple", "dict", "object", "nan"],
)
def test_short_repr_shapes(value: object, expected: str) -> None:
    assert short_repr(value) == expected


def test_open_regular_file_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    with open_regular_file(path) as stream:
        assert stream.read() == b"abc"


def test_open_regular_file_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotARegularFileError, match="directory"):
        open_regular_file(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_open_regular_file_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match="FIFO"):
        open_regular_file(fifo)


def test_open_regular_file_passes_missing_files_on(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_regular_file(tmp_path / "missing")
