"""``python -m benchmarks.polygons [VECTORS.npz]``: masks_to_polygons against pycocotools.

For the first mask of each prompt set in the reference vectors (default
``../shared/reference/vectors.npz``), converts the mask to polygons at several
tolerances, rasterises them back with pycocotools (``frPyObjects`` + ``merge``
+ ``decode``, as COCO readers do) and prints the IoU with the mask, the number
of vertices, the JSON size (with the compressed RLE's for comparison) and the
conversion time per mask. Needs ``pycocotools``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from edgesam.formats import masks_to_polygons

TOLERANCES = (0.0, 0.5, 1.0, 2.0)


def main(argv: list[str]) -> int:
    from pycocotools import mask as mask_utils

    # pycocotools' Cython code trips numpy 2's __array__(copy=...) deprecation.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    path = Path(argv[0]) if argv else Path("../shared/reference/vectors.npz")
    vectors = np.load(path)
    masks = [vectors[key][0] for key in vectors.files if key.endswith("/masks")]
    shapes = sorted({mask.shape for mask in masks})
    print(f"{len(masks)} masks from {path}, sizes {shapes}")
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
            f"{size / 1e6:.2f} | {seconds / len(masks) * 1000:.0f} |"
        )
    print(f"compressed RLE of the same masks: {rle_bytes / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
