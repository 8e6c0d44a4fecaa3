"""The edgesam command, run as a subprocess like a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "edgesam.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    image[30:90, 40:120] = (200, 50, 50)
    Image.fromarray(image).save(path)
    return path


def model_args(files: dict[str, Path]) -> list[str | Path]:
    return ["--encoder", files["encoder"], "--decoder", files["decoder"]]


def test_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("segment", "everything", "download", "info", "export"):
        assert command in result.stdout
    assert run_cli("--version").stdout.startswith("edgesam ")


def test_info_lists_models_and_providers(tmp_path: Path) -> None:
    result = run_cli("info", env={"HF_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "edge_sam_3x (default)" in result.stdout
    assert "CPUExecutionProvider" in result.stdout
    assert "not cached" in result.stdout


def test_segment_point_writes_mask_and_overlay(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    mask_path, overlay_path = tmp_path / "mask.png", tmp_path / "overlay.png"
    result = run_cli(
        "segment",
        photo,
        "--point",
        "80,60",
        "--output",
        mask_path,
        "--overlay",
        overlay_path,
        *model_args(tiny_model_files),
    )
    assert result.returncode == 0, result.stderr
    mask = np.asarray(Image.open(mask_path))
    assert mask.shape == (120, 160)
    assert mask[60, 80] == 255  # the tiny decoder's disc is centred on the click
    assert mask[0, 0] == 0
    with Image.open(overlay_path) as overlay:
        assert overlay.size == (160, 120)


def test_segment_box(tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]) -> None:
    result = run_cli(
        "segment",
        photo,
        "--box",
        "40,30,120,90",
        "--output",
        tmp_path / "m.png",
        *model_args(tiny_model_files),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--point", "80"], "X,Y"),
        (["--point", "a,b"], "numbers expected"),
        (["--point", "1,2,5"], "LABEL"),
        (["--box", "1,2,3"], "X0,Y0,X1,Y1"),
        ([], "needs a prompt"),
        (["--box", "100,2,3,4"], "x1 >= x0"),
    ],
)
def test_segment_usage_errors_exit_2_without_traceback(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path], args: list[str], message: str
) -> None:
    result = run_cli(
        "segment", photo, *args, "--output", tmp_path / "m.png", *model_args(tiny_model_files)
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_runtime_failure_exit_1(tmp_path: Path, photo: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    result = run_cli(
        "segment",
        photo,
        "--point",
        "1,1",
        "--output",
        tmp_path / "m.png",
        "--encoder",
        broken,
        "--decoder",
        broken,
    )
    assert result.returncode == 1
    assert "could not be loaded as an ONNX model" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = run_cli(
        "--verbose",
        "segment",
        photo,
        "--point",
        "1,1",
        "--output",
        tmp_path / "m.png",
        "--encoder",
        broken,
        "--decoder",
        broken,
    )
    assert "Traceback" in verbose.stderr


def test_unknown_model_is_usage_error(tmp_path: Path, photo: Path) -> None:
    result = run_cli(
        "segment",
        photo,
        "--point",
        "1,1",
        "--output",
        tmp_path / "m.png",
        "--model",
        "sam_h",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "edge_sam_3x" in result.stderr


def test_download_offline_without_cache_fails_clearly(tmp_path: Path) -> None:
    result = run_cli("download", env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "cache" in result.stderr
    assert "Traceback" not in result.stderr


def test_everything_skips_bad_files_and_resumes(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.open(photo).save(inputs / "a.png")
    (inputs / "b.jpg").write_bytes(b"this is not a jpeg")
    output = tmp_path / "out"
    common = [
        *model_args(tiny_model_files),
        "--points-per-side",
        "4",
        "--quiet",
        "--pred-iou-thresh",
        "0",
        "--stability-score-thresh",
        "0",
    ]
    result = run_cli("everything", inputs, "--output", output, "--overlay", *common)
    assert result.returncode == 0, result.stderr
    assert "1 segmented" in result.stdout
    assert "1 unreadable" in result.stdout
    assert (output / "a.png" / "metadata.csv").is_file()
    assert (output / "a.png" / "overlay.png").is_file()
    again = run_cli("everything", inputs, "--output", output, *common)
    assert "0 segmented, 1 already done" in again.stdout

    coco = run_cli(
        "everything", photo, "--output", tmp_path / "coco", "--format", "coco-rle", *common
    )
    assert coco.returncode == 0, coco.stderr
    assert (tmp_path / "coco" / "photo.png" / "annotations.json").is_file()


def test_everything_output_that_is_a_file_is_usage_error(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    result = run_cli("everything", photo, "--output", not_a_dir, *model_args(tiny_model_files))
    assert result.returncode == 2
    assert "is a file" in result.stderr


def test_everything_same_stem_kept_apart_and_same_name_refused(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    Image.open(photo).save(first / "a.png")
    Image.open(photo).save(first / "a.jpg")
    Image.open(photo).save(second / "a.png")
    common = [*model_args(tiny_model_files), "--points-per-side", "2", "--quiet"]
    result = run_cli("everything", first, "--output", tmp_path / "out", *common)
    assert result.returncode == 0, result.stderr
    assert "2 segmented" in result.stdout
    clash = run_cli("everything", first, second, "--output", tmp_path / "out2", *common)
    assert clash.returncode == 2
    assert "share the file name 'a.png'" in clash.stderr
