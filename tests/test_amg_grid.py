"""Point grids and crop boxes: segment_anything's numbers, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam import InvalidInputError
from edgesam.amg import build_all_layer_point_grids, build_point_grid, generate_crop_boxes


def test_one_point_grid_is_the_centre() -> None:
    np.testing.assert_array_equal(build_point_grid(1), [[0.5, 0.5]])


def test_two_by_two_grid_rows_then_columns() -> None:
    # cells of width 1/2, centres at 1/4 and 3/4; x varies fastest
    expected = [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    np.testing.assert_array_equal(build_point_grid(2), expected)


def test_four_by_four_grid_values() -> None:
    grid = build_point_grid(4)
    assert grid.shape == (16, 2)
    assert grid.dtype == np.float64
    np.testing.assert_allclose(grid[:4, 0], [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(grid[5], [0.375, 0.375])  # row 1, column 1
    np.testing.assert_allclose(grid[14], [0.625, 0.875])  # row 3, column 2


def test_layer_grids_downscale() -> None:
    grids = build_all_layer_point_grids(32, 2, 2)
    assert [grid.shape for grid in grids] == [(1024, 2), (256, 2), (64, 2)]
    same = build_all_layer_point_grids(8, 1, 1)
    assert [grid.shape for grid in same] == [(64, 2), (64, 2)]
    # int(5 / 2**1) = 2 points per side in layer 1
    assert build_all_layer_point_grids(5, 1, 2)[1].shape == (4, 2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_point_grid_rejects_bad_sizes(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="n_per_side"):
        build_point_grid(bad)  # type: ignore[arg-type]


def test_layer_without_points_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="no points"):
        build_all_layer_point_grids(2, 2, 2)  # layer 2: int(2 / 4) = 0


def test_no_crop_layers_is_the_whole_image() -> None:
    assert generate_crop_boxes((100, 200), 0, 0.3) == ([[0, 0, 200, 100]], [0])


def test_one_crop_layer_by_hand() -> None:
    # H=100, W=200, ratio 0.5: overlap = int(0.5 * 100 * 2/2) = 50,
    # crop_w = ceil((50 + 200) / 2) = 125, crop_h = ceil((50 + 100) / 2) = 75,
    # x0 in (0, 75), y0 in (0, 25); x outer, y inner.
    boxes, layers = generate_crop_boxes((100, 200), 1, 0.5)
    assert boxes == [
        [0, 0, 200, 100],
        [0, 0, 125, 75],
        [0, 25, 125, 100],
        [75, 0, 200, 75],
        [75, 25, 200, 100],
    ]
    assert layers == [0, 1, 1, 1, 1]


def test_segment_anything_defaults_on_1200x1800() -> None:
    # Layer 1: overlap int(512/1500 * 1200) = 409, crop 1105 x 805, x0 (0, 696), y0 (0, 396).
    # Layer 2: overlap int(204.8) = 204, crop 603 x 453, x0 (0, 399, 798, 1197),
    # y0 (0, 249, 498, 747).
    boxes, layers = generate_crop_boxes((1200, 1800), 2, 512 / 1500)
    assert len(boxes) == 1 + 4 + 16
    assert layers == [0] + [1] * 4 + [2] * 16
    assert boxes[1:5] == [
        [0, 0, 1105, 805],
        [0, 396, 1105, 1200],
        [696, 0, 1800, 805],
        [696, 396, 1800, 1200],
    ]
    assert boxes[5] == [0, 0, 603, 453]
    assert boxes[6] == [0, 249, 603, 702]
    assert boxes[-1] == [1197, 747, 1800, 1200]


def test_each_layer_covers_the_image() -> None:
    height, width = 317, 450
    boxes, layers = generate_crop_boxes((height, width), 3, 512 / 1500)
    for layer in range(4):
        covered = np.zeros((height, width), dtype=bool)
        for box, box_layer in zip(boxes, layers, strict=True):
            if box_layer == layer:
                x0, y0, x1, y1 = box
                covered[y0:y1, x0:x1] = True
        assert covered.all(), layer


@pytest.mark.parametrize(
    ("size", "layers", "ratio"),
    [((0, 10), 0, 0.3), ((10, 10), -1, 0.3), ((10, 10), 1, 1.5), ((10,), 0, 0.3)],
)
def test_crop_boxes_reject_bad_arguments(size: tuple[int, ...], layers: int, ratio: float) -> None:
    with pytest.raises(InvalidInputError):
        generate_crop_boxes(size, layers, ratio)  # type: ignore[arg-type]
