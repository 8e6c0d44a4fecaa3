"""Run-length encoding of masks, in COCO's two forms, without pycocotools.

COCO flattens a mask in column-major (Fortran) order and counts alternating
runs of 0s and 1s, starting with 0s (so a mask whose first pixel is set starts
with a count of 0):

- *uncompressed RLE*: ``{"size": [h, w], "counts": [int, ...]}``, what
  segment_anything's generator keeps internally and returns with
  ``output_mode="uncompressed_rle"``;
- *compressed RLE*: the same counts packed into an ASCII string by
  pycocotools' ``rleToString`` (each count after the second is stored as the
  difference to the count two places back, in 5-bit groups, least significant
  first, offset by 48, bit 0x20 meaning "another group follows", sign taken
  from bit 0x10 of the last group). ``{"size": [h, w], "counts": str}`` is what
  ``pycocotools.mask.encode`` returns (as bytes) and COCO JSON files hold.

Everything here is vectorised: encoding finds the transitions of each column
on the row-major mask (no transposed copy), and the string codec packs or
unpacks all 5-bit groups at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from edgesam._validate import binary_mask
from edgesam.errors import InvalidInputError

__all__ = [
    "CocoRle",
    "UncompressedRle",
    "area_from_rle",
    "coco_decode_rle",
    "coco_encode_rle",
    "counts_from_string",
    "counts_to_string",
    "mask_to_coco_rle",
    "mask_to_rle",
    "masks_to_rle",
    "rle_to_mask",
]

# Counts are below 2**32, so their deltas fit 35-bit two's complement: 7 groups of 5
# bits. Decoding accepts up to 12 groups (60 bits), more than pycocotools ever writes.
_MAX_GROUPS = 7
_MAX_DECODE_GROUPS = 12
_ASCII_OFFSET = 48
# Tile edge for the transposing copy in decoding (cache-sized blocks).
_TILE = 256


class UncompressedRle(TypedDict):
    """COCO uncompressed RLE: ``size`` is ``[h, w]``; ``counts`` alternate 0-runs and 1-runs."""

    size: list[int]
    counts: list[int]


class CocoRle(TypedDict):
    """COCO compressed RLE: ``size`` is ``[h, w]``; ``counts`` is pycocotools' ASCII string."""

    size: list[int]
    counts: str


def masks_to_rle(masks: object) -> list[UncompressedRle]:
    """Encode a stack of binary masks as COCO uncompressed RLEs.

    Parameters
    ----------
    masks : ndarray of bool, shape (B, H, W)
        Binary masks (numbers are read as ``!= 0``).

    Returns
    -------
    list of dict
        ``{"size": [H, W], "counts": [...]}`` per mask, counts in column-major
        order starting with the number of leading 0s; identical to
        segment_anything's ``mask_to_rle_pytorch`` and accepted by
        ``pycocotools.mask.frPyObjects``.
    """
    stack = binary_mask(masks, "masks", ndim=3)
    # One mask at a time: its temporaries stay in cache (a whole batch at once is
    # ~10x slower per mask).
    return [_encode(stack[index]) for index in range(stack.shape[0])]


def _encode(mask: NDArray[np.bool_]) -> UncompressedRle:
    height, width = mask.shape
    total = height * width
    if total == 0:
        return {"size": [height, width], "counts": [0]}
    # Column-major position p = c * H + r. A run boundary sits before p wherever the
    # pixel differs from the one before it in that order: inside a column (row r-1 -> r),
    # or across a column break (last row of column c-1 -> first row of column c).
    r_in, c_in = np.divmod(np.flatnonzero(mask[1:, :] != mask[:-1, :]), width)
    c_br = np.flatnonzero(mask[-1, :-1] != mask[0, 1:]) + 1
    # Into column-major order: the inside transitions come row by row, so a stable
    # sort on the column alone orders them (a radix sort on 16-bit keys: linear even
    # for noisy masks); a break sorts before the inside transitions of its column.
    columns = np.concatenate([c_br, c_in])
    positions = np.concatenate([c_br * height, c_in * height + r_in + 1])
    key_type = np.uint16 if width <= np.iinfo(np.uint16).max else np.uint32
    boundaries = positions[np.argsort(columns.astype(key_type), kind="stable")]
    counts: list[int] = np.diff(boundaries, prepend=0, append=total).tolist()
    if mask[0, 0]:
        counts.insert(0, 0)
    return {"size": [height, width], "counts": counts}


def mask_to_rle(mask: object) -> UncompressedRle:
    """Encode one binary mask of shape (H, W) as a COCO uncompressed RLE.

    See :func:`masks_to_rle`.
    """
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InvalidInputError(f"mask must have shape (H, W): got shape {array.shape}")
    return masks_to_rle(array[None])[0]


def _size_and_counts(rle: Mapping[str, object]) -> tuple[int, int, object]:
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise InvalidInputError(
            f"an RLE must be a mapping with 'size' ([h, w]) and 'counts': got {type(rle).__name__}"
        )
    size = rle["size"]
    if not isinstance(size, Sequence) or len(size) != 2:
        raise InvalidInputError(f"RLE 'size' must be [h, w]: got {size!r}")
    height, width = (int(value) for value in size)
    if height < 0 or width < 0:
        raise InvalidInputError(f"RLE 'size' must not be negative: got {size!r}")
    return height, width, rle["counts"]


def _checked_counts(counts: object, total: int) -> NDArray[np.int64]:
    array = np.asarray(counts, dtype=np.int64).reshape(-1)
    if array.size and array.min() < 0:
        raise InvalidInputError("RLE counts must not be negative")
    if int(array.sum()) != total:
        raise InvalidInputError(
            f"RLE counts must add up to h * w = {total} pixels: they add up to {int(array.sum())}"
        )
    return array


def _transpose(array: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """C-contiguous ``array.T``, tile by tile: ~2x faster than one strided copy."""
    source = array.view(np.uint8)
    rows, cols = source.shape
    result = np.empty((cols, rows), dtype=np.uint8)
    for top in range(0, cols, _TILE):
        for left in range(0, rows, _TILE):
            result[top : top + _TILE, left : left + _TILE] = source[
                left : left + _TILE, top : top + _TILE
            ].T
    return result.view(np.bool_)


def _decode_counts(counts: NDArray[np.int64], height: int, width: int) -> NDArray[np.bool_]:
    return _transpose(_transposed_from_counts(counts, height, width))


def _transposed_from_counts(
    counts: NDArray[np.int64], height: int, width: int
) -> NDArray[np.bool_]:
    values = np.zeros(counts.size, dtype=np.bool_)
    values[1::2] = True
    return np.repeat(values, counts).reshape(width, height)


def rle_to_transposed_mask(rle: Mapping[str, object]) -> NDArray[np.bool_]:
    """Decode an uncompressed RLE to the *transposed* mask, shape (w, h), C-contiguous.

    The column-major data as it comes (no transposing copy): for work that does
    not care about orientation, such as connected components.
    """
    height, width, counts = _size_and_counts(rle)
    checked = _checked_counts(np.asarray(counts, dtype=np.int64).reshape(-1), height * width)
    return _transposed_from_counts(checked, height, width)


def transposed_mask_to_rle(transposed: NDArray[np.bool_]) -> UncompressedRle:
    """Encode a transposed mask (w, h), as :func:`rle_to_transposed_mask` gives it.

    Its row-major order is the mask's column-major order, so the runs are
    those of the flat array.
    """
    width, height = transposed.shape
    flat = np.ascontiguousarray(transposed).reshape(-1)
    if flat.size == 0:
        return {"size": [height, width], "counts": [0]}
    boundaries = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts: list[int] = np.diff(boundaries, prepend=0, append=flat.size).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return {"size": [height, width], "counts": counts}


def rle_to_mask(rle: Mapping[str, object]) -> NDArray[np.bool_]:
    """Decode a COCO RLE (uncompressed, or compressed with string/bytes counts).

    Parameters
    ----------
    rle : dict
        ``{"size": [h, w], "counts": ...}`` as made by :func:`mask_to_rle`,
        :func:`coco_encode_rle` or pycocotools.

    Returns
    -------
    ndarray of bool, shape (h, w)
        C-contiguous.
    """
    height, width, counts = _size_and_counts(rle)
    if isinstance(counts, (str, bytes)):
        decoded = counts_from_string(counts)
    else:
        decoded = np.asarray(counts, dtype=np.int64).reshape(-1)
    return _decode_counts(_checked_counts(decoded, height * width), height, width)


def coco_decode_rle(rle: Mapping[str, object]) -> NDArray[np.bool_]:
    """Alias of :func:`rle_to_mask`, named after pycocotools' ``mask.decode``."""
    return rle_to_mask(rle)


def area_from_rle(rle: Mapping[str, object]) -> int:
    """The number of set pixels of an RLE mask: the sum of its 1-runs.

    Works on uncompressed and compressed RLEs without decoding the mask.
    """
    _, _, counts = _size_and_counts(rle)
    if isinstance(counts, (str, bytes)):
        return int(counts_from_string(counts)[1::2].sum())
    return int(np.asarray(counts, dtype=np.int64).reshape(-1)[1::2].sum())


def counts_to_string(counts: Sequence[int] | NDArray[np.integer]) -> str:
    """Pack RLE counts into pycocotools' compressed ASCII string.

    Parameters
    ----------
    counts : sequence of int
        Uncompressed counts (each below 2**32, as pycocotools stores them).

    Returns
    -------
    str
        Identical to ``pycocotools.mask.encode(...)["counts"].decode()``.
    """
    values = np.asarray(counts, dtype=np.int64).reshape(-1)
    if values.size == 0:
        return ""
    if values.min() < 0 or values.max() >= 2**32:
        raise InvalidInputError("RLE counts must be in [0, 2**32) to be compressed")
    deltas = values.copy()
    deltas[3:] -= values[1:-2]
    # Group j of x is (x >> 5j) & 31; x needs the fewest groups g >= 1 whose last group,
    # read as a signed 5-bit number, carries the sign: -2**(5g-1) <= x < 2**(5g-1).
    shifts = 5 * np.arange(_MAX_GROUPS, dtype=np.int64)
    groups = (deltas[:, None] >> shifts[None, :]) & 0x1F
    bounds = np.int64(1) << (5 * np.arange(1, _MAX_GROUPS, dtype=np.int64) - 1)
    too_wide = (deltas[:, None] >= bounds[None, :]) | (deltas[:, None] < -bounds[None, :])
    n_groups = 1 + np.count_nonzero(too_wide, axis=1)
    column = np.arange(_MAX_GROUPS)[None, :]
    used = column < n_groups[:, None]
    more = column < (n_groups - 1)[:, None]
    chars = groups + np.where(more, 0x20, 0) + _ASCII_OFFSET
    packed: bytes = chars[used].astype(np.uint8).tobytes()
    return packed.decode("ascii")


def counts_from_string(string: str | bytes) -> NDArray[np.int64]:
    """Unpack pycocotools' compressed RLE string into uncompressed counts.

    Parameters
    ----------
    string : str or bytes
        The ``counts`` of a compressed RLE (pycocotools gives bytes, JSON str).

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    raw = string.encode("ascii") if isinstance(string, str) else bytes(string)
    codes = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - _ASCII_OFFSET
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if codes.min() < 0 or codes.max() > 0x3F:
        raise InvalidInputError(
            "not a COCO compressed RLE string: characters must lie between '0' and 'o'"
        )
    last = np.flatnonzero((codes & 0x20) == 0)
    if last.size == 0 or last[-1] != codes.size - 1:
        raise InvalidInputError("truncated COCO compressed RLE string: the last count is cut off")
    first = np.concatenate([[0], last[:-1] + 1])
    lengths = last - first + 1
    if lengths.max() > _MAX_DECODE_GROUPS:
        raise InvalidInputError("COCO compressed RLE string holds a count that is too large")
    owner = np.repeat(np.arange(last.size), lengths)
    group = np.arange(codes.size) - first[owner]
    contributions = (codes & 0x1F) << (5 * group)
    deltas = np.zeros(last.size, dtype=np.int64)
    np.add.at(deltas, owner, contributions)
    negative = (codes[last] & 0x10) != 0
    deltas[negative] -= np.int64(1) << (5 * lengths[negative])
    # Undo the deltas: counts[i] = deltas[i] + counts[i - 2] for i > 2, i.e. running
    # sums along the odd indices (from 1) and along the even ones (from 2).
    counts: NDArray[np.int64] = deltas.copy()
    counts[1::2] = np.cumsum(deltas[1::2])
    counts[2::2] = np.cumsum(deltas[2::2])
    return counts


def coco_encode_rle(uncompressed_rle: Mapping[str, object]) -> CocoRle:
    """Compress an uncompressed RLE into COCO's JSON-ready form.

    Parameters
    ----------
    uncompressed_rle : dict
        ``{"size": [h, w], "counts": [int, ...]}``.

    Returns
    -------
    dict
        ``{"size": [h, w], "counts": str}``, as segment_anything's
        ``coco_encode_rle`` returns it (pycocotools' string, decoded to str).
    """
    height, width, counts = _size_and_counts(uncompressed_rle)
    if isinstance(counts, (str, bytes)):
        raise InvalidInputError("this RLE is already compressed (its counts are a string)")
    checked = _checked_counts(counts, height * width)
    return {"size": [height, width], "counts": counts_to_string(checked)}


def mask_to_coco_rle(mask: object) -> CocoRle:
    """Encode one binary mask (H, W) straight to COCO compressed RLE.

    Equivalent to ``pycocotools.mask.encode(np.asfortranarray(mask.astype(np.uint8)))``
    with the counts as str.
    """
    return coco_encode_rle(mask_to_rle(mask))
