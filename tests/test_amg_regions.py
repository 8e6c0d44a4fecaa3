"""Connected components and small-region removal, against hand counts and a flood fill."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from edgesam import InvalidInputError
from edgesam.amg import label_components, remove_small_regions


def _grid(text: str) -> np.ndarray:
    return np.array([[c == "#" for c in line.split()] for line in text.strip().splitlines()])


def _flood_fill_labels(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """Reference: scan in raster order, flood-fill each new component with the next label."""
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    labels = np.zeros(mask.shape, dtype=np.int32)
    height, width = mask.shape
    current = 0
    for y in range(height):
        for x in range(width):
            if mask[y, x] and not labels[y, x]:
                current += 1
                labels[y, x] = current
                queue = deque([(y, x)])
                while queue:
                    cy, cx = queue.popleft()
                    for dy, dx in steps:
                        ny, nx = cy + dy, cx + dx
                        inside = 0 <= ny < height and 0 <= nx < width
                        if inside and mask[ny, nx] and not labels[ny, nx]:
                            labels[ny, nx] = current
                            queue.append((ny, nx))
    return labels


FOUR_BLOBS = _grid(
    """
    # # . . .
    . . . # .
    . . . . #
    # . . . .
    # # . # #
    """
)


def test_components_by_hand_8_connected() -> None:
    labels, areas = label_components(FOUR_BLOBS)
    expected = np.array(
        [
            [1, 1, 0, 0, 0],
            [0, 0, 0, 2, 0],
            [0, 0, 0, 0, 2],  # joined to the pixel above-left by a corner
            [3, 0, 0, 0, 0],
            [3, 3, 0, 4, 4],
        ]
    )
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int32
    assert areas.tolist() == [16, 2, 2, 3, 2]  # areas[0]: the 16 background pixels


def test_components_by_hand_4_connected() -> None:
    labels, areas = label_components(FOUR_BLOBS, connectivity=4)
    assert labels[1, 3] == 2
    assert labels[2, 4] == 3  # a corner does not join with 4-connectivity
    assert areas.tolist() == [16, 2, 1, 1, 3, 2]


def test_u_shape_merges_below_into_one_component() -> None:
    # The two arms are separate runs until the bottom row joins them.
    mask = _grid(
        """
        # . #
        # . #
        # # #
        """
    )
    labels, areas = label_components(mask)
    np.testing.assert_array_equal(labels, mask.astype(np.int32))
    assert areas.tolist() == [2, 7]


def test_staircase_is_one_component_only_with_8_connectivity() -> None:
    mask = np.eye(6, dtype=bool)
    assert label_components(mask)[1].tolist() == [30, 6]
    assert label_components(mask, 4)[1].tolist() == [30] + [1] * 6


def test_empty_and_full_masks() -> None:
    labels, areas = label_components(np.zeros((3, 4), dtype=bool))
    assert not labels.any()
    assert areas.tolist() == [12]
    labels, areas = label_components(np.ones((3, 4), dtype=np.uint8))
    assert (labels == 1).all()
    assert areas.tolist() == [0, 12]


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", range(4))
def test_labels_match_flood_fill(connectivity: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(15):
        height, width = (int(v) for v in rng.integers(1, 25, size=2))
        mask = rng.random((height, width)) < rng.random()
        labels, areas = label_components(mask, connectivity)
        expected = _flood_fill_labels(mask, connectivity)
        np.testing.assert_array_equal(labels, expected)
        np.testing.assert_array_equal(areas, np.bincount(expected.ravel(), minlength=len(areas)))
        assert len(areas) == expected.max() + 1


# -- remove_small_regions -------------------------------------------------------------------


BLOB_AND_DOT = _grid(
    """
    # # # . .
    # # # . .
    # # # . .
    . . . . #
    """
)


def test_small_island_is_removed() -> None:
    cleaned, changed = remove_small_regions(BLOB_AND_DOT, 2, "islands")
    assert changed
    expected = BLOB_AND_DOT.copy()
    expected[3, 4] = False
    np.testing.assert_array_equal(cleaned, expected)


def test_threshold_is_strictly_less_than() -> None:
    cleaned, changed = remove_small_regions(BLOB_AND_DOT, 1, "islands")
    assert not changed
    assert cleaned is BLOB_AND_DOT


def test_diagonal_pixels_form_one_island() -> None:
    mask = _grid(
        """
        # . .
        . # .
        . . .
        """
    )
    assert remove_small_regions(mask, 2, "islands") == (mask, False)


def test_all_small_islands_keep_the_largest() -> None:
    mask = _grid(
        """
        # # . . .
        . . . # #
        . . . # .
        """
    )
    cleaned, changed = remove_small_regions(mask, 10, "islands")
    assert changed
    expected = np.zeros_like(mask)
    expected[1:, 3] = True
    expected[1, 4] = True
    np.testing.assert_array_equal(cleaned, expected)


def test_equal_small_islands_keep_the_first() -> None:
    mask = _grid(
        """
        . . # #
        . . . .
        # # . .
        """
    )
    cleaned, changed = remove_small_regions(mask, 10, "islands")
    assert changed
    expected = np.zeros_like(mask)
    expected[0, 2:] = True
    np.testing.assert_array_equal(cleaned, expected)


def test_single_small_island_is_kept_but_reported_changed() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 1] = True
    cleaned, changed = remove_small_regions(mask, 5, "islands")
    assert changed  # segment_anything reports it, although the mask is the same
    np.testing.assert_array_equal(cleaned, mask)


def test_small_hole_is_filled_but_the_outside_is_not() -> None:
    mask = np.zeros((7, 7), dtype=bool)
    mask[1:6, 1:6] = True
    mask[3, 3] = False  # one-pixel hole
    cleaned, changed = remove_small_regions(mask, 2, "holes")
    assert changed
    expected = np.zeros((7, 7), dtype=bool)
    expected[1:6, 1:6] = True
    np.testing.assert_array_equal(cleaned, expected)


def test_small_background_touching_the_border_counts_as_a_hole() -> None:
    mask = np.ones((4, 4), dtype=bool)
    mask[0, 0] = False
    cleaned, changed = remove_small_regions(mask, 2, "holes")
    assert changed
    assert cleaned.all()


def test_holes_use_8_connectivity_of_the_background() -> None:
    # The anti-diagonal splits the background into two 3-pixel triangles that touch
    # at corners: one 6-pixel region with 8-connectivity, so nothing below 4 is filled.
    mask = _grid(
        """
        . . #
        . # .
        # . .
        """
    )
    assert remove_small_regions(mask, 4, "holes") == (mask, False)
    cleaned, changed = remove_small_regions(mask, 7, "holes")
    assert changed
    assert cleaned.all()


def test_holes_then_islands_as_the_generator_runs_them() -> None:
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:25, 5:30] = True
    mask[10, 10] = False  # hole of 1
    mask[15:17, 20:22] = False  # hole of 4
    mask[28, 38] = True  # island of 1
    filled, changed_holes = remove_small_regions(mask, 3, "holes")
    cleaned, changed_islands = remove_small_regions(filled, 3, "islands")
    assert changed_holes
    assert changed_islands
    expected = np.zeros((30, 40), dtype=bool)
    expected[5:25, 5:30] = True
    expected[15:17, 20:22] = False  # 4 pixels >= 3: kept as a hole
    np.testing.assert_array_equal(cleaned, expected)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="mode"):
        remove_small_regions(BLOB_AND_DOT, 2, "blobs")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"\(H, W\)"):
        remove_small_regions(np.zeros((2, 2, 2), dtype=bool), 2, "holes")
    with pytest.raises(InvalidInputError, match="connectivity"):
        label_components(BLOB_AND_DOT, connectivity=6)
    with pytest.raises(InvalidInputError, match="area_thresh"):
        remove_small_regions(BLOB_AND_DOT, "big", "holes")  # type: ignore[arg-type]
