"""Mask writers: PNGs + metadata.csv as scripts/amg.py, COCO JSON, overlays, atomicity."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edgesam import InvalidInputError
from edgesam._formats import (
    METADATA_HEADER,
    records_to_coco,
    render_overlay,
    save_binary_mask,
    save_overlay,
    write_coco_json,
    write_masks_to_folder,
)
from edgesam.amg import mask_to_coco_rle, mask_to_rle

# pycocotools' Cython decode trips numpy 2's __array__(copy=...) deprecation; not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _masks() -> tuple[np.ndarray, np.ndarray]:
    first = np.zeros((6, 8), dtype=bool)
    first[1:4, 2:7] = True  # 15 pixels, box x 2..6, y 1..3
    second = np.zeros((6, 8), dtype=bool)
    second[5, 0] = True
    return first, second


def _records() -> list[dict[str, Any]]:
    first, second = _masks()
    return [
        {
            "segmentation": first,
            "area": 15,
            "bbox": [2, 1, 4, 2],
            "predicted_iou": float(np.float32(0.95)),
            "point_coords": [[4.5, 2.25]],
            "stability_score": 1.0,
            "crop_box": [0, 0, 8, 6],
        },
        {  # numpy scalars and an RLE segmentation are accepted too
            "segmentation": mask_to_rle(second),
            "area": np.int64(1),
            "bbox": np.array([0, 5, 0, 0]),
            "predicted_iou": np.float32(0.9),
            "point_coords": [[np.float64(0.5), np.float64(5.5)]],
            "stability_score": np.float32(0.96),
            "crop_box": [0, 0, 8, 6],
        },
    ]


def test_metadata_csv_is_exactly_segment_anythings(tmp_path: Path) -> None:
    written = write_masks_to_folder(_records(), tmp_path / "out")
    assert [path.name for path in written] == ["0.png", "1.png", "metadata.csv"]
    text = (tmp_path / "out" / "metadata.csv").read_text()
    # str() of Python floats made from float32 values, as torch's .item() gives them;
    # rows joined by "\n" with no newline at the end.
    assert text == (
        "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,"
        "predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h\n"
        "0,15,2,1,4,2,4.5,2.25,0.949999988079071,1.0,0,0,8,6\n"
        "1,1,0,5,0,0,0.5,5.5,0.8999999761581421,0.9599999785423279,0,0,8,6"
    )
    assert text.splitlines()[0] == METADATA_HEADER


def test_mask_pngs_are_8_bit_0_and_255(tmp_path: Path) -> None:
    write_masks_to_folder(_records(), tmp_path)
    for index, mask in enumerate(_masks()):
        with Image.open(tmp_path / f"{index}.png") as image:
            assert image.mode == "L"
            pixels = np.asarray(image)
        np.testing.assert_array_equal(pixels, mask.astype(np.uint8) * 255)


def test_no_records_still_writes_the_header(tmp_path: Path) -> None:
    write_masks_to_folder([], tmp_path)
    assert (tmp_path / "metadata.csv").read_text() == METADATA_HEADER


def test_missing_field_names_the_field(tmp_path: Path) -> None:
    record = _records()[0]
    del record["stability_score"]
    with pytest.raises(InvalidInputError, match="stability_score"):
        write_masks_to_folder([record], tmp_path)
    with pytest.raises(InvalidInputError, match="segmentation"):
        write_masks_to_folder([{"area": 3}], tmp_path)


def test_writes_leave_no_temporary_files_and_overwrite(tmp_path: Path) -> None:
    write_masks_to_folder(_records(), tmp_path)
    write_masks_to_folder(_records()[:1], tmp_path)
    names = sorted(os.listdir(tmp_path))
    # Nothing is deleted: 1.png is left from the first, larger run (use a new folder, as
    # scripts/amg.py does); metadata.csv lists what belongs to the latest run.
    assert names == ["0.png", "1.png", "metadata.csv"]
    assert (tmp_path / "metadata.csv").read_text().count("\n") == 1


def test_failed_write_leaves_the_old_file_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "mask.png"
    target.write_bytes(b"old")

    def broken_replace(source: str, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_binary_mask(_masks()[0], target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["mask.png"]


def test_coco_json_loads_in_pycocotools(tmp_path: Path) -> None:
    coco_module = pytest.importorskip("pycocotools.coco")
    path = write_coco_json(_records(), tmp_path / "masks.json", file_name="photo.jpg")
    coco = coco_module.COCO(str(path))
    assert coco.getImgIds() == [1]
    assert coco.imgs[1] == {"id": 1, "height": 6, "width": 8, "file_name": "photo.jpg"}
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [annotation["id"] for annotation in annotations] == [1, 2]
    for annotation, mask in zip(annotations, _masks(), strict=True):
        np.testing.assert_array_equal(coco.annToMask(annotation), mask)
        assert isinstance(annotation["segmentation"]["counts"], str)
        assert annotation["iscrowd"] == 0
        assert annotation["category_id"] == 1
    assert annotations[0]["bbox"] == [2, 1, 4, 2]
    assert annotations[0]["area"] == 15
    assert annotations[0]["score"] == annotations[0]["predicted_iou"] == 0.949999988079071
    assert annotations[1]["stability_score"] == 0.9599999785423279
    assert annotations[1]["point_coords"] == [[0.5, 5.5]]


def test_coco_keeps_a_compressed_segmentation_as_is() -> None:
    record = _records()[0]
    rle = mask_to_coco_rle(record["segmentation"])
    record["segmentation"] = rle
    document = records_to_coco([record])
    assert document["annotations"][0]["segmentation"] == rle
    json.dumps(document)  # JSON-ready


def test_coco_needs_a_size_without_records() -> None:
    with pytest.raises(InvalidInputError, match="image_size"):
        records_to_coco([])
    document = records_to_coco([], image_size=(480, 640))
    assert document["images"] == [{"id": 1, "height": 480, "width": 640}]
    assert document["annotations"] == []


def test_coco_rejects_masks_of_another_size() -> None:
    with pytest.raises(InvalidInputError, match="image's size"):
        records_to_coco(_records(), image_size=(7, 8))


# -- overlay --------------------------------------------------------------------------------


def _photo() -> np.ndarray:
    return np.full((6, 8, 3), 100, dtype=np.uint8)


def test_overlay_colours_and_blend_by_hand() -> None:
    big, _ = _masks()
    small = np.zeros_like(big)
    small[2, 4] = True  # inside the big mask: drawn on top because it is smaller
    opaque = render_overlay(_photo(), [big, small], alpha=1.0)
    # colour 0 is HSV (0, 0.75, 0.95): (242.25, 60.5625, 60.5625) -> rounded
    assert opaque[1, 2].tolist() == [242, 61, 61]
    assert opaque[2, 4].tolist() != [242, 61, 61]
    assert opaque[0, 0].tolist() == [100, 100, 100]  # uncovered
    half = render_overlay(_photo(), [big, small], alpha=0.5)
    # 0.5 * 100 + 0.5 * 242.25 = 171.125; 0.5 * 100 + 0.5 * 60.5625 = 80.28
    assert half[1, 2].tolist() == [171, 80, 80]
    np.testing.assert_array_equal(render_overlay(_photo(), [big, small], alpha=0.0), _photo())


def test_overlay_draws_small_masks_over_large_ones_in_any_order() -> None:
    big, _ = _masks()
    small = np.zeros_like(big)
    small[2, 4] = True
    forward = render_overlay(_photo(), [big, small], alpha=1.0)
    backward = render_overlay(_photo(), [small, big], alpha=1.0)
    # small keeps its own colour (index-based) and stays on top either way
    assert forward[2, 4].tolist() != forward[1, 2].tolist()
    assert backward[2, 4].tolist() != backward[1, 2].tolist()
    assert backward[2, 4].tolist() == forward[1, 2].tolist()  # colour 0 is now `small`


def test_overlay_accepts_records_and_writes_png(tmp_path: Path) -> None:
    path = save_overlay(_photo(), _records(), tmp_path / "overlay.png")
    with Image.open(path) as image:
        assert image.size == (8, 6)
        assert image.mode == "RGB"
        pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels, render_overlay(_photo(), _records()))


def test_overlay_accepts_rles_as_the_generator_returns_them() -> None:
    masks = _masks()
    rles = [mask_to_coco_rle(masks[0]), mask_to_rle(masks[1])]
    np.testing.assert_array_equal(
        render_overlay(_photo(), rles), render_overlay(_photo(), list(masks))
    )


def test_overlay_rejects_a_mask_of_another_size() -> None:
    with pytest.raises(InvalidInputError, match="image's size"):
        render_overlay(_photo(), [np.zeros((5, 8), dtype=bool)])
    with pytest.raises(InvalidInputError, match="alpha"):
        render_overlay(_photo(), [], alpha=1.5)


def test_save_binary_mask(tmp_path: Path) -> None:
    mask = _masks()[0]
    path = save_binary_mask(mask, tmp_path / "mask.png")
    with Image.open(path) as image:
        np.testing.assert_array_equal(np.asarray(image), mask.astype(np.uint8) * 255)


def test_written_files_get_normal_permissions(tmp_path: Path) -> None:
    from edgesam.formats import save_binary_mask

    reference = tmp_path / "made_normally"
    reference.write_bytes(b"")
    written = save_binary_mask(np.ones((4, 5), dtype=bool), tmp_path / "mask.png")
    assert (written.stat().st_mode & 0o777) == (reference.stat().st_mode & 0o777)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# -- bad destinations and inputs ------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda path: save_binary_mask(_masks()[0], path),
        lambda path: save_overlay(_photo(), _records(), path),
        lambda path: write_coco_json(_records(), path),
    ],
    ids=["save_binary_mask", "save_overlay", "write_coco_json"],
)
def test_file_writers_need_an_existing_folder(tmp_path: Path, write: Any) -> None:
    # As numpy.save and PIL.Image.save: a clear error naming the folder, nothing created.
    with pytest.raises(InvalidInputError, match=r"folder .*missing' does not exist") as caught:
        write(tmp_path / "missing" / "out.png")
    assert ".tmp" not in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_masks_folder_is_created_but_must_not_be_a_file(tmp_path: Path) -> None:
    written = write_masks_to_folder(_records(), tmp_path / "a" / "b")
    assert written[-1] == tmp_path / "a" / "b" / "metadata.csv"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        write_masks_to_folder(_records(), tmp_path / "file")
    with pytest.raises(InvalidInputError, match="on its path is a file"):
        write_masks_to_folder(_records(), tmp_path / "file" / "sub")


def test_float_masks_are_refused_everywhere(tmp_path: Path) -> None:
    logits = np.full((6, 8), -3.0, dtype=np.float32)  # background, as return_logits gives it
    record = dict(_records()[0], segmentation=logits)
    for call in (
        lambda: save_binary_mask(logits, tmp_path / "m.png"),
        lambda: write_masks_to_folder([record], tmp_path / "folder"),
        lambda: records_to_coco([record]),
        lambda: render_overlay(_photo(), [logits]),
    ):
        with pytest.raises(InvalidInputError, match="logits > 0"):
            call()
    assert not (tmp_path / "m.png").exists()


def test_integer_masks_count_non_zero_as_foreground(tmp_path: Path) -> None:
    mask = _masks()[0]
    path = save_binary_mask(mask.astype(np.uint8) * 255, tmp_path / "mask.PNG")
    with Image.open(path) as image:
        np.testing.assert_array_equal(np.asarray(image), mask.astype(np.uint8) * 255)


@pytest.mark.parametrize("name", ["mask.jpg", "mask.jpeg", "mask.webp", "mask.tif", "mask"])
def test_binary_masks_are_only_written_as_png(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInputError, match=r"must end in \.png"):
        save_binary_mask(_masks()[0], tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_overlay_format_follows_the_extension(tmp_path: Path) -> None:
    with Image.open(save_overlay(_photo(), _records(), tmp_path / "o.jpg")) as image:
        assert image.format == "JPEG"
    with pytest.raises(InvalidInputError, match=r"cannot write '\.xyz' files"):
        save_overlay(_photo(), _records(), tmp_path / "o.xyz")
    with pytest.raises(InvalidInputError, match="without an extension"):
        save_overlay(_photo(), _records(), tmp_path / "overlay")


@pytest.mark.parametrize(
    ("records", "match"),
    [
        (None, "got NoneType"),
        (5, "got int"),
        ("records.json", "got str"),
        ({"segmentation": np.zeros((6, 8), dtype=bool)}, "single dict"),
    ],
)
def test_records_must_be_a_list(tmp_path: Path, records: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=f"records must be a list of mask records.*{match}"):
        records_to_coco(records)
    with pytest.raises(InvalidInputError, match="records must be a list"):
        write_masks_to_folder(records, tmp_path / "out")


def test_overlay_masks_must_be_a_list() -> None:
    with pytest.raises(InvalidInputError, match=r"masks must be a list.*NoneType"):
        render_overlay(_photo(), None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"wrap it in a list \(\[mask\]\)"):
        render_overlay(_photo(), _masks()[0])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="alpha"):
        render_overlay(_photo(), [], alpha=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(6,), (6, 8, 3), (0, 8), (6.0, 8.0), "6x8", 6])
def test_coco_image_size_must_be_two_positive_integers(size: Any) -> None:
    with pytest.raises(InvalidInputError, match="image_size must be"):
        records_to_coco([], image_size=size)
