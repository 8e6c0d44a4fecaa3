"""Connected components of binary masks, and small-region removal, without OpenCV.

segment_anything cleans generated masks with ``cv2.connectedComponentsWithStats``
(8-connectivity) on the mask (islands) and on its complement (holes). This
module does the same labelling on runs instead of pixels:

1. each row's runs of set pixels are found with one vectorised difference;
2. a run touches the runs of the next row whose columns overlap its own,
   widened by one pixel for 8-connectivity; those pairs come from two
   ``searchsorted`` calls over all runs at once;
3. the touching pairs are merged with a vectorised union-find (hook every
   root onto the smaller root it touches, then pointer-jump until flat);
4. components are numbered 1, 2, ... in raster order of their first pixel,
   and their areas are the sums of their runs' lengths.

The work is proportional to the number of pixels for step 1 and to the number
of runs after that, so a 1200x1800 mask takes a few milliseconds.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from edgesam._validate import binary_mask
from edgesam.errors import InvalidInputError

__all__ = ["RegionMode", "label_components", "remove_small_regions"]

RegionMode = Literal["holes", "islands"]


@dataclass(frozen=True)
class _Runs:
    """Horizontal runs of set pixels, in raster order, with their component labels."""

    width: int
    rows: NDArray[np.int64]
    starts: NDArray[np.int64]  # first column of the run
    stops: NDArray[np.int64]  # one past the last column
    labels: NDArray[np.int64]  # 1..count, numbered in raster order of first pixel
    areas: NDArray[np.int64]  # (count + 1,), areas[0] unused here (0)

    @property
    def count(self) -> int:
        return int(self.areas.shape[0] - 1)


def _row_runs(
    mask: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """``(rows, starts, stops)`` of every run of True, in raster order."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.bool_)
    padded[:, 1:-1] = mask
    # Changes mark where a run starts and one past where it ends; per row they
    # alternate. (A boolean array: np.flatnonzero is ~15x faster on bool than int8.)
    edges = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    rows, columns = np.divmod(edges, width + 1)
    return rows[0::2], columns[0::2], columns[1::2]


def _touching_pairs(
    rows: NDArray[np.int64],
    starts: NDArray[np.int64],
    stops: NDArray[np.int64],
    width: int,
    connectivity: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Index pairs ``(upper, lower)`` of runs in adjacent rows that touch."""
    # Runs of one row are disjoint and sorted, so keys row * stride + column are sorted
    # for starts and stops alike, and the runs of row r + 1 that touch run a form the
    # contiguous index range [first, last): stop_b >= start_a - reach and
    # start_b <= stop_a - 1 + reach (reach 1 for 8-connectivity, 0 for 4).
    stride = width + 2
    reach = 1 if connectivity == 8 else 0
    start_keys = rows * stride + starts
    stop_keys = rows * stride + stops
    below = (rows + 1) * stride
    first = np.searchsorted(stop_keys, below + starts - reach, side="right")
    last = np.searchsorted(start_keys, below + stops - 1 + reach, side="right")
    counts = np.maximum(last - first, 0)
    upper = np.repeat(np.arange(rows.shape[0], dtype=np.int64), counts)
    offsets = np.arange(upper.shape[0], dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    lower = np.repeat(first, counts) + offsets
    return upper, lower


def _union_find(
    count: int, upper: NDArray[np.int64], lower: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Root (smallest member) of every node's component, from undirected edges."""
    parent = np.arange(count, dtype=np.int64)
    while upper.shape[0]:
        root_a = parent[upper]
        root_b = parent[lower]
        # Hook each larger root onto the smallest root it touches: parent[x] <= x always
        # holds, so no cycle can form and the final root is the component's minimum.
        np.minimum.at(parent, np.maximum(root_a, root_b), np.minimum(root_a, root_b))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        pending = parent[upper] != parent[lower]
        upper = upper[pending]
        lower = lower[pending]
    return parent


def _label_runs(mask: NDArray[np.bool_], connectivity: int) -> _Runs:
    rows, starts, stops = _row_runs(mask)
    width = int(mask.shape[1])
    upper, lower = _touching_pairs(rows, starts, stops, width, connectivity)
    roots = _union_find(rows.shape[0], upper, lower)
    is_root = roots == np.arange(roots.shape[0])
    # Roots are the first run of their component, runs are in raster order: numbering
    # the roots in index order numbers components in raster order of their first pixel.
    label_of_root = np.cumsum(is_root)
    labels = label_of_root[roots]
    areas = np.zeros(int(is_root.sum()) + 1, dtype=np.int64)
    np.add.at(areas, labels, stops - starts)
    return _Runs(width, rows, starts, stops, labels, areas)


def _check_connectivity(connectivity: object) -> int:
    if isinstance(connectivity, bool) or connectivity not in (4, 8):
        raise InvalidInputError(
            f"connectivity must be 4 (edges only) or 8 (edges and corners): got {connectivity!r}"
        )
    return 8 if connectivity == 8 else 4


def label_components(
    mask: object, connectivity: int = 8
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """Label the connected components of a binary mask.

    Like ``cv2.connectedComponentsWithStats(mask, connectivity)``, restricted
    to labels and areas.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        Numbers are read as ``!= 0``.
    connectivity : {8, 4}
        8 joins pixels that share an edge or a corner (segment_anything's
        choice), 4 only those that share an edge.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        0 where the mask is False; components are numbered 1..K in raster
        order of their first pixel (as ``scipy.ndimage.label`` numbers them;
        OpenCV's block-based scan may number them differently).
    areas : ndarray of int64, shape (K + 1,)
        Pixels per label; ``areas[0]`` counts the False pixels, as OpenCV's
        ``stats[:, CC_STAT_AREA]`` does.
    """
    array = binary_mask(mask, "mask")
    runs = _label_runs(array, _check_connectivity(connectivity))
    labels = np.zeros(array.shape, dtype=np.int32)
    # Boolean indexing visits pixels in raster order, the order of the runs.
    labels[array] = np.repeat(runs.labels, runs.stops - runs.starts)
    areas = runs.areas.copy()
    areas[0] = array.size - int(areas[1:].sum())
    return labels, areas


def _paint(flat: NDArray[np.bool_], runs: _Runs, selected: NDArray[np.bool_], value: bool) -> None:
    """Set the pixels of the runs whose component is ``selected`` to ``value``."""
    chosen = selected[runs.labels]
    starts = runs.rows[chosen] * runs.width + runs.starts[chosen]
    lengths = runs.stops[chosen] - runs.starts[chosen]
    if lengths.shape[0] == 0:
        return
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    flat[np.repeat(starts, lengths) + offsets] = value


def remove_small_regions(
    mask: object, area_thresh: float, mode: RegionMode
) -> tuple[NDArray[np.bool_], bool]:
    """Fill small holes in a mask, or drop its small islands.

    Same semantics as segment_anything's ``remove_small_regions`` (8-connected
    components, areas compared with ``<``), without OpenCV.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    area_thresh : float
        Regions with fewer pixels than this are removed.
    mode : {"holes", "islands"}
        ``"holes"`` fills the small connected regions of the *complement* of the
        mask (including ones touching the border); ``"islands"`` removes small
        connected regions of the mask, but if every region is small it keeps
        the largest (the first of equally large ones).

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
        A new array when changed; the input (as bool) when not.
    changed : bool
        Whether any region was small. True even when the only region is small
        and therefore kept, exactly as segment_anything reports it.
    """
    array = binary_mask(mask, "mask")
    if mode not in get_args(RegionMode):
        raise InvalidInputError(f"mode must be 'holes' or 'islands': got {mode!r}")
    if not isinstance(area_thresh, numbers.Real) or np.isnan(float(area_thresh)):
        raise InvalidInputError(f"area_thresh must be a number: got {area_thresh!r}")
    holes = mode == "holes"
    runs = _label_runs(~array if holes else array, 8)
    small = np.zeros(runs.count + 1, dtype=np.bool_)
    small[1:] = runs.areas[1:] < float(area_thresh)
    if not small.any():
        return array, False
    result = array.copy()
    flat = result.reshape(-1)
    if holes:
        _paint(flat, runs, small, True)
        return result, True
    if small[1:].all():
        # Every island is small: keep the largest one only.
        small[1 + int(np.argmax(runs.areas[1:]))] = False
    _paint(flat, runs, small, False)
    return result, True
