"""Atomic writes: clear errors that name the caller's path, never the hidden temporary file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from edgesam import ImageEmbedding, InvalidInputError
from edgesam._atomic import atomic_writer, check_destination, write_bytes_atomic


def test_missing_folder_names_the_folder_not_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.bin"
    with pytest.raises(InvalidInputError, match=r"folder .*missing' does not exist") as caught:
        write_bytes_atomic(target, b"data")
    assert str(target) in str(caught.value)
    assert ".tmp" not in str(caught.value)
    assert not (tmp_path / "missing").exists()


def test_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is not a folder"):
        write_bytes_atomic(tmp_path / "file" / "x.bin", b"data")


def test_target_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out.bin").mkdir()
    with pytest.raises(InvalidInputError, match="is a folder"):
        write_bytes_atomic(tmp_path / "out.bin", b"data")
    assert os.listdir(tmp_path) == ["out.bin"]


def test_command_line_options_are_named_as_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"^--output '.*m\.png': the folder"):
        check_destination(tmp_path / "missing" / "m.png", "--output")
    with pytest.raises(InvalidInputError, match=r"^path='.*m\.png': the folder"):
        check_destination(tmp_path / "missing" / "m.png")


def test_os_errors_name_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.bin"

    def refused(path: Path, *args: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(PermissionError) as caught, atomic_writer(target):
        pass
    assert caught.value.filename == str(target)


def test_embedding_save_into_a_missing_folder(tmp_path: Path) -> None:
    embedding = ImageEmbedding(
        array=np.zeros((1, 256, 64, 64), dtype=np.float32),
        original_size=(10, 20),
        input_size=(512, 1024),
        model_name="edge_sam_3x",
        fingerprint="ab" * 32,
    )
    with pytest.raises(InvalidInputError, match="does not exist"):
        embedding.save(tmp_path / "missing" / "emb.npz")
