"""COCO RLE: hand-made examples, then round trips against pycocotools itself."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam import InvalidInputError
from edgesam.amg import (
    area_from_rle,
    coco_encode_rle,
    counts_from_string,
    counts_to_string,
    mask_to_coco_rle,
    mask_to_rle,
    masks_to_rle,
    rle_to_mask,
)
from edgesam.amg._rle import rle_to_transposed_mask, transposed_mask_to_rle

mask_utils = pytest.importorskip("pycocotools.mask")

# pycocotools' Cython decode trips numpy 2's __array__(copy=...) deprecation; not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _pycoco_encode(mask: np.ndarray) -> dict[str, object]:
    rle: dict[str, object] = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return rle


# -- hand-made examples ---------------------------------------------------------------------


def test_counts_are_column_major_starting_with_zeros() -> None:
    # columns read top to bottom: (0, 1, 0) then (1, 1, 0) -> 0 | 1 | 0 | 1 1 | 0
    mask = np.array([[0, 1], [1, 1], [0, 0]], dtype=bool)
    assert mask_to_rle(mask) == {"size": [3, 2], "counts": [1, 1, 1, 2, 1]}


def test_mask_starting_with_a_set_pixel_begins_with_zero_count() -> None:
    mask = np.array([[1, 0], [1, 0]], dtype=bool)
    assert mask_to_rle(mask)["counts"] == [0, 2, 2]


def test_empty_and_full_masks() -> None:
    assert mask_to_rle(np.zeros((2, 3), dtype=bool))["counts"] == [6]
    assert mask_to_rle(np.ones((2, 3), dtype=bool))["counts"] == [0, 6]


def test_compressed_string_by_hand() -> None:
    # [1, 1, 1, 2, 1]: deltas after index 2 are 2 - 1 = 1 and 1 - 1 = 0 -> "1","1","1","1","0"
    assert counts_to_string([1, 1, 1, 2, 1]) == "11110"
    # 40 = 0b1_01000: group 8 with "more" bit (8 + 32 + 48 = 88 'X'), then 1 -> '1'
    assert counts_to_string([0, 40, 3]) == "0X13"
    # [5, 2, 7, 1, 3]: index 3 stores 1 - 2 = -1 (31 + 48 'O'), index 4 stores 3 - 7 = -4
    # (28 + 48 'L'); one 5-bit group each since bit 0x10 carries the sign.
    assert counts_to_string([5, 2, 7, 1, 3]) == "527OL"


@pytest.mark.parametrize(
    "counts", [[1, 1, 1, 2, 1], [0, 40, 3], [5, 2, 7, 1, 3], [0, 2**20, 7, 2**31 + 5]]
)
def test_hand_strings_match_pycocotools(counts: list[int]) -> None:
    total = sum(counts)
    rle = mask_utils.frPyObjects({"size": [1, total], "counts": counts}, 1, total)
    assert counts_to_string(counts) == rle["counts"].decode()
    assert counts_from_string(rle["counts"]).tolist() == counts


def test_area_from_rle() -> None:
    mask = np.array([[0, 1, 1], [1, 0, 1]], dtype=bool)
    assert area_from_rle(mask_to_rle(mask)) == 4
    assert area_from_rle(mask_to_coco_rle(mask)) == 4
    assert area_from_rle({"size": [2, 2], "counts": [4]}) == 0


def test_decoded_mask_is_c_contiguous_bool() -> None:
    mask = np.array([[0, 1, 1], [1, 0, 1]], dtype=bool)
    decoded = rle_to_mask(mask_to_rle(mask))
    assert decoded.dtype == np.bool_
    assert decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, mask)


def test_stack_encodes_each_mask() -> None:
    masks = np.zeros((3, 4, 5), dtype=bool)
    masks[0, 1:3, 2] = True  # column-major: 8 + 1 zeros, 2 ones, 1 + 8 zeros
    masks[2] = True
    rles = masks_to_rle(masks)
    assert [rle["counts"] for rle in rles] == [[9, 2, 9], [20], [0, 20]]
    assert masks_to_rle(np.zeros((0, 4, 5), dtype=bool)) == []


def test_integer_masks_are_read_as_nonzero() -> None:
    assert mask_to_rle(np.array([[0, 255], [7, 0]], dtype=np.uint8))["counts"] == [1, 2, 1]


def test_transposed_helpers_by_hand() -> None:
    mask = np.array([[0, 1], [1, 1], [0, 0]], dtype=bool)
    rle = mask_to_rle(mask)  # counts [1, 1, 1, 2, 1]
    transposed = rle_to_transposed_mask(rle)
    np.testing.assert_array_equal(transposed, [[0, 1, 0], [1, 1, 0]])
    assert transposed_mask_to_rle(transposed) == rle
    assert transposed_mask_to_rle(np.ones((2, 3), dtype=bool))["counts"] == [0, 6]


@pytest.mark.parametrize("seed", [4, 5])
def test_transposed_helpers_agree_with_the_plain_ones(seed: int) -> None:
    for mask in _random_masks(seed):
        rle = mask_to_rle(mask)
        np.testing.assert_array_equal(rle_to_transposed_mask(rle), mask.T)
        assert transposed_mask_to_rle(mask.T) == rle


# -- pycocotools agreement ------------------------------------------------------------------


def _random_masks(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(1, 40, size=2))
        masks.append(rng.random((height, width)) < rng.random())
        blob = np.zeros((height, width), dtype=bool)
        blob[rng.integers(0, height) :, rng.integers(0, width) :] = True
        masks.append(blob)
    return masks


@pytest.mark.parametrize("seed", [0, 1])
def test_compressed_rle_identical_to_pycocotools(seed: int) -> None:
    for mask in _random_masks(seed):
        ours = mask_to_coco_rle(mask)
        reference = _pycoco_encode(mask)
        assert ours["counts"] == reference["counts"].decode()  # type: ignore[attr-defined]
        assert ours["size"] == list(reference["size"])  # type: ignore[call-overload]


@pytest.mark.parametrize("seed", [2, 3])
def test_round_trips_both_ways(seed: int) -> None:
    for mask in _random_masks(seed):
        height, width = mask.shape
        # ours -> pycocotools
        uncompressed = mask_to_rle(mask)
        from_uncompressed = mask_utils.frPyObjects(uncompressed, height, width)
        np.testing.assert_array_equal(mask_utils.decode(from_uncompressed), mask)
        np.testing.assert_array_equal(mask_utils.decode(dict(mask_to_coco_rle(mask))), mask)
        # pycocotools -> ours
        reference = _pycoco_encode(mask)
        np.testing.assert_array_equal(rle_to_mask(reference), mask)
        assert area_from_rle(reference) == int(mask.sum())


def test_large_counts_match_pycocotools() -> None:
    mask = np.zeros((3000, 2500), dtype=bool)
    mask[1500:, 1000:] = True
    mask[0, 0] = True
    mask[2999, 2499] = False
    reference = _pycoco_encode(mask)
    assert mask_to_coco_rle(mask)["counts"] == reference["counts"].decode()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(rle_to_mask(reference), mask)


def test_zero_sized_masks_match_pycocotools() -> None:
    for shape in [(0, 5), (4, 0)]:
        mask = np.zeros(shape, dtype=bool)
        assert mask_to_coco_rle(mask)["counts"] == _pycoco_encode(mask)["counts"].decode()  # type: ignore[attr-defined]
        assert rle_to_mask(mask_to_rle(mask)).shape == shape


def test_coco_encode_rle_matches_segment_anythings_form() -> None:
    # segment_anything: frPyObjects(uncompressed) with counts decoded to str
    mask = np.array([[0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=bool)
    uncompressed = mask_to_rle(mask)
    expected = mask_utils.frPyObjects(uncompressed, 3, 3)
    encoded = coco_encode_rle(uncompressed)
    assert encoded == {"size": [3, 3], "counts": expected["counts"].decode("utf-8")}
    assert isinstance(encoded["counts"], str)


# -- errors ---------------------------------------------------------------------------------


def test_counts_that_do_not_add_up_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="add up"):
        rle_to_mask({"size": [2, 2], "counts": [1, 2]})


def test_negative_counts_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="negative"):
        rle_to_mask({"size": [1, 2], "counts": [3, -1]})


@pytest.mark.parametrize("bad", ["0X", "0\x7f1", "!"])
def test_broken_strings_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        counts_from_string(bad)


def test_rle_must_be_a_mapping_with_size_and_counts() -> None:
    with pytest.raises(InvalidInputError, match="size"):
        rle_to_mask({"counts": [1]})
    with pytest.raises(InvalidInputError, match="already compressed"):
        coco_encode_rle({"size": [1, 1], "counts": "1"})


def test_wrong_mask_rank_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"\(H, W\)"):
        mask_to_rle(np.zeros((2, 2, 2), dtype=bool))
    with pytest.raises(InvalidInputError, match=r"\(B, H, W\)"):
        masks_to_rle(np.zeros((2, 2), dtype=bool))
