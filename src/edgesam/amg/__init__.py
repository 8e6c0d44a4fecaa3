"""Automatic mask generation ("segment everything") and its building blocks.

:class:`SamAutomaticMaskGenerator` clicks a grid of points over an image and
keeps the good, distinct masks, as segment_anything's generator does.

The building blocks follow segment_anything's ``utils/amg.py`` semantics in
numpy, with no torch, OpenCV, scipy or pycocotools at run time:

- point grids and crop boxes (:func:`build_point_grid`, :func:`generate_crop_boxes`);
- COCO RLE, uncompressed and compressed (:func:`mask_to_rle`, :func:`coco_encode_rle`,
  :func:`rle_to_mask`, :func:`area_from_rle`), byte-identical to pycocotools;
- box IoU and NMS as torchvision computes them (:func:`batched_nms`);
- connected components and small-region removal (:func:`remove_small_regions`);
- stability score, mask boxes and crop bookkeeping (:func:`calculate_stability_score`,
  :func:`masks_to_boxes`, :func:`is_box_near_crop_edge`).
"""

from __future__ import annotations

from edgesam.amg._generator import SamAutomaticMaskGenerator
from edgesam.amg._grid import build_all_layer_point_grids, build_point_grid, generate_crop_boxes
from edgesam.amg._masks import (
    box_xyxy_to_xywh,
    calculate_stability_score,
    is_box_near_crop_edge,
    masks_to_boxes,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from edgesam.amg._nms import batched_nms, box_area, box_iou, nms
from edgesam.amg._records import MaskData, MaskRecord, OutputMode
from edgesam.amg._regions import label_components, remove_small_regions
from edgesam.amg._rle import (
    CocoRle,
    UncompressedRle,
    area_from_rle,
    coco_decode_rle,
    coco_encode_rle,
    counts_from_string,
    counts_to_string,
    mask_to_coco_rle,
    mask_to_rle,
    masks_to_rle,
    rle_to_mask,
)

__all__ = [
    "CocoRle",
    "MaskData",
    "MaskRecord",
    "OutputMode",
    "SamAutomaticMaskGenerator",
    "UncompressedRle",
    "area_from_rle",
    "batched_nms",
    "box_area",
    "box_iou",
    "box_xyxy_to_xywh",
    "build_all_layer_point_grids",
    "build_point_grid",
    "calculate_stability_score",
    "coco_decode_rle",
    "coco_encode_rle",
    "counts_from_string",
    "counts_to_string",
    "generate_crop_boxes",
    "is_box_near_crop_edge",
    "label_components",
    "mask_to_coco_rle",
    "mask_to_rle",
    "masks_to_boxes",
    "masks_to_rle",
    "nms",
    "remove_small_regions",
    "rle_to_mask",
    "uncrop_boxes_xyxy",
    "uncrop_masks",
    "uncrop_points",
]
