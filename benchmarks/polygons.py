"""``python -m benchmarks.polygons [VECTORS.npz]``: masks_to_polygons against pycocotools.

For the first mask of each prompt set in the reference vectors (default
``../shared/reference/vectors.npz``), converts the mask to polygons at several
tolerances, rasterises them back with pycocotools (``frPyObjects`` + ``merge``
+ ``decode``, as COCO readers do) and prints the IoU with the mask, the number
of vertices, the JSON size (with the compressed RLE's for comparison) and the
conversion time per mask. The random-weights masks are ragged (thousands of
one-pixel regions and holes); a second table does the same for 20 smooth
synthetic object masks (ellipses with a wavy rim and a hole, 1200x1800), closer
to what a trained model outputs. Needs ``pycocotools``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edgesam.formats import masks_to_polygons

TOLERANCES = (0.0, 0.5, 1.0, 2.0)


def smooth_masks(count: int = 20, shape: tuple[int, int] = (1200, 1800)) -> list[NDArray[Any]]:
    """Ellipses with a wavy rim and an elliptic hole, seeded."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    masks = []
    for _ in range(count):
        cy, cx = rng.uniform(0.3, 0.7) * shape[0], rng.uniform(0.3, 0.7) * shape[1]
        ry, rx = rng.uniform(100, 350), rng.uniform(100, 500)
        angle = np.arctan2(yy - cy, xx - cx)
        wave = 1 + 0.08 * np.sin(rng.integers(3, 9) * angle + rng.uniform(0, 6))
        radius = np.hypot((yy - cy) / ry, (xx - cx) / rx)
        mask = radius < wave
        mask &= np.hypot((yy - cy) / (0.2 * ry), (xx - cx) / (0.3 * rx)) > 1
        masks.append(mask)
    return masks


def table(masks: list[NDArray[Any]]) -> None:
    from pycocotools import mask as mask_utils

    shapes = sorted({mask.shape for mask in masks})
    print(f"{len(masks)} masks, sizes {shapes}")
    rle_bytes = sum(
        len(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]) for mask in masks
    )
    print("| tolerance (px) | min IoU | mean IoU | vertices | JSON MB | ms per mask |")
    print("|---|---|---|---|---|---|")
    for tolerance in TOLERANCES:
        ious, vertices, size, seconds = [], 0, 0, 0.0
        for mask in masks:
            start = time.perf_counter()
            polygons = masks_to_polygons(mask, tolerance=tolerance)
            seconds += time.perf_counter() - start
            height, width = mask.shape
            decoded = np.zeros(mask.shape, dtype=bool)
            if polygons:
                rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
                decoded = mask_utils.decode(rle).astype(bool)
            union = np.count_nonzero(decoded | mask)
            ious.append(np.count_nonzero(decoded & mask) / union if union else 1.0)
            vertices += sum(len(polygon) // 2 for polygon in polygons)
            size += len(json.dumps(polygons))
        print(
            f"| {tolerance} | {min(ious):.4f} | {np.mean(ious):.4f} | {vertices} | "
            f"{size / 1e6:.3f} | {seconds / len(masks) * 1000:.0f} |"
        )
    print(f"compressed RLE of the same masks: {rle_bytes / 1e6:.3f} MB")


def main(argv: list[str]) -> int:
    # pycocotools' Cython code trips numpy 2's __array__(copy=...) deprecation.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    path = Path(argv[0]) if argv else Path("../shared/reference/vectors.npz")
    if path.is_file():
        vectors = np.load(path)
        print(f"random-weights reference masks ({path}):")
        table([vectors[key][0] for key in vectors.files if key.endswith("/masks")])
    else:
        print(f"{path} not found: skipping the reference masks")
    print("\nsmooth synthetic masks:")
    table(smooth_masks())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
