"""masks_to_polygons: polygons that pycocotools rasterises back to the mask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesam import InvalidInputError
from edgesam.formats import masks_to_polygons

mask_utils = pytest.importorskip("pycocotools.mask")

# pycocotools' Cython decode trips numpy 2's __array__(copy=...) deprecation; not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def rasterise(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """COCO's reading of a polygon segmentation: each polygon rasterised, then unioned."""
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    return mask_utils.decode(rle).astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def square_with_hole() -> np.ndarray:
    mask = np.zeros((12, 14), dtype=bool)
    mask[2:10, 3:12] = True
    mask[4:7, 5:8] = False
    return mask


def test_square_is_four_corners() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:5, 3:8] = True
    assert masks_to_polygons(mask) == [[3.0, 2.0, 8.0, 2.0, 8.0, 5.0, 3.0, 5.0]]


def test_hole_is_cut_out_of_its_region() -> None:
    mask = square_with_hole()
    polygons = masks_to_polygons(mask)
    assert len(polygons) == 1  # one region, its hole joined by a bridge
    np.testing.assert_array_equal(rasterise(polygons, *mask.shape), mask)
    # the polygon alone, not only the union, has the hole
    np.testing.assert_array_equal(rasterise(polygons[:1], *mask.shape), mask)


def test_island_inside_a_hole_is_its_own_polygon() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[1:19, 1:19] = True
    mask[4:16, 4:16] = False
    mask[7:13, 7:13] = True
    mask[9:11, 9:11] = False
    polygons = masks_to_polygons(mask)
    assert len(polygons) == 2
    for polygon in polygons:
        region = rasterise([polygon], *mask.shape)
        assert not (region & ~mask).any()  # each polygon alone stays inside the mask
    np.testing.assert_array_equal(rasterise(polygons, *mask.shape), mask)


@pytest.mark.parametrize(
    "mask",
    [
        np.eye(5, dtype=bool),  # diagonal pixels: one 8-connected region
        np.indices((16, 16)).sum(axis=0) % 2 == 0,  # checkerboard
        np.ones((7, 9), dtype=bool),  # the whole image
        np.ones((1, 1), dtype=bool),
        np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.uint8),  # 0/1 numbers
    ],
)
def test_hard_shapes_round_trip_exactly(mask: np.ndarray) -> None:
    polygons = masks_to_polygons(mask)
    np.testing.assert_array_equal(rasterise(polygons, *mask.shape), mask.astype(bool))
    assert all(len(polygon) >= 6 and len(polygon) % 2 == 0 for polygon in polygons)


def test_diagonal_pixels_are_one_region() -> None:
    assert len(masks_to_polygons(np.eye(5, dtype=bool))) == 1


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("density", [0.3, 0.5, 0.7])
def test_random_masks_round_trip_exactly(seed: int, density: float) -> None:
    mask = np.random.default_rng(seed).random((37, 53)) < density
    np.testing.assert_array_equal(rasterise(masks_to_polygons(mask), 37, 53), mask)


def test_empty_mask() -> None:
    assert masks_to_polygons(np.zeros((5, 6), dtype=bool)) == []


def blob(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth shape with a ragged rim and a few holes, like a real mask's outline."""
    yy, xx = np.mgrid[:height, :width]
    radius = np.hypot(yy - height / 2, (xx - width / 2) * 0.8)
    noise = np.random.default_rng(seed).normal(0, 1.5, (height, width))
    mask = radius + noise < 45
    mask[50:56, 70:80] = False
    return mask


def test_tolerance_simplifies_within_bounds() -> None:
    mask = blob()
    faithful = masks_to_polygons(mask)
    np.testing.assert_array_equal(rasterise(faithful, *mask.shape), mask)
    previous = sum(len(polygon) for polygon in faithful)
    for tolerance in (0.5, 1.0, 2.0):
        simplified = masks_to_polygons(mask, tolerance=tolerance)
        size = sum(len(polygon) for polygon in simplified)
        assert size < previous
        previous = size
        assert iou(rasterise(simplified, *mask.shape), mask) > 0.9


@pytest.mark.parametrize(
    ("mask", "tolerance", "match"),
    [
        (np.zeros((2, 3, 4), dtype=bool), 0.0, "2-D"),
        (np.zeros(5, dtype=bool), 0.0, "2-D"),
        (np.array([["a"]]), 0.0, "2-D boolean"),
        (np.zeros((3, 3), dtype=bool), -1.0, ">= 0"),
        (np.zeros((3, 3), dtype=bool), float("nan"), "finite number"),
        (np.zeros((3, 3), dtype=bool), "1", "number"),
        (np.zeros((3, 3), dtype=bool), True, "number"),
    ],
)
def test_bad_input(mask: np.ndarray, tolerance: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        masks_to_polygons(mask, tolerance=tolerance)  # type: ignore[arg-type]


@pytest.mark.reference
def test_reference_masks_round_trip(reference_dir: object) -> None:
    # The random-weights model's masks are ragged: thousands of regions and holes.
    vectors = np.load(Path(str(reference_dir)) / "vectors.npz")
    for key in ("truck/a/masks", "groceries/b/masks"):
        for mask in vectors[key][:1]:
            polygons = masks_to_polygons(mask)
            assert iou(rasterise(polygons, *mask.shape), mask) >= 0.98
            np.testing.assert_array_equal(rasterise(polygons, *mask.shape), mask)


# -- COCO writers and the command line --------------------------------------------------------


def test_records_to_coco_with_polygons() -> None:
    from edgesam.formats import records_to_coco

    masks = [square_with_hole(), blob(12, 14)]
    records = [
        {
            "segmentation": mask,
            "area": int(mask.sum()),
            "bbox": [0, 0, 1, 1],
            "predicted_iou": 0.9,
            "stability_score": 0.95,
            "point_coords": [[1.0, 1.0]],
            "crop_box": [0, 0, 14, 12],
        }
        for mask in masks
    ]
    document = records_to_coco(records, polygons=True)
    rle_document = records_to_coco(records)
    for mask, annotation, rle_annotation in zip(
        masks, document["annotations"], rle_document["annotations"], strict=True
    ):
        assert isinstance(annotation["segmentation"], list)
        np.testing.assert_array_equal(rasterise(annotation["segmentation"], 12, 14), mask)
        assert annotation["area"] == rle_annotation["area"]
    with pytest.raises(InvalidInputError, match="tolerance"):
        records_to_coco(records, polygons=True, polygon_tolerance=-1)


def test_everything_writes_coco_polygons(tmp_path: Path, tiny_model: object) -> None:
    from PIL import Image

    from edgesam import SamPredictor
    from edgesam._resumable_everything import segment_everything

    image = np.zeros((60, 80, 3), dtype=np.uint8)
    image[10:40, 20:60] = 200
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    predictor = SamPredictor(tiny_model)  # type: ignore[arg-type]
    for output_format in ("coco-rle", "coco-polygons"):
        segment_everything(
            predictor, [path], tmp_path / output_format, output_format=output_format, **options
        )
    rle = json.loads((tmp_path / "coco-rle" / "photo.png" / "annotations.json").read_text())
    polygons = json.loads((tmp_path / "coco-polygons" / "photo.png" / "polygons.json").read_text())
    assert len(polygons["annotations"]) == len(rle["annotations"]) > 0
    for with_polygons, with_rle in zip(polygons["annotations"], rle["annotations"], strict=True):
        expected = mask_utils.decode(
            {"size": with_rle["segmentation"]["size"], "counts": with_rle["segmentation"]["counts"]}
        ).astype(bool)
        np.testing.assert_array_equal(rasterise(with_polygons["segmentation"], 60, 80), expected)


def test_cli_segment_writes_polygons(tmp_path: Path, tiny_model_files: dict[str, Path]) -> None:
    from PIL import Image

    image_path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((120, 160, 3), dtype=np.uint8)).save(image_path)
    mask_path, polygons_path = tmp_path / "mask.png", tmp_path / "mask.json"
    command = [sys.executable, "-m", "edgesam.cli", "segment", str(image_path)]
    command += ["--point", "80,60", "--output", str(mask_path), "--polygons", str(polygons_path)]
    command += ["--encoder", str(tiny_model_files["encoder"])]
    command += ["--decoder", str(tiny_model_files["decoder"])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    document = json.loads(polygons_path.read_text())
    mask = np.asarray(Image.open(mask_path)) > 0
    assert (document["height"], document["width"]) == (120, 160)
    np.testing.assert_array_equal(rasterise(document["segmentation"], 120, 160), mask)
    bad = subprocess.run(
        [*command, "--polygon-tolerance", "-1"], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2
    assert "--polygon-tolerance" in bad.stderr


def test_tolerance_turns_a_staircase_into_a_triangle() -> None:
    mask = np.tril(np.ones((40, 40), dtype=bool))
    exact = masks_to_polygons(mask)
    assert len(exact[0]) // 2 == 2 * 40 + 2  # every step of the diagonal, two more corners
    (simplified,) = masks_to_polygons(mask, tolerance=1.0)
    assert len(simplified) // 2 == 3
    assert set(zip(simplified[::2], simplified[1::2], strict=True)) <= set(
        zip(exact[0][::2], exact[0][1::2], strict=True)
    )
    assert iou(rasterise([simplified], 40, 40), mask) > 0.95


def test_too_ragged_mask_is_refused_before_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgesam import _polygons

    mask = np.indices((8, 8)).sum(axis=0) % 2 == 0  # 32 pixels, 128 edges
    monkeypatch.setattr(_polygons, "MAX_BOUNDARY_EDGES", 127)
    with pytest.raises(InvalidInputError, match="128 pixel edges"):
        masks_to_polygons(mask)
    monkeypatch.setattr(_polygons, "MAX_BOUNDARY_EDGES", 128)
    np.testing.assert_array_equal(rasterise(masks_to_polygons(mask), 8, 8), mask)
