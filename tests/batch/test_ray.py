"""The Ray pipeline: same rows as the local one, and a killed actor loses nothing.

Every test runs Ray in a subprocess with a timeout (a local Ray with two CPUs
and fractional-CPU actors), so that a stuck cluster fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgesam.batch import run_batch

from .batch_helpers import cli, model_args, rows_by_name, write_images

pytest.importorskip("ray.data")

SCRIPT = Path(__file__).with_name("ray_script.py")


def test_cli_with_ray_gives_the_local_rows(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    images = write_images(tmp_path / "data", 5)
    (tmp_path / "data" / "broken.png").write_bytes(b"not an image")
    rows = [
        {"path": images[0].name, "boxes": [[2, 3, 30, 20], [10, 10, 40, 30]], "tag": "a"},
        {"path": images[1].name, "points": [[20, 10]], "labels": [1]},
        {"path": images[2].name, "boxes": [[1, 1, 9, 9]], "points": [[5, 5], [30, 30]]},
        {"path": images[3].name, "boxes": [[0, 0, 5, 5]], "meta": {"k": [1, 2]}},
        {"path": "broken.png", "boxes": [[0, 0, 5, 5]]},
    ]
    manifest = tmp_path / "data" / "m.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    local = tmp_path / "local"
    summary = run_batch(
        manifest, local, encoder=tiny_model_files["encoder"], decoder=tiny_model_files["decoder"]
    )
    assert len(summary.segmented) == 4
    on_ray = tmp_path / "ray"
    args = [manifest, "--output", on_ray, "--ray", "auto", "--cpus-per-actor", "0.5", "--quiet",
            *model_args(tiny_model_files)]  # fmt: skip
    result = cli(*args, timeout=240)
    assert result.returncode == 1, result.stderr  # broken.png
    assert "4 segmented, 0 already done, 1 failed" in result.stdout
    assert rows_by_name(on_ray) == rows_by_name(local)
    errors = (on_ray / "_errors.jsonl").read_text().splitlines()
    assert [json.loads(line)["path"] for line in errors] == ["broken.png"]
    assert not list(on_ray.glob("_ray-*"))
    # Resumed on Ray: nothing to do.
    again = cli(*args, timeout=240)
    assert "0 segmented, 4 already done, 1 failed" in again.stdout, again.stderr
    assert rows_by_name(on_ray) == rows_by_name(local)


def test_a_killed_actor_still_gives_complete_duplicate_free_output(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    count = 80
    write_images(tmp_path / "data", count, size=(300, 400))
    output = tmp_path / "ray"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "data"), str(output),
         str(tiny_model_files["encoder"]), str(tiny_model_files["decoder"]), "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = _report(result.stdout)
    assert report["killed"] == 1, "the actor was not killed mid-run"
    assert report["failed"] == []
    assert report["segmented"] == count
    rows = rows_by_name(output)  # fails on a duplicate
    assert len(rows) == count
    local = tmp_path / "local"
    run_batch(
        tmp_path / "data",
        local,
        encoder=tiny_model_files["encoder"],
        decoder=tiny_model_files["decoder"],
        everything=True,
        everything_options={"points_per_side": 2},
    )
    assert rows == rows_by_name(local)


def test_segment_on_user_datasets(tmp_path: Path, tiny_model_files: dict[str, Path]) -> None:
    folder = tmp_path / "data"
    write_images(folder, 2)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("ray_segment_script.py")), str(folder),
         str(tiny_model_files["encoder"]), str(tiny_model_files["decoder"])],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = _report(result.stdout)
    assert report["columns"] == sorted(
        ["path", "boxes", "sha256", "height", "width", "model_fingerprint", "masks", "error"]
    )
    manifest = folder / "m.jsonl"
    manifest.write_text(
        "".join(
            json.dumps({"path": name, "boxes": [[2, 3, 30, 20]]}) + "\n"
            for name in ("img0000.png", "img0001.png")
        )
    )
    files = {"encoder": tiny_model_files["encoder"], "decoder": tiny_model_files["decoder"]}
    run_batch(manifest, tmp_path / "local", **files)  # type: ignore[arg-type]
    local = rows_by_name(tmp_path / "local")
    for name, row in local.items():
        assert report["boxes"][name] == {"masks": row["masks"], "error": ""}
    assert report["boxes"]["nope.png"]["masks"] == []
    assert "does not exist" in report["boxes"]["nope.png"]["error"]
    manifest.unlink()
    run_batch(folder, tmp_path / "everything", everything=True,
              everything_options={"points_per_side": 2}, **files)  # type: ignore[arg-type]  # fmt: skip
    for name, row in rows_by_name(tmp_path / "everything").items():
        assert report["everything"][name] == [m["segmentation"] for m in row["masks"]]
        assert report["everything"][name]


def _report(stdout: str) -> dict[str, Any]:
    """The script's JSON report: the one line with its prefix (Ray prints lines of its own)."""
    prefix = "edgesam-test-report: "
    lines = [line[len(prefix) :] for line in stdout.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, stdout[-3000:]
    report: dict[str, Any] = json.loads(lines[0])
    return report
