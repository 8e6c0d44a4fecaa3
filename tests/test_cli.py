"""The edgesam command, run as a subprocess like a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
        (["--box", "100,2,3,4"], "error: --box must be XYXY with x1 >= x0"),
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


def _broken_model(tmp_path: Path) -> list[str | Path]:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    return ["--encoder", broken, "--decoder", broken]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--output", "missing/m.png"], "--output 'missing/m.png': the folder 'missing' does not"),
        (["--output", "m.jpg"], "--output 'm.jpg': binary masks are written as PNG"),
        (["--output", "m.webp"], "must end in .png"),
        (["--output", "m.png", "--overlay", "missing/o.png"], "--overlay 'missing/o.png'"),
        (["--output", "m.png", "--overlay", "o.xyz"], "Pillow cannot write '.xyz' files"),
    ],
)
def test_segment_checks_its_outputs_before_loading_the_model(
    tmp_path: Path, photo: Path, options: list[str], message: str
) -> None:
    # The broken model would fail with exit 1 if it were loaded first.
    result = subprocess.run(
        [sys.executable, "-m", "edgesam.cli", "segment", str(photo), "--point", "1,1"]
        + options
        + [str(arg) for arg in _broken_model(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert ".tmp" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "photo.png"]


def test_segment_overlay_of_a_photo_turned_by_exif(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    stored = np.zeros((120, 160, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: shown turned 90 degrees, 120 wide and 160 high
    Image.fromarray(stored).save(tmp_path / "turned.jpg", exif=exif)
    result = run_cli(
        "segment",
        tmp_path / "turned.jpg",
        "--point",
        "60,80",
        "--output",
        tmp_path / "m.png",
        "--overlay",
        tmp_path / "o.png",
        *model_args(tiny_model_files),
    )
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "o.png") as overlay:
        assert overlay.size == (120, 160)


def _decompression_bomb(path: Path) -> Path:
    """A tiny PNG whose header claims 15000 x 15000 pixels, over Pillow's safety limit."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 15000, 15000, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1876))
        + chunk(b"IEND", b"")
    )
    return path


def _everything_options(files: dict[str, Path]) -> list[str | Path]:
    return [*model_args(files), "--points-per-side", "2", "--quiet"]


def test_everything_skips_huge_images_but_fails_for_named_unreadable_files(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.open(photo).save(inputs / "a.png")
    bomb = _decompression_bomb(inputs / "huge.png")
    common = _everything_options(tiny_model_files)
    found = run_cli("everything", inputs, "--output", tmp_path / "out", *common)
    assert found.returncode == 0, found.stderr
    assert "1 segmented, 0 already done, 1 unreadable" in found.stdout
    assert "skipping" in found.stderr
    assert "huge.png is larger than" in found.stderr.replace("'", "")
    assert "Traceback" not in found.stderr

    named = run_cli("everything", bomb, photo, "--output", tmp_path / "out2", *common)
    assert named.returncode == 2
    assert "1 segmented" in named.stdout  # the readable image is still done
    assert f"{bomb}: named on the command line but not a readable image" in named.stderr
    assert "Traceback" not in named.stderr


def test_everything_refuses_to_mix_formats_in_one_output(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    common = _everything_options(tiny_model_files)
    output = tmp_path / "out"
    first = run_cli("everything", photo, "--output", output, *common)
    assert first.returncode == 0, first.stderr
    other = run_cli("everything", photo, "--output", output, "--format", "coco-rle", *common)
    assert other.returncode == 2
    assert "already holds --format png results for photo.png" in other.stderr
    assert not (output / "photo.png" / "annotations.json").exists()
    again = run_cli("everything", photo, "--output", output, "--format", "png", *common)
    assert "0 segmented, 1 already done" in again.stdout


def test_everything_names_its_options_as_options(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    result = run_cli(
        "everything",
        photo,
        "--output",
        tmp_path / "out",
        "--pred-iou-thresh",
        "2",
        *_everything_options(tiny_model_files),
    )
    assert result.returncode == 2
    assert "--pred-iou-thresh must be in [0, 1]: got 2.0" in result.stderr


def test_everything_skips_an_image_that_fails_after_it_was_read(
    tmp_path: Path,
    photo: Path,
    tiny_model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edgesam import InvalidImageError, SamAutomaticMaskGenerator
    from edgesam.cli import main

    real = SamAutomaticMaskGenerator.generate
    calls: list[int] = []

    def failing_on_b(self: Any, image: Any, **options: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # a.png, b.png, c.png are segmented in that order
            raise InvalidImageError("b.png cannot be segmented")
        return real(self, image, **options)

    monkeypatch.setattr(SamAutomaticMaskGenerator, "generate", failing_on_b)
    for name in ("a.png", "b.png", "c.png"):
        Image.open(photo).save(tmp_path / name)
    code = main(
        [
            "everything",
            str(tmp_path / "a.png"),
            str(tmp_path / "b.png"),
            str(tmp_path / "c.png"),
            "--output",
            str(tmp_path / "out"),
            *map(str, _everything_options(tiny_model_files)),
        ]
    )
    assert "2 segmented, 0 already done, 1 unreadable" in capsys.readouterr().out
    assert code == 2  # b.png was named on the command line


def test_offline_hint_names_the_command_line_options(tmp_path: Path, photo: Path) -> None:
    result = run_cli(
        "segment",
        photo,
        "--point",
        "1,1",
        "--output",
        tmp_path / "m.png",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "--encoder ENCODER.onnx --decoder DECODER.onnx" in result.stderr
    assert "from_files" not in result.stderr
    assert "local_files_only" not in result.stderr
    missing = run_cli(
        "segment",
        photo,
        "--point",
        "1,1",
        "--output",
        tmp_path / "m.png",
        "--encoder",
        tmp_path / "nope.onnx",
        "--decoder",
        tmp_path / "nope.onnx",
    )
    assert "leave out --encoder/--decoder" in missing.stderr
    assert "from_pretrained" not in missing.stderr


def test_cli_does_not_import_tqdm_itself() -> None:
    # tqdm is huggingface_hub's dependency, not ours: use huggingface_hub.utils.tqdm.
    import ast

    import edgesam.cli

    tree = ast.parse(Path(edgesam.cli.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name == "tqdm" or name.startswith("tqdm.") for name in imported)


@pytest.mark.parametrize(
    ("argument", "message", "shown"),
    [
        # an argument the command has as an option: named as that option
        (
            "pred_iou_thresh",
            "pred_iou_thresh must be in [0, 1]: got 2",
            "--pred-iou-thresh must be in [0, 1]: got 2",
        ),
        # options whose name differs from the Python argument's
        ("point_labels", "point_labels must be 1 or 0", "--point must be 1 or 0"),
        # a message that does not start with the argument's name: the option leads
        ("box", "batch of 2 boxes", "--box: batch of 2 boxes"),
        # positionals and arguments the command does not take: the message as it is
        ("image", "image must be RGB", "image must be RGB"),
        ("mask_input", "mask_input must be finite", "mask_input must be finite"),
    ],
)
def test_errors_name_the_option_from_their_argument(
    argument: str, message: str, shown: str
) -> None:
    import argparse

    from edgesam.cli import _for_the_command_line
    from edgesam.errors import InvalidPromptError

    args = argparse.Namespace(
        command="segment", image=Path("a.png"), point=None, box=None, pred_iou_thresh=0.88
    )
    err = InvalidPromptError(message, argument=argument)
    assert err.argument == argument
    assert _for_the_command_line(args, err) == shown


def test_python_dash_m_edgesam_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgesam", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("edgesam ")


def test_verbose_is_accepted_after_the_subcommand(tmp_path: Path, photo: Path) -> None:
    for placement in (("-v", "segment"), ("segment", "-v")):
        result = run_cli(
            *placement,
            photo,
            "--point",
            "1,1",
            "--output",
            tmp_path / "m.png",
            "--encoder",
            tmp_path / "nope.onnx",
            "--decoder",
            tmp_path / "nope.onnx",
        )
        assert result.returncode == 1, placement
        assert "Traceback" in result.stderr, placement  # -v shows the traceback
    quiet = run_cli("info")
    assert quiet.returncode == 0
    assert run_cli("info", "--verbose").returncode == 0


def test_everything_help_shows_generator_options_with_defaults() -> None:
    result = run_cli("everything", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option, default in (
        ("--points-per-side", "32"),
        ("--pred-iou-thresh", "0.88"),
        ("--stability-score-thresh", "0.95"),
        ("--min-mask-region-area", "0"),
        ("--crop-n-layers", "0"),
    ):
        start = text.index(f"{option} {option[2:].upper().replace('-', '_')} ")
        assert f"(default: {default})" in text[start : start + 220], option


def test_info_json(tmp_path: Path) -> None:
    import json

    result = run_cli("info", "--json", env={"HF_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["edgesam"]
    assert "CPUExecutionProvider" in payload["providers_available"]
    assert payload["models"]["edge_sam_3x"]["default"] is True
    assert payload["models"]["edge_sam_3x"]["files"]["encoder"]["cached"] is None


def test_segment_and_everything_json(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    import json

    output = tmp_path / "mask.png"
    result = run_cli(
        "segment",
        photo,
        "--point",
        "80,60",
        "--output",
        output,
        "--json",
        *model_args(tiny_model_files),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    written = np.asarray(Image.open(output)) > 0
    assert payload["output"] == str(output)
    assert payload["overlay"] is None
    assert payload["pixels"] == int(written.sum())
    assert np.isfinite(payload["score"])

    result = run_cli(
        "everything",
        photo,
        "--output",
        tmp_path / "out",
        "--points-per-side",
        "2",
        "--json",
        "--quiet",
        *model_args(tiny_model_files),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["segmented"] == [str(photo)]
    assert payload["already_done"] == []
    assert payload["unreadable"] == []
    again = json.loads(
        run_cli(
            "everything",
            photo,
            "--output",
            tmp_path / "out",
            "--points-per-side",
            "2",
            "--json",
            "--quiet",
            *model_args(tiny_model_files),
        ).stdout
    )
    assert again["already_done"] == [str(photo)]
    assert again["segmented"] == []


def test_download_hint_does_not_offer_options_it_lacks(tmp_path: Path) -> None:
    result = run_cli(
        "download",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "from_files" not in result.stderr
    # download takes no --encoder/--decoder: the hint names the commands that do.
    assert "`edgesam segment` and `everything` take model files" in result.stderr
    unreachable = run_cli(
        "download",
        env={"HF_HOME": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert unreachable.returncode == 1
    assert "connection to 127.0.0.1:9 refused" in unreachable.stderr
    assert "run this command once where the Hub can be reached" in unreachable.stderr
    assert unreachable.stderr.count("\n") == 1  # one line, no retry log


def test_everything_reports_masks_and_refuses_to_resume_with_other_options(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    import json

    output = tmp_path / "out"
    common = [photo, "--output", output, "--quiet", *model_args(tiny_model_files)]
    first = run_cli("everything", *common, "--points-per-side", "2")
    assert first.returncode == 0, first.stderr
    done = json.loads((output / photo.name / "done.json").read_text())
    assert done["options"]["points_per_side"] == 2
    assert f"; {done['masks']} masks written" in first.stdout
    if done["masks"] == 0:
        assert "no mask passed the filters" in first.stderr
    changed = run_cli("everything", *common, "--points-per-side", "4")
    assert changed.returncode == 2
    assert "--points-per-side 2 (now 4)" in changed.stderr
    assert "another --output folder" in changed.stderr
    same = run_cli("everything", *common, "--points-per-side", "2")
    assert same.returncode == 0, same.stderr
    assert "0 segmented, 1 already done" in same.stdout


def test_everything_hints_when_no_mask_passes_the_filters(
    tmp_path: Path, photo: Path, tiny_model_files: dict[str, Path]
) -> None:
    result = run_cli(
        "everything",
        photo,
        "--output",
        tmp_path / "out",
        "--quiet",
        "--points-per-side",
        "2",
        "--pred-iou-thresh",
        "1.0",
        "--stability-score-thresh",
        "1.0",
        *model_args(tiny_model_files),
    )
    assert result.returncode == 0, result.stderr
    assert "; 0 masks written" in result.stdout
    assert "no mask passed the filters; try a lower --pred-iou-thresh" in result.stderr
