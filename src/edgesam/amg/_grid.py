"""Where the automatic mask generator prompts: point grids and image crops.

The generator clicks every point of a regular grid, once on the whole image and,
with ``crop_n_layers > 0``, again on overlapping crops (layer ``i`` has
``2**i x 2**i`` crops), with ``points_per_side / downscale**i`` points per side.
Same rules and numbers as segment_anything's ``build_point_grid``,
``build_all_layer_point_grids`` and ``generate_crop_boxes``.

Grids are normalised to ``[0, 1] x [0, 1]`` as (x, y); multiply by a crop's
``(width, height)`` to get pixels. Crop boxes are XYXY pixels with exclusive
right/bottom edges, so ``image[y0:y1, x0:x1]`` is the crop.
"""

from __future__ import annotations

import math
import numbers
from itertools import product

import numpy as np
from numpy.typing import NDArray

from edgesam._validate import integer
from edgesam.errors import InvalidInputError

__all__ = ["build_all_layer_point_grids", "build_point_grid", "generate_crop_boxes"]


def build_point_grid(n_per_side: int) -> NDArray[np.float64]:
    """A ``n_per_side x n_per_side`` grid of points centred in equal cells of the unit square.

    Parameters
    ----------
    n_per_side : int
        Points along each side; the grid has ``n_per_side**2`` points.

    Returns
    -------
    ndarray of float64, shape (n_per_side**2, 2)
        (x, y) in ``[0, 1]``, row by row (y outer, x inner). Point ``k`` is at
        ``((k % n + 0.5) / n, (k // n + 0.5) / n)``.
    """
    n = integer(n_per_side, "n_per_side")
    offset = 1.0 / (2 * n)
    along = np.linspace(offset, 1.0 - offset, n)
    xs = np.tile(along, n)
    ys = np.repeat(along, n)
    return np.stack([xs, ys], axis=-1)


def build_all_layer_point_grids(
    n_per_side: int, n_layers: int, scale_per_layer: int
) -> list[NDArray[np.float64]]:
    """One point grid per crop layer, thinned by ``scale_per_layer`` at each layer.

    Parameters
    ----------
    n_per_side : int
        Points per side in layer 0 (the whole image).
    n_layers : int
        Number of crop layers after layer 0 (``crop_n_layers``).
    scale_per_layer : int
        Layer ``i`` has ``int(n_per_side / scale_per_layer**i)`` points per side
        (``crop_n_points_downscale_factor``).

    Returns
    -------
    list of ndarray of float64, shape (n_i**2, 2)
        ``n_layers + 1`` normalised grids, layer 0 first.
    """
    n = integer(n_per_side, "points_per_side")
    layers = integer(n_layers, "crop_n_layers", minimum=0)
    scale = integer(scale_per_layer, "crop_n_points_downscale_factor")
    grids = []
    for layer in range(layers + 1):
        points = int(n / (scale**layer))
        if points < 1:
            raise InvalidInputError(
                f"crop layer {layer} would have no points: points_per_side={n} divided by "
                f"crop_n_points_downscale_factor**{layer}={scale**layer} is below 1; use fewer "
                "crop_n_layers or a smaller crop_n_points_downscale_factor"
            )
        grids.append(build_point_grid(points))
    return grids


def _crop_length(length: int, n_crops: int, overlap: int) -> int:
    # n crops of this length, each starting (length - overlap) after the previous one,
    # cover `length` exactly (the last crop is clipped to the image).
    return math.ceil((overlap * (n_crops - 1) + length) / n_crops)


def generate_crop_boxes(
    im_size: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """The crops the generator runs on: the whole image, then ``(2**i)**2`` per layer i.

    Parameters
    ----------
    im_size : tuple of int
        ``(H, W)`` of the image.
    n_layers : int
        Number of crop layers after the whole image (``crop_n_layers``).
    overlap_ratio : float
        In layer 1 neighbouring crops overlap by this fraction of the image's
        short side; layer ``i`` overlaps by ``overlap_ratio * short / 2**(i-1)``
        (``crop_overlap_ratio``, 512/1500 in segment_anything).

    Returns
    -------
    crop_boxes : list of list of int
        XYXY pixel boxes (right and bottom exclusive); ``[0, 0, W, H]`` first,
        then each layer's crops with x outer, y inner.
    layer_idxs : list of int
        The crop layer of each box.
    """
    if len(im_size) != 2:
        raise InvalidInputError(f"im_size must be (H, W): got {im_size!r}")
    im_h = integer(im_size[0], "image height")
    im_w = integer(im_size[1], "image width")
    layers = integer(n_layers, "crop_n_layers", minimum=0)
    if not isinstance(overlap_ratio, numbers.Real) or not 0.0 <= float(overlap_ratio) < 1.0:
        raise InvalidInputError(
            f"crop_overlap_ratio must be a number in [0, 1): got {overlap_ratio!r}"
        )
    short_side = min(im_h, im_w)
    crop_boxes = [[0, 0, im_w, im_h]]
    layer_idxs = [0]
    for layer in range(layers):
        per_side = 2 ** (layer + 1)
        overlap = int(float(overlap_ratio) * short_side * (2 / per_side))
        crop_w = _crop_length(im_w, per_side, overlap)
        crop_h = _crop_length(im_h, per_side, overlap)
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(x0s, y0s):
            crop_boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layer_idxs.append(layer + 1)
    return crop_boxes, layer_idxs
