"""The generator's working set of masks, and the records it finally returns.

Between stages the generator keeps every candidate mask as an uncompressed RLE
with its box, scores, prompt point and crop, in one :class:`MaskData` of
parallel arrays that filter and concatenate together (segment_anything's
``MaskData``). :func:`to_records` turns the survivors into the list of dicts
that ``generate`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

import numpy as np
from numpy.typing import NDArray

from edgesam.amg._masks import box_xyxy_to_xywh
from edgesam.amg._rle import CocoRle, UncompressedRle, area_from_rle, coco_encode_rle, rle_to_mask

__all__ = ["MaskData", "MaskRecord", "OutputMode", "to_records"]

OutputMode = Literal["binary_mask", "uncompressed_rle", "coco_rle"]


class MaskRecord(TypedDict):
    """One generated mask, with segment_anything's keys.

    Attributes
    ----------
    segmentation : ndarray of bool, shape (H, W), or dict
        The mask, or its RLE (``output_mode``).
    area : int
        Pixels in the mask.
    bbox : list of int
        XYWH around the mask; ``w = x1 - x0`` with ``x1`` the last column
        holding a pixel (segment_anything's convention).
    predicted_iou : float
        The score filtered by ``pred_iou_thresh`` and ranked by box NMS.
    point_coords : list of list of float
        ``[[x, y]]``: the click that produced the mask, in image pixels.
    stability_score : float
        Stability of the full-resolution logits (``stability_score_offset``).
    crop_box : list of int
        XYWH of the crop the mask was found in.
    """

    segmentation: NDArray[np.bool_] | UncompressedRle | CocoRle
    area: int
    bbox: list[int]
    predicted_iou: float
    point_coords: list[list[float]]
    stability_score: float
    crop_box: list[int]


def _empty_boxes() -> NDArray[np.int64]:
    return np.zeros((0, 4), dtype=np.int64)


def _empty_scores() -> NDArray[np.float32]:
    return np.zeros(0, dtype=np.float32)


@dataclass
class MaskData:
    """Candidate masks as parallel arrays (row ``i`` of each belongs to mask ``i``).

    Attributes
    ----------
    rles : list of dict
        Uncompressed RLEs at the original image size.
    boxes : ndarray of int64, shape (N, 4)
        XYXY (inclusive right/bottom), in the frame named by the stage.
    iou_preds : ndarray of float32, shape (N,)
    stability_score : ndarray of float32, shape (N,)
    points : ndarray of float64, shape (N, 2)
    crop_boxes : ndarray of int64, shape (N, 4)
        XYXY crop each mask came from.
    """

    rles: list[UncompressedRle] = field(default_factory=list)
    boxes: NDArray[np.int64] = field(default_factory=_empty_boxes)
    iou_preds: NDArray[np.float32] = field(default_factory=_empty_scores)
    stability_score: NDArray[np.float32] = field(default_factory=_empty_scores)
    points: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    crop_boxes: NDArray[np.int64] = field(default_factory=_empty_boxes)

    def __len__(self) -> int:
        return len(self.rles)

    def filter(self, keep: NDArray[np.bool_] | NDArray[np.int64]) -> None:
        """Keep the rows selected by a boolean mask or, in that order, an index array."""
        indices = np.flatnonzero(keep) if keep.dtype == np.bool_ else keep
        self.rles = [self.rles[int(index)] for index in indices]
        self.boxes = self.boxes[indices]
        self.iou_preds = self.iou_preds[indices]
        self.stability_score = self.stability_score[indices]
        self.points = self.points[indices]
        self.crop_boxes = self.crop_boxes[indices]

    def extend(self, other: MaskData) -> None:
        """Append the rows of ``other``."""
        self.rles = self.rles + other.rles
        self.boxes = np.concatenate([self.boxes, other.boxes])
        self.iou_preds = np.concatenate([self.iou_preds, other.iou_preds])
        self.stability_score = np.concatenate([self.stability_score, other.stability_score])
        self.points = np.concatenate([self.points, other.points])
        self.crop_boxes = np.concatenate([self.crop_boxes, other.crop_boxes])


def to_records(data: MaskData, output_mode: OutputMode) -> list[MaskRecord]:
    """The generator's output: one :class:`MaskRecord` per mask, in ``data``'s order."""
    bboxes = box_xyxy_to_xywh(data.boxes).tolist()
    crop_boxes = box_xyxy_to_xywh(data.crop_boxes).tolist()
    records: list[MaskRecord] = []
    for index, rle in enumerate(data.rles):
        segmentation: NDArray[np.bool_] | UncompressedRle | CocoRle
        if output_mode == "binary_mask":
            segmentation = rle_to_mask(rle)
        elif output_mode == "coco_rle":
            segmentation = coco_encode_rle(rle)
        else:
            segmentation = rle
        records.append(
            {
                "segmentation": segmentation,
                "area": area_from_rle(rle),
                "bbox": bboxes[index],
                "predicted_iou": float(data.iou_preds[index]),
                "point_coords": [data.points[index].tolist()],
                "stability_score": float(data.stability_score[index]),
                "crop_box": crop_boxes[index],
            }
        )
    return records
