"""``readable_file``: the checks ``from_files`` makes on local model files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from edgesam._files import readable_file
from edgesam.errors import WeightsError, WeightsNotFoundError

CONTENT = b"tiny encoder bytes\n" * 64


def test_accepts_a_readable_file(tmp_path: Path) -> None:
    model = tmp_path / "encoder.onnx"
    model.write_bytes(CONTENT)
    assert readable_file(model) == model
    assert readable_file(str(model)) == model


def test_expands_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "decoder.onnx").write_bytes(CONTENT)
    assert readable_file("~/decoder.onnx") == tmp_path / "decoder.onnx"


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        readable_file(tmp_path / "nope.onnx", argument="encoder")
    message = str(info.value)
    assert f"encoder='{tmp_path / 'nope.onnx'}': no such file" in message
    assert "from_pretrained()" in message
    assert isinstance(info.value, FileNotFoundError)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=r"is not a file \(.* is a directory\)"):
        readable_file(tmp_path, argument="decoder")


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "secret.onnx"
    model.write_bytes(CONTENT)
    real_open = os.open

    def deny(path: object, *args: Any, **kwargs: Any) -> int:
        # chmod 000 does not stop root, so refuse this one file the way the OS would.
        if Path(os.fspath(path)) == model:  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(WeightsError, match="cannot be read \\(Permission denied\\)") as info:
        readable_file(model, argument="encoder")
    assert not isinstance(info.value, WeightsNotFoundError)
    assert isinstance(info.value.__cause__, PermissionError)
