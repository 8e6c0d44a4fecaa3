"""The local batch pipeline: manifests, outputs, resume, interruption, bad images, COCO."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgesam.amg import rle_to_mask
from edgesam.batch import ERRORS_FILE, iter_rows, read_items, run_batch
from edgesam.errors import InvalidInputError

from .batch_helpers import cli, model_args, rows_by_name, write_images


def _run(source: Path, output: Path, files: dict[str, Path], **options: object):  # type: ignore[no-untyped-def]
    return run_batch(
        source,
        output,
        encoder=files["encoder"],
        decoder=files["decoder"],
        providers=["cpu"],
        **options,  # type: ignore[arg-type]
    )


def _rows(images: list[Path]) -> list[dict[str, object]]:
    return [
        {"path": images[0].name, "boxes": [[2, 3, 30, 20], [10, 10, 40, 30]], "tag": "a"},
        {"path": images[1].name, "points": [[20, 10]], "labels": [1], "tag": "b", "n": 3},
        {"path": images[2].name, "boxes": [[1, 1, 9, 9]], "points": [[5, 5], [30, 30]]},
    ]


def test_manifest_formats_give_the_same_rows(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    images = write_images(tmp_path / "data", 3)
    rows = _rows(images)
    jsonl = tmp_path / "data" / "m.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    csv = tmp_path / "data" / "m.csv"
    header = ["path", "boxes", "points", "labels", "tag", "n"]
    lines = [",".join(header)]
    for row in rows:
        cells = []
        for key in header:
            value = row.get(key)
            text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
            cells.append('"' + str(text).replace('"', '""') + '"')
        lines.append(",".join(cells))
    csv.write_text("\n".join(lines) + "\n")
    parquet = tmp_path / "data" / "m.parquet"
    pq.write_table(pa.Table.from_pydict({k: [row.get(k) for row in rows] for k in header}), parquet)

    outputs = {}
    for manifest in (jsonl, csv, parquet):
        out = tmp_path / f"out-{manifest.suffix[1:]}"
        summary = _run(manifest, out, tiny_model_files)
        assert summary.failed == []
        assert len(summary.segmented) == 3
        outputs[manifest.suffix] = rows_by_name(out)
    for name in (image.name for image in images):
        masks = [
            [(m["segmentation"]["counts"], m["prompt_index"]) for m in out[name]["masks"]]
            for out in outputs.values()
        ]
        assert masks[0] == masks[1] == masks[2]
    first = outputs[".jsonl"]
    assert [len(first[image.name]["masks"]) for image in images] == [2, 1, 2]
    assert first[images[0].name]["tag"] == "a"
    assert first[images[1].name]["n"] == 3
    assert outputs[".csv"][images[1].name]["n"] == "3"  # CSV cells other than prompts are text
    assert first[images[0].name]["height"] == 48
    assert first[images[0].name]["width"] == 64


def test_relative_paths_are_relative_to_the_manifest(tmp_path: Path) -> None:
    images = write_images(tmp_path / "data" / "sub", 1)
    manifest = tmp_path / "data" / "m.jsonl"
    manifest.write_text(json.dumps({"path": "sub/" + images[0].name, "boxes": [[0, 0, 5, 5]]}))
    (item,) = read_items(manifest)
    assert item.name == "sub/" + images[0].name
    assert Path(item.location) == images[0].resolve()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"path": "a.png", "masks": 1}], "masks"),
        ([{"path": "a.png", "sha256": "x"}], "sha256"),
        ([{"file": "a.png"}], "no 'path' or 'uri'"),
    ],
)
def test_unusable_manifests_are_usage_errors(
    tmp_path: Path, rows: list[dict[str, object]], message: str
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InvalidInputError, match=message):
        read_items(manifest)
    result = cli(manifest, "--output", tmp_path / "out", "--encoder", "x", "--decoder", "y")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_prompt_columns_with_everything_are_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "a.png", "boxes": [[0, 0, 1, 1]]}))
    with pytest.raises(InvalidInputError, match="everything"):
        read_items(manifest, everything=True)


def test_bad_images_and_rows_are_recorded_and_skipped(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    images = write_images(tmp_path / "data", 2)
    (tmp_path / "data" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "data" / "text.jpg").write_text("hello")
    rows = [
        {"path": images[0].name, "boxes": [[0, 0, 10, 10]]},
        {"path": "broken.png", "boxes": [[0, 0, 10, 10]]},
        {"path": "text.jpg", "points": [[1, 1]]},
        {"path": "missing.png", "points": [[1, 1]]},
        {"path": images[1].name, "boxes": [[0, 0, 10]]},
        {"path": images[1].name, "points": [[1, 1]], "labels": [1, 0]},
        {"path": images[1].name, "boxes": [[0, 0, float("nan"), 1]]},
        {"boxes": [[0, 0, 1, 1]]},
        {"path": images[1].name},
    ]
    manifest = tmp_path / "data" / "m.jsonl"
    lines = [json.dumps(row) for row in rows] + ["{not json"]
    manifest.write_text("\n".join(lines) + "\n")
    output = tmp_path / "out"
    result = cli(manifest, "--output", output, "--quiet", *model_args(tiny_model_files))
    assert result.returncode == 1, result.stderr
    assert "1 segmented" in result.stdout
    assert "9 failed" in result.stdout
    errors = [json.loads(line) for line in (output / ERRORS_FILE).read_text().splitlines()]
    assert len(errors) == 9
    reasons = {error["path"]: error["error"] for error in errors}
    assert "could not be read" in reasons["broken.png"]
    assert "could not be read" in reasons["text.jpg"]
    assert "does not exist" in reasons["missing.png"]
    assert any("one entry per point" in error["error"] for error in errors)
    assert any("finite" in error["error"] for error in errors)
    assert any("not JSON" in error["error"] for error in errors)
    assert any("no prompts" in error["error"] for error in errors)
    assert list(rows_by_name(output)) == [images[0].name]


def test_resume_skips_done_images_and_redoes_changed_ones(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    folder = tmp_path / "data"
    images = write_images(folder, 4)
    output = tmp_path / "out"
    options = {"everything": True, "everything_options": {"points_per_side": 2}}
    first = _run(folder, output, tiny_model_files, **options)
    assert len(first.segmented) == 4
    assert len(first.shards) == 1
    again = _run(folder, output, tiny_model_files, **options)
    assert again.segmented == []
    assert len(again.already_done) == 4
    assert again.shards == []
    # A changed file is done again; new files are added; nothing is duplicated per content.
    changed = np.zeros((20, 30, 3), dtype=np.uint8)
    from PIL import Image

    Image.fromarray(changed).save(images[1])
    write_images(tmp_path / "more", 5)[4].rename(folder / "new.png")
    third = _run(folder, output, tiny_model_files, **options)
    assert sorted(third.segmented) == [images[1].name, "new.png"]
    keys = [(row["path"], row["sha256"]) for row in iter_rows(output)]
    assert len(keys) == len(set(keys)) == 6
    latest = {row["path"]: row for row in iter_rows(output)}
    assert (latest[images[1].name]["height"], latest[images[1].name]["width"]) == (20, 30)


def test_recursive_folder(tmp_path: Path, tiny_model_files: dict[str, Path]) -> None:
    write_images(tmp_path / "data", 1)
    write_images(tmp_path / "data" / "deeper", 2)
    assert [item.name for item in read_items(tmp_path / "data")] == ["img0000.png"]
    names = [item.name for item in read_items(tmp_path / "data", recursive=True)]
    assert names == ["deeper/img0000.png", "deeper/img0001.png", "img0000.png"]


# pycocotools' Cython decode trips numpy 2's __array__(copy=...) deprecation; not ours.
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_coco_merge_is_readable_by_pycocotools(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    from pycocotools.coco import COCO

    images = write_images(tmp_path / "data", 3)
    manifest = tmp_path / "data" / "m.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in _rows(images)[:2]))
    output = tmp_path / "out"
    _run(manifest, output, tiny_model_files)  # first run: two images
    manifest.write_text("".join(json.dumps(row) + "\n" for row in _rows(images)))
    coco_file = tmp_path / "all.json"
    result = cli(
        manifest, "--output", output, "--coco", coco_file, "--format", "jsonl", "--quiet",
        *model_args(tiny_model_files),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 segmented, 2 already done" in result.stdout
    coco = COCO(str(coco_file))
    names = sorted(image["file_name"] for image in coco.dataset["images"])
    assert names == sorted(image.name for image in images)
    rows = rows_by_name(output)
    assert len(coco.getAnnIds()) == sum(len(row["masks"]) for row in rows.values()) == 5
    for image in coco.dataset["images"]:
        row = rows[image["file_name"]]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert len(anns) == len(row["masks"])
        for ann, record in zip(anns, row["masks"], strict=True):
            expected = rle_to_mask(record["segmentation"])
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), expected)
            assert ann["area"] == int(expected.sum())


def test_journal_left_by_a_stopped_run_is_recovered(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    folder = tmp_path / "data"
    write_images(folder, 3)
    output = tmp_path / "out"
    _run(folder, tmp_path / "clean", tiny_model_files, everything=True,
         everything_options={"points_per_side": 2}, output_format="jsonl")  # fmt: skip
    rows = list(iter_rows(tmp_path / "clean"))
    journal = output / "_journal"
    journal.mkdir(parents=True)
    complete = "".join(json.dumps(row) + "\n" for row in rows[:2])
    (journal / "part-19990101T000000-aaaaaa-00000.jsonl").write_text(complete + '{"path": "im')
    summary = _run(folder, output, tiny_model_files, everything=True,
                   everything_options={"points_per_side": 2})  # fmt: skip
    assert summary.recovered == 2
    assert len(summary.already_done) == 2
    assert len(summary.segmented) == 1
    assert not journal.exists()
    assert rows_by_name(output).keys() == {row["path"] for row in rows}


def _journal_lines(output: Path) -> int:
    journal = output / "_journal"
    if not journal.is_dir():
        return 0
    return sum(path.read_bytes().count(b"\n") for path in journal.glob("*.jsonl"))


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_resumes_to_a_complete_duplicate_free_output(
    tmp_path: Path, tiny_model_files: dict[str, Path], stop: signal.Signals
) -> None:
    folder = tmp_path / "data"
    count = 60
    write_images(folder, count, size=(300, 400))
    output = tmp_path / "out"
    args = [folder, "--output", output, "--everything", "--points-per-side", "2", "--quiet",
            "--shard-size", "15", *model_args(tiny_model_files)]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "edgesam.cli", "batch", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        # Stop it once a shard is written and more rows wait in the journal.
        while time.monotonic() < deadline and process.poll() is None:
            shards = list(output.glob("part-*"))
            if shards and _journal_lines(output) >= 3:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run finished before it could be interrupted"
        process.send_signal(stop)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if stop == signal.SIGINT:
        assert process.returncode == 130
    done_before = len(rows_by_name(output)) + _journal_lines(output)
    assert 0 < done_before < count
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"{count - done_before} segmented" in result.stdout or stop == signal.SIGINT
    rows = rows_by_name(output)  # fails on duplicates
    assert len(rows) == count
    assert not (output / "_journal").exists()
    assert not list(output.glob(".*tmp"))
    # The same masks as an uninterrupted run.
    clean = tmp_path / "clean"
    assert cli(*[clean if a == output else a for a in args]).returncode == 0
    reference = rows_by_name(clean)
    for name, row in rows.items():
        assert row["masks"] == reference[name]["masks"], name


def test_a_folder_without_everything_is_a_usage_error(tmp_path: Path) -> None:
    write_images(tmp_path / "data", 1)
    result = cli(
        tmp_path / "data", "--output", tmp_path / "out", "--encoder", "e", "--decoder", "d"
    )
    assert result.returncode == 2
    assert "--everything" in result.stderr
