"""Writers for masks and mask records: PNGs, segment_anything's metadata.csv, COCO JSON, overlays.

``masks_to_polygons`` turns a mask into COCO polygons (outer rings and holes).

COCO RLE encoding and decoding live in :mod:`edgesam.amg` (``mask_to_coco_rle``,
``coco_decode_rle``).
"""

from __future__ import annotations

from edgesam._formats import (
    records_to_coco,
    render_overlay,
    save_binary_mask,
    save_overlay,
    write_coco_json,
    write_masks_to_folder,
)
from edgesam._polygons import masks_to_polygons

__all__ = [
    "masks_to_polygons",
    "records_to_coco",
    "render_overlay",
    "save_binary_mask",
    "save_overlay",
    "write_coco_json",
    "write_masks_to_folder",
]
