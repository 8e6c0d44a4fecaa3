"""The ``export`` sub-command, and the extra's import guard."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, get_args

import pytest

from edgesam.export._cli import handle_export, register


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="edgesam")
    register(root.add_subparsers(dest="command"))
    return root


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_defaults() -> None:
    args = parser().parse_args(["export", "model.pth"])
    assert args.command == "export"
    assert args.checkpoint == Path("model.pth")
    assert args.output == Path()
    assert args.name is None
    assert args.variants == ["official", "full"]
    assert args.upsample_mode == "bilinear"
    assert args.opset == 11
    assert args.stability_score is False
    assert args.calibration_images == []
    assert args.func is handle_export


def test_all_options() -> None:
    args = parser().parse_args(
        [
            "export",
            "m.pth",
            "--output",
            "out",
            "--name",
            "mine",
            "--variants",
            "fp16",
            "int8",
            "--upsample-mode",
            "bicubic",
            "--opset",
            "13",
            "--stability-score",
            "--calibration-images",
            "a.jpg",
            "imgs",
        ]
    )
    assert (args.output, args.name, args.variants) == (Path("out"), "mine", ["fp16", "int8"])
    assert (args.upsample_mode, args.opset, args.stability_score) == ("bicubic", 13, True)
    assert args.calibration_images == [Path("a.jpg"), Path("imgs")]


@pytest.mark.parametrize(
    "argv",
    [["export"], ["export", "m.pth", "--variants", "tflite"], ["export", "m.pth", "--opset", "x"]],
)
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.torch
def test_handler_passes_options_and_prints_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from edgesam.export._api import ExportResult

    images = tmp_path / "images"
    images.mkdir()
    for name in ("b.png", "a.JPG", "notes.txt"):
        (images / name).write_bytes(b"")
    single = tmp_path / "c.jpg"
    single.write_bytes(b"")
    seen: dict[str, Any] = {}

    def fake_export(checkpoint: Path, output_dir: Path, **options: Any) -> ExportResult:
        seen.update(options, checkpoint=checkpoint, output_dir=output_dir)
        return ExportResult(
            output_dir, "m", {"encoder": output_dir / "m_encoder.onnx"}, output_dir / "m.json"
        )

    monkeypatch.setattr("edgesam.export._api.export_onnx", fake_export)
    args = parser().parse_args(
        [
            *("export", "m.pth", "-o", str(tmp_path), "--variants", "int8"),
            *("--calibration-images", str(images), str(single)),
        ]
    )
    assert args.func(args) == 0
    assert seen["calibration_images"] == [images / "a.JPG", images / "b.png", single]
    assert seen["variants"] == ["int8"]
    assert seen["checkpoint"] == Path("m.pth")
    out = capsys.readouterr().out.splitlines()
    assert out == [str(tmp_path / "m_encoder.onnx"), str(tmp_path / "m.json")]


@pytest.mark.torch
def test_handler_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    args = parser().parse_args(["export", str(tmp_path / "missing.pth"), "-o", str(tmp_path)])
    assert args.func(args) == 1
    assert "checkpoint not found" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    args = parser().parse_args(
        ["export", "m.pth", "--variants", "int8", "--calibration-images", str(empty)]
    )
    assert args.func(args) == 2
    assert "no images in the folder" in capsys.readouterr().err


@pytest.mark.torch
def test_choices_match_the_api() -> None:
    pytest.importorskip("torch")
    from edgesam.export import _cli
    from edgesam.export._api import DEFAULT_VARIANTS, VARIANTS
    from edgesam.export._repvit import UpsampleMode

    upsample_modes = get_args(UpsampleMode)
    assert (_cli._VARIANTS, _cli._DEFAULT_VARIANTS) == (VARIANTS, DEFAULT_VARIANTS)
    assert upsample_modes == _cli._UPSAMPLE_MODES


def test_cli_module_does_not_import_torch() -> None:
    result = run_python(
        """
        import sys
        import edgesam.export
        from edgesam.export._cli import register
        print("torch" in sys.modules, "onnx" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_missing_extra_says_what_to_install() -> None:
    result = run_python(
        """
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        import argparse
        from edgesam.errors import MissingExtraError
        from edgesam.export._cli import register

        try:
            from edgesam.export import export_onnx
        except MissingExtraError as err:
            print("API:", err)
        root = argparse.ArgumentParser()
        register(root.add_subparsers())
        args = root.parse_args(["export", "m.pth"])
        print("EXIT:", args.func(args))
        """
    )
    assert result.returncode == 0, result.stderr
    assert (
        "API: ONNX export needs torch, which edgesam does not install by default: "
        'pip install "edgesam[export]"' in result.stdout
    )
    assert "EXIT: 1" in result.stdout
    assert 'pip install "edgesam[export]"' in result.stderr
