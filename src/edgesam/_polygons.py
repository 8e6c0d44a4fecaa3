"""Binary masks to COCO polygons, without OpenCV.

The boundary is traced along pixel edges ("crack following"): vertices sit on
pixel corners, pixel ``(row, col)`` covering ``[col, col + 1] x [row, row + 1]``,
which is how pycocotools rasterises polygons. The traced polygons therefore
reproduce the mask exactly; only vertices where the boundary turns are kept.

Layout: one polygon per connected region (8-connected, as OpenCV's
``findContours`` joins diagonal pixels), as a flat ``[x0, y0, x1, y1, ...]``
list. A region's holes are joined to its outer ring by a bridge drawn there
and back (a "keyhole"), so each polygon alone rasterises to its region with the
holes cut out (even-odd and non-zero fills agree), and the list as a whole is
COCO's ``segmentation`` for the mask (its polygons are unioned). A region
inside a hole gets its own polygon.

``tolerance`` > 0 simplifies each ring with Douglas-Peucker (in pixels),
trading fidelity for size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edgesam._validate import binary_mask, number
from edgesam.errors import InvalidInputError

__all__ = ["masks_to_polygons"]

# About 240 bytes of temporaries per boundary edge: 2 Mi edges (a 1450x1450 mask of
# pure noise; a real object mask has some thousands) stay near 500 MB, which a
# server converting uploads' masks can afford.
MAX_BOUNDARY_EDGES = 1 << 21
# Edge directions on the screen (y down): +x, +y, -x, -y.
_DX = np.array([1, 0, -1, 0], dtype=np.int64)
_DY = np.array([0, 1, 0, -1], dtype=np.int64)


def _boundary_edges(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], ...]:
    """Every directed boundary edge (start x, start y, direction), foreground on its right."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.bool_)
    padded[1:-1, 1:-1] = mask
    inside = padded[1:-1, 1:-1]
    # top edges go +x from (c, r); right edges +y from (c + 1, r);
    # bottom edges -x from (c + 1, r + 1); left edges -y from (c, r + 1).
    sides = (
        (0, padded[:-2, 1:-1], (0, 0)),
        (1, padded[1:-1, 2:], (1, 0)),
        (2, padded[2:, 1:-1], (1, 1)),
        (3, padded[1:-1, :-2], (0, 1)),
    )
    total = sum(int(np.count_nonzero(inside & ~outside)) for _, outside, _ in sides)
    if total > MAX_BOUNDARY_EDGES:
        raise InvalidInputError(
            f"mask is too ragged for polygons: its outline has {total} pixel edges (at most "
            f"{MAX_BOUNDARY_EDGES}); store it as RLE instead (records_to_coco without "
            "polygons, edgesam everything --format coco-rle)"
        )
    parts = []
    for direction, outside, offset in sides:
        rows, cols = np.nonzero(inside & ~outside)
        parts.append(
            (
                cols.astype(np.int64) + offset[0],
                rows.astype(np.int64) + offset[1],
                np.full(rows.shape, direction, dtype=np.int64),
            )
        )
    xs, ys, directions = (np.concatenate(column) for column in zip(*parts, strict=True))
    return xs, ys, directions


def _successors(
    xs: NDArray[np.int64], ys: NDArray[np.int64], directions: NDArray[np.int64], width: int
) -> NDArray[np.int64]:
    """The next edge of each edge's loop; at a pinch turn left, joining diagonal pixels."""
    stride = width + 1
    starts = ys * stride + xs
    ends = (ys + _DY[directions]) * stride + xs + _DX[directions]
    order = np.argsort(starts, kind="stable")
    sorted_starts = starts[order]
    first = np.searchsorted(sorted_starts, ends, side="left")
    count = np.searchsorted(sorted_starts, ends, side="right") - first
    successor = order[first]
    pinch = count == 2
    if np.any(pinch):
        # Two ways on: a left and a right turn. The left turn keeps diagonally touching
        # foreground pixels in one loop (8-connected regions).
        second = order[first[pinch] + 1]
        left = (directions[pinch] + 3) % 4
        successor[pinch] = np.where(directions[successor[pinch]] == left, successor[pinch], second)
    return successor


def _loops(successor: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Edges in loop order, and where each loop starts in that order (pointer jumping)."""
    size = successor.size
    label = np.arange(size, dtype=np.int64)
    jump = successor.copy()
    # After k rounds label[e] is the lowest of the 2**k edges from e on.
    for _ in range(max(1, int(size - 1).bit_length())):
        label = np.minimum(label, label[jump])
        jump = jump[jump]
    # Cut each loop before its lowest edge and rank edges by their distance to the cut.
    following = np.where(label[successor] == successor, -1, successor)
    distance = (following >= 0).astype(np.int64)
    jump = following.copy()
    while np.any(jump >= 0):
        active = jump >= 0
        distance[active] += distance[jump[active]]
        jump[active] = jump[jump[active]]
    order = np.lexsort((-distance, label))
    starts = np.flatnonzero(np.r_[True, label[order][1:] != label[order][:-1]])
    return order, starts


def _simplify(
    points: NDArray[np.float64], starts: NDArray[np.int64], tolerance: float
) -> list[NDArray[np.float64]]:
    """Douglas-Peucker on every closed ring at once: keep vertices farther than ``tolerance``.

    Rings are ``points[starts[k]:starts[k + 1]]``. Each ring is closed by a copy
    of its first vertex and starts split at its first vertex and the vertex
    farthest from it; each round then splits every open segment of every ring
    at its farthest vertex, while that is farther than ``tolerance`` from the chord.
    """
    counts = np.diff(np.r_[starts, len(points)])
    ring = np.repeat(np.arange(len(starts)), counts + 1)
    # Extended layout: each ring followed by its first vertex again.
    ext_starts = starts + np.arange(len(starts))
    closing = ext_starts + counts
    source = np.arange(len(ring)) - np.repeat(np.arange(len(starts)), counts + 1)
    source[closing] = starts
    ext = points[source]
    keep = np.zeros(len(ext), dtype=np.bool_)
    keep[ext_starts] = True
    keep[closing] = True
    first = np.repeat(ext[ext_starts], counts + 1, axis=0)
    spread = np.hypot(*(ext - first).T)
    spread[closing] = -1.0
    farthest = np.lexsort((spread, ring))[np.cumsum(counts + 1) - 1]
    keep[farthest] = True
    while True:
        kept = np.flatnonzero(keep)
        open_points = np.flatnonzero(~keep)
        if open_points.size == 0:
            break
        segment = np.searchsorted(kept, open_points) - 1
        start, end = ext[kept[segment]], ext[kept[segment + 1]]
        chord = end - start
        length = np.hypot(*chord.T)
        offset = ext[open_points] - start
        cross = np.abs(chord[:, 0] * offset[:, 1] - chord[:, 1] * offset[:, 0])
        safe = np.where(length > 0, length, 1.0)
        distance = np.where(length > 0, cross / safe, np.hypot(*offset.T))
        order = np.lexsort((distance, segment))
        last = np.r_[segment[order][1:] != segment[order][:-1], True]
        best = order[last]
        split = best[distance[best] > tolerance]
        if split.size == 0:
            break
        keep[open_points[split]] = True
    keep[closing] = False
    kept_ring = ring[keep]
    bounds = np.flatnonzero(np.r_[True, kept_ring[1:] != kept_ring[:-1]])
    return np.split(ext[keep], bounds[1:])


def _inside(ring: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]) -> Any:
    """Even-odd test of pixel centres ``(x, y)`` against an axis-aligned ring on the grid.

    A ray from each point to the right crosses the ring's vertical edges; each
    edge is expanded into the pixel rows it spans, so one sorted array of
    ``row * stride + column`` answers every point with two binary searches.
    """
    x0, y0 = ring[:, 0].astype(np.int64), ring[:, 1].astype(np.int64)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    vertical = x0 == x1
    columns, low = x0[vertical], np.minimum(y0, y1)[vertical]
    spans = np.abs(y1 - y0)[vertical]
    offsets = np.arange(int(spans.sum())) - np.repeat(np.cumsum(spans) - spans, spans)
    stride = int(max(x0.max(), np.max(x, initial=0))) + 2
    keys = np.sort((np.repeat(low, spans) + offsets) * stride + np.repeat(columns, spans))
    rows = np.floor(y).astype(np.int64)
    after = np.floor(x).astype(np.int64) + 1
    count = np.searchsorted(keys, (rows + 1) * stride) - np.searchsorted(
        keys, rows * stride + after
    )
    return count % 2 == 1


def _nearby(ring: NDArray[np.float64], points: NDArray[np.float64]) -> Any:
    """For each point, a ring vertex close to it (a neighbour in row-major order)."""
    stride = float(max(ring[:, 0].max(), points[:, 0].max())) + 2
    keys = ring[:, 1] * stride + ring[:, 0]
    order = np.argsort(keys, kind="stable")
    position = np.searchsorted(keys[order], points[:, 1] * stride + points[:, 0])
    after = order[np.minimum(position, len(order) - 1)]
    before = order[np.maximum(position - 1, 0)]
    distance = [np.hypot(*(ring[index] - points).T) for index in (after, before)]
    return np.where(distance[0] <= distance[1], after, before)


def masks_to_polygons(mask: object, *, tolerance: float = 0.0) -> list[list[float]]:
    """Convert a binary mask to polygons in COCO's ``segmentation`` layout.

    Parameters
    ----------
    mask : ndarray of bool (or 0/1 numbers), shape (H, W)
        One mask, e.g. ``masks[i]`` from :meth:`SamPredictor.predict` or a
        record's ``segmentation``.
    tolerance : float
        0 (default): faithful, the polygons rasterise back to exactly the
        mask (vertices on pixel corners; only straight-line vertices are
        dropped). Larger values simplify each ring (Douglas-Peucker, in
        pixels) for smaller files: about 1.0 keeps the outline within a pixel.

    Returns
    -------
    list of list of float
        One flat ``[x0, y0, x1, y1, ...]`` polygon per 8-connected region, its
        holes joined to it by a zero-width bridge; ``[]`` for an empty mask.
        ``pycocotools.mask.frPyObjects(polygons, H, W)`` followed by ``merge``
        gives the mask back.

    Raises
    ------
    InvalidInputError
        If ``mask`` is not 2-D, or ``tolerance`` is negative or not a number.
    """
    number(tolerance, "tolerance", (0.0, math.inf))
    binary = binary_mask(
        mask, "mask", hint="; for a stack of masks call masks_to_polygons once per mask"
    )
    xs, ys, directions = _boundary_edges(binary)
    if xs.size == 0:
        return []
    successor = _successors(xs, ys, directions, binary.shape[1])
    order, starts = _loops(successor)
    lengths = np.diff(np.r_[starts, order.size])
    loop = np.repeat(np.arange(starts.size), lengths)
    # A vertex where the direction changes from the loop's previous edge is a corner.
    previous = np.arange(order.size) - 1
    previous[starts] = starts + lengths - 1
    edge_directions = directions[order]
    corners = order[edge_directions != edge_directions[previous]]
    corner_loop = loop[edge_directions != edge_directions[previous]]
    corner_starts = np.flatnonzero(np.r_[True, corner_loop[1:] != corner_loop[:-1]])
    corner_counts = np.diff(np.r_[corner_starts, corners.size])
    points = np.stack([xs[corners], ys[corners]], axis=1).astype(np.float64)
    following = np.arange(corners.size) + 1
    following[corner_starts + corner_counts - 1] = corner_starts
    # Shoelace on the screen (y down): outer loops positive, holes negative.
    cross = points[:, 0] * points[following, 1] - points[following, 0] * points[:, 1]
    areas = (np.add.reduceat(cross, corner_starts) / 2).tolist()
    lows = np.minimum.reduceat(points, corner_starts)
    highs = np.maximum.reduceat(points, corner_starts)
    rings = np.split(points, corner_starts[1:])
    # The centre of the pixel on each loop's first edge's left: background, off the grid.
    first = order[starts]
    dx, dy = _DX[directions[first]], _DY[directions[first]]
    probes = np.stack([xs[first] + (dx + dy) / 2, ys[first] + (dy - dx) / 2], axis=1).tolist()

    area = np.array(areas)
    probe = np.array(probes, dtype=np.float64).reshape(-1, 2)
    # Each hole belongs to the smallest outer ring around it: try rings smallest first.
    unassigned = np.flatnonzero(area < 0)
    holes: dict[int, list[int]] = {}
    outers = np.flatnonzero(area > 0)
    for outer in outers[np.argsort(area[outers], kind="stable")].tolist():
        if unassigned.size == 0:
            break
        x, y = probe[unassigned, 0], probe[unassigned, 1]
        low, high = lows[outer], highs[outer]
        candidate = (
            (-area[unassigned] < area[outer])
            & (low[0] < x)
            & (x < high[0])
            & (low[1] < y)
            & (y < high[1])
        )
        if not np.any(candidate):
            continue
        chosen = unassigned[candidate]
        inside = _inside(rings[outer], probe[chosen, 0], probe[chosen, 1])
        holes[outer] = chosen[inside].tolist()
        unassigned = np.setdiff1d(unassigned, chosen[inside], assume_unique=True)

    simple = _simplify(points, corner_starts, tolerance) if tolerance > 0 else rings
    polygons: list[list[float]] = []
    for outer in outers.tolist():
        ring = simple[outer]
        if len(ring) < 3:
            continue
        hole_rings = [simple[hole] for hole in holes.get(outer, [])]
        hole_rings = [hole for hole in hole_rings if len(hole) >= 3]
        if not hole_rings:
            polygons.append(_flat(ring))
            continue
        anchors = _nearby(ring, np.array([hole[0] for hole in hole_rings]))
        polygons.append(_join(ring, list(zip(anchors.tolist(), hole_rings, strict=True))))
    return polygons


def _join(ring: NDArray[np.float64], inserts: list[tuple[int, NDArray[np.float64]]]) -> list[float]:
    """The outer ring with each hole spliced in after its nearest vertex, there and back."""
    if not inserts:
        return _flat(ring)
    pieces: list[NDArray[np.float64]] = []
    at = 0
    for vertex, hole in sorted(inserts, key=lambda item: item[0]):
        pieces.append(ring[at : vertex + 1])
        pieces.append(hole)
        pieces.append(hole[:1])
        pieces.append(ring[vertex : vertex + 1])
        at = vertex + 1
    pieces.append(ring[at:])
    return _flat(np.concatenate(pieces))


def _flat(points: NDArray[Any]) -> list[float]:
    flat: list[float] = points.reshape(-1).tolist()
    return flat
