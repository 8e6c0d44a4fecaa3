"""The format writers validate records and never write invalid JSON or partial folders."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesam._formats import records_to_coco, write_coco_json, write_masks_to_folder
from edgesam.errors import EdgeSamError, InvalidInputError

MASK = np.zeros((4, 6), dtype=bool)
MASK[1:3, 2:5] = True
BASE: dict[str, Any] = {
    "segmentation": MASK,
    "area": 6,
    "bbox": [2, 1, 2, 1],
    "predicted_iou": 0.9,
    "point_coords": [[3.0, 2.0]],
    "stability_score": 0.95,
    "crop_box": [0, 0, 6, 4],
}


def _record(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


BAD_RECORDS = {
    "rle-bytes-not-ascii": (
        _record(segmentation={"size": [4, 6], "counts": b"\xff\xfe"}),
        "not a COCO compressed RLE",
    ),
    "rle-size-not-ints": (
        _record(segmentation={"size": [-4, "a"], "counts": "44"}),
        "'size' must be",
    ),
    "rle-gigapixel": (
        _record(segmentation={"size": [10**6, 10**6], "counts": [10**12]}),
        "more than the",
    ),
    "rle-counts-wrong-total": (_record(segmentation={"size": [4, 6], "counts": [3, 4]}), "RLE"),
    "rle-counts-kind": (_record(segmentation={"size": [4, 6], "counts": 5}), "'counts'"),
    "mask-0x0": (_record(segmentation=np.zeros((0, 0), dtype=bool)), "at least 1x1"),
    "mask-ragged": (_record(segmentation=[[True], [True, False]]), "mask of shape"),
    "nan-iou": (_record(predicted_iou=math.nan), "predicted_iou'] must be a finite number"),
    "inf-stability": (
        _record(stability_score=np.float32("inf")),
        "stability_score'] must be a finite number",
    ),
    "bool-area": (_record(area=True), "area'] must be a finite number"),
    "fractional-area": (_record(area=2.5), "non-negative whole number"),
    "bbox-string": (_record(bbox="abcd"), "bbox'] must be a list of 4 numbers"),
    "bbox-nan": (_record(bbox=[0, 0, math.nan, 1]), r"bbox'\]\[2\] must be a finite"),
    "point-object": (_record(point_coords=[[object(), 1]]), "must be a finite number"),
    "no-points": (_record(point_coords=[]), "list of \\[x, y\\] points"),
    "crop-short": (_record(crop_box=[0, 0, 6]), "crop_box'] must be a list of 4"),
}


@pytest.mark.parametrize(("record", "message"), BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_coco_json_refuses_bad_records_and_writes_nothing(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    path = tmp_path / "annotations.json"
    with pytest.raises(InvalidInputError, match=message):
        write_coco_json([_record(), record], path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("record", "message"), BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_mask_folder_refuses_bad_records_before_writing(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    folder = tmp_path / "masks"
    with pytest.raises(InvalidInputError, match=message):
        write_masks_to_folder([_record(), record], folder)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_valid_records_still_round_trip(tmp_path: Path) -> None:
    path = write_coco_json(
        [_record(), _record(segmentation=np.asarray(MASK, np.uint8))], tmp_path / "a.json"
    )
    document = json.loads(path.read_text())
    assert [a["area"] for a in document["annotations"]] == [6, 6]
    written = write_masks_to_folder([_record()], tmp_path / "m")
    assert [p.name for p in written] == ["0.png", "metadata.csv"]


_json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
    st.lists(st.lists(st.floats(-1e3, 1e3), max_size=3), max_size=3),
)


@settings(max_examples=80, deadline=None)
@given(
    field=st.sampled_from(
        ["area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"]
    ),
    value=_json_values,
)
def test_records_to_coco_gives_a_package_error_or_strict_json(field: str, value: Any) -> None:
    try:
        document = records_to_coco([_record(**{field: value})])
    except EdgeSamError:
        return
    text = json.dumps(document, allow_nan=False)  # raises on NaN/inf or odd objects
    assert json.loads(text)["annotations"][0]["area"] >= 0
