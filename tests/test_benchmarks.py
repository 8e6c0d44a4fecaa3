"""The benchmark's bookkeeping: medians, paired ratios, targets and the table.

The numbers themselves are read from ``python -m benchmarks`` (docs/performance.md),
never asserted here; these tests check that a row says "ok" or "MISSED" for the
right reason and that the JSON is written whole.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._report import Row, Target, format_table, write_json  # noqa: E402
from benchmarks._timing import interleaved, paired_ratio, stats_of  # noqa: E402
from benchmarks.cuda_check import _box_loop  # noqa: E402

from edgesam import SamPredictor  # noqa: E402


def test_stats_and_paired_ratio() -> None:
    stats = stats_of([3.0, 1.0, 2.0])
    assert (stats.median, stats.minimum, stats.maximum, stats.n) == (2.0, 1.0, 3.0, 3)
    with pytest.raises(ValueError, match="at least one"):
        stats_of([])
    # per-round ratios 1, 5, 1 -> 1, where the ratio of the medians would be 3 / 2
    assert paired_ratio(stats_of([1.0, 10.0, 3.0]), stats_of([1.0, 2.0, 3.0])) == 1.0


def test_interleaved_times_every_case_repeat_times() -> None:
    calls: list[str] = []
    timings = interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        repeat=3,
        warmup=1,
        pause=0.0,
    )
    assert calls == ["a", "b"] * 4
    assert timings["a"].n == timings["b"].n == 3


def test_interleaved_runs_the_untimed_step_right_before_its_case() -> None:
    calls: list[str] = []

    def slow_setup() -> None:
        calls.append("setup")
        time.sleep(0.02)

    timings = interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        repeat=2,
        warmup=1,
        pause=0.0,
        before={"b": slow_setup},
    )
    assert calls == ["a", "setup", "b"] * 3
    assert timings["b"].maximum < 0.02  # the setup's sleep is not in b's time


@pytest.mark.parametrize(
    ("target", "ratio", "met"),
    [
        (Target("<=", 1.08), 1.05, True),
        (Target("<=", 1.08), 1.09, False),
        (Target(">=", 1.5), 1.6, True),
        (Target(">=", 1.5), 1.2, False),
        (Target("<=", 1.5), float("nan"), None),
    ],
)
def test_targets(target: Target, ratio: float, met: bool | None) -> None:
    row = Row("predict", "x", value=2.0, baseline=1.0, ratio=ratio, target=target)
    assert row.met is met


def test_table_marks_missed_and_ok_rows(tmp_path: Path) -> None:
    rows = [
        Row(
            "set_image",
            "all in",
            value=460.0,
            baseline=450.0,
            ratio=1.02,
            target=Target("<=", 1.08),
        ),
        Row("predict", "one point", value=90.0, baseline=50.0, ratio=1.8, target=Target("<=", 1.5)),
        Row("variants", "fp16 model", status="not run", note="no fast float16 here"),
    ]
    table = format_table(rows)
    lines = table.splitlines()
    assert "<= 1.08 ok" in next(line for line in lines if "all in" in line)
    assert "<= 1.5 MISSED" in next(line for line in lines if "one point" in line)
    assert "not run" in next(line for line in lines if "fp16 model" in line)
    path = tmp_path / "out" / "bench.json"
    write_json(path, {"machine": "test"}, rows)
    data = json.loads(path.read_text())
    assert data["machine"] == "test"
    assert [row["met"] for row in data["rows"]] == [True, False, None]
    assert [entry.name for entry in path.parent.iterdir()] == ["bench.json"]


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_help_runs_without_reference_files() -> None:
    result = _run_module("benchmarks", "--help")
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout


@pytest.mark.parametrize("script", ["benchmarks.cuda_check", "benchmarks.cuda_shape_switch"])
def test_cuda_scripts_say_when_cuda_is_missing(script: str) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA: the scripts would run for real")
    result = _run_module(script)
    assert result.returncode == 1, result.stderr
    assert "CUDAExecutionProvider is not available" in result.stdout


def test_cuda_check_box_loop_on_cpu(tiny_model_files: dict[str, Path]) -> None:
    # The 8-box loop diagnostic, on the tiny full decoder and CPU: every timing is there.
    predictor = SamPredictor.from_files(
        tiny_model_files["encoder"], tiny_model_files["full_decoder"], providers=["cpu"]
    )
    rgb = np.zeros((1200, 1800, 3), dtype=np.uint8)
    report = _box_loop(predictor, rgb, repeat=1)
    timings = {key: value for key, value in report.items() if key.endswith("_ms")}
    assert set(timings) == {
        "predict_loop_ms",
        "low_res_loop_ms",
        "upsample_loop_ms",
        "predict_one_box_ms",
        "with_batch_predict_loop_ms",
        "with_batch_predict_batch_ms",
    }
    assert all(isinstance(value, float) and value > 0 for value in timings.values())
    assert report["subnormal_logits"] == 0


def test_exported_variants_are_reused_only_from_the_same_exporter(tmp_path: Path) -> None:
    import os

    from benchmarks._variants import _cached, exporter_digest

    checkpoint = tmp_path / "edge_sam_random.pth"
    checkpoint.write_bytes(b"weights")
    cache = tmp_path / "models"
    cache.mkdir()
    encoder = cache / "edge_sam_random_int8_encoder.onnx"
    encoder.write_bytes(b"onnx")
    manifest = cache / "edge_sam_random_manifest.json"
    manifest.write_text(json.dumps({"files": [{"file": encoder.name}]}))
    later = checkpoint.stat().st_mtime + 10
    os.utime(manifest, (later, later))
    assert len(exporter_digest()) == 64

    assert _cached(cache, ["int8"], checkpoint) is None  # no digest: made by an older exporter
    (cache / "exporter.sha256").write_text("0" * 64 + "\n")
    assert _cached(cache, ["int8"], checkpoint) is None  # another exporter's code
    (cache / "exporter.sha256").write_text(exporter_digest() + "\n")
    assert _cached(cache, ["int8"], checkpoint) == {"int8": encoder}
    # without the checkpoint nothing could be exported again: the files are taken as they are
    (cache / "exporter.sha256").write_text("0" * 64 + "\n")
    assert _cached(cache, ["int8"], None) == {"int8": encoder}


def _plan_for(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    from benchmarks import _cli

    (tmp_path / "onnx").mkdir(exist_ok=True)
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "images" / "truck.jpg").write_bytes(b"")
    return _cli._plan(_cli._parser().parse_args(["--reference", str(tmp_path), *args]))


def test_time_estimate_matches_the_documented_figures(tmp_path: Path) -> None:
    from benchmarks._cli import estimate_seconds

    full = estimate_seconds(_plan_for(tmp_path, "--providers", "cpu"))
    quick = estimate_seconds(_plan_for(tmp_path, "--quick", "--providers", "cpu"))
    table = estimate_seconds(
        _plan_for(
            tmp_path,
            "--providers",
            "cpu",
            "--variants",
            "fp32,int8,full",
            "--sections",
            "compute,set_image,predict,cold,memory,quant",
            "--arena-modes",
            "edgesam,bare",
        )
    )
    # README, --help and docs/performance.md: about 30 min, about 3.5 min, about 11 min.
    assert 25 * 60 <= full <= 35 * 60
    assert 2 * 60 <= quick <= 4 * 60
    assert 8 * 60 <= table <= 13 * 60  # the published CPU run took 10.5 min
    assert estimate_seconds(_plan_for(tmp_path, "--sections", "predict", "--variants", "fp32")) < (
        estimate_seconds(_plan_for(tmp_path, "--sections", "predict"))
    )


def test_closing_line_counts_missed_targets() -> None:
    from benchmarks._report import missed_summary

    ok = Row("set_image", "all in", value=1.0, baseline=1.0, ratio=1.0, target=Target("<=", 1.1))
    missed = Row(
        "predict",
        "one point",
        variant="int8",
        value=2.0,
        baseline=1.0,
        ratio=2.0,
        target=Target("<=", 1.3),
    )
    untargeted = Row("predict", "8 boxes", value=1.0, baseline=1.0, ratio=1.0)
    assert missed_summary([ok, untargeted]) == (0, "all 1 targets met")
    count, line = missed_summary([ok, missed, untargeted])
    assert count == 1
    assert line.startswith("1 of 2 targets missed: one point (int8, cpu)")
    assert missed_summary([untargeted]) == (0, "no targets checked")


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 1)])
def test_strict_exits_non_zero_when_a_target_is_missed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    strict: bool,
    code: int,
) -> None:
    from benchmarks import _cli

    missed = Row(
        "predict", "one point", value=2.0, baseline=1.0, ratio=2.0, target=Target("<=", 1.3)
    )
    monkeypatch.setattr(_cli, "run", lambda plan: ({"machine": "test"}, [missed]))
    _plan_for(tmp_path)
    args = ["--reference", str(tmp_path), "--output", str(tmp_path / "out.json")]
    assert _cli.main([*args, "--strict"] if strict else args) == code
    out = capsys.readouterr()
    assert "1 of 1 targets missed" in out.out
    assert "estimated time: about" in caplog.text  # progress is on by default
    caplog.clear()
    assert _cli.main([*args, "--quiet"]) == 0
    assert "estimated time" not in caplog.text


def test_batch_is_a_section_of_the_benchmark_cli(tmp_path: Path) -> None:
    from benchmarks._cli import SECTIONS, estimate_seconds

    assert "batch" in SECTIONS
    result = _run_module("benchmarks", "--help")
    assert result.returncode == 0, result.stderr
    assert "batch" in result.stdout.split("--sections", 1)[1]
    standalone = _run_module("benchmarks.batch", "--help")
    assert standalone.returncode == 0, standalone.stderr
    assert "--no-ray" in standalone.stdout

    def estimate(*args: str) -> float:
        return estimate_seconds(_plan_for(tmp_path, "--variants", "fp32", *args))

    quick = estimate("--quick", "--sections", "batch", "--providers", "cpu")
    full = estimate("--sections", "batch", "--providers", "cpu")
    assert 0 < quick < full
    # the section is in the default run's estimate, and runs on the CPU only
    assert estimate("--providers", "cpu") > estimate(
        "--providers", "cpu", "--sections", ",".join(s for s in SECTIONS if s != "batch")
    )
    assert estimate("--sections", "batch", "--providers", "cuda") == 0


def test_batch_rows_compare_each_runner_with_the_plain_loop() -> None:
    from benchmarks._batch import Timing, markdown_table, to_rows

    timings = [
        Timing("boxes", "plain loop", 4, 8.0),
        Timing("boxes", "local pipeline (prefetch 2)", 4, 4.0),
        Timing("boxes", "Ray (1 actor, 1.5 CPUs)", 4, status="not run", note="pip install ray"),
        Timing("everything", "plain loop", 4, status="failed", note="RuntimeError: x"),
        Timing("everything", "local pipeline (prefetch 2)", 4, 2.0),
    ]
    rows = to_rows(timings)
    assert [row.status for row in rows] == ["ok", "ok", "not run", "failed", "ok"]
    assert [row.value for row in rows] == [0.5, 1.0, None, None, 2.0]
    assert {row.section for row in rows} == {"batch"}
    assert {row.unit for row in rows} == {"images/s"}
    assert rows[1].details["vs_plain_loop"] == 2.0
    assert "2.00x the plain loop" in rows[1].note
    assert "vs_plain_loop" not in rows[4].details  # its loop failed: nothing to compare with
    assert rows[2].note == "pip install ray"
    table = markdown_table(timings).splitlines()
    assert table[0] == "| job | runner | seconds | images/s | vs plain loop |"
    assert table[3] == "| boxes | local pipeline (prefetch 2) | 4.00 | 1.00 | 2.00x |"
    assert table[4] == "| boxes | Ray (1 actor, 1.5 CPUs) | not run | - | - |"
    assert table[6] == "| everything | local pipeline (prefetch 2) | 2.00 | 2.00 | - |"


def test_batch_section_runs_every_runner_on_both_jobs(
    tmp_path: Path, tiny_model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole section through the benchmark CLI's run(), on the tiny models, without
    # Ray (import refused): every local runner gives a rate, the Ray rows say why not.
    pytest.importorskip("pyarrow")
    from benchmarks import _batch, _cli
    from PIL import Image

    reference = tmp_path / "reference"
    (reference / "onnx").mkdir(parents=True)
    (reference / "images").mkdir()
    (reference / "onnx" / "edge_sam_random_encoder.onnx").write_bytes(
        tiny_model_files["encoder"].read_bytes()
    )
    (reference / "onnx" / "edge_sam_random_decoder.onnx").write_bytes(
        tiny_model_files["decoder"].read_bytes()
    )
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(
        reference / "images" / "truck.jpg"
    )
    Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)).save(
        reference / "images" / "small.png"
    )
    monkeypatch.setattr(_batch, "QUICK", _batch.BatchSettings(images=3, points_per_side=2))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the section's copies go
    args = ["--reference", str(reference), "--quick", "--sections", "batch", "--variants", ""]
    args += ["--providers", "cpu"]
    _, rows = _cli.run(_cli._plan(_cli._parser().parse_args(args)))
    assert {row.section for row in rows} == {"batch"}

    jobs = ("boxes (5/image)", "everything (2x2)")
    runners = ("plain loop", "local pipeline (prefetch 2)", "local, no prefetch")
    ok = {row.name: row for row in rows if row.status == "ok"}
    assert set(ok) == {f"{job}: {runner}" for job in jobs for runner in runners}
    assert all(row.value is not None and row.value > 0 for row in ok.values())
    assert all("3 images" in row.note for row in ok.values())
    not_run = [row for row in rows if row.status != "ok"]
    assert [row.name.split(": ")[0] for row in not_run] == list(jobs)
    assert all("Ray" in row.name and row.status == "not run" for row in not_run)
    assert all("edgesam[ray]" in row.note for row in not_run)
    assert not list(scratch.iterdir())  # the copies and outputs are removed
