"""SamAutomaticMaskGenerator: segment everything in an image with a grid of clicks.

segment_anything's algorithm, step for step, on an EdgeSAM predictor:

1. for the whole image and, with ``crop_n_layers > 0``, each crop: compute the
   embedding, click every point of the crop layer's grid, ``points_per_batch``
   clicks per decoder call, and take the three multimask outputs of each;
2. drop masks whose predicted IoU is at most ``pred_iou_thresh``;
3. upsample the survivors' logits to the crop's size, drop masks whose
   stability score is below ``stability_score_thresh``, binarise at 0;
4. drop masks whose box ends at an inner crop edge; run box NMS
   (``box_nms_thresh``, ranked by predicted IoU) within the crop;
5. across crops, box NMS (``crop_nms_thresh``) that prefers smaller crops;
6. with ``min_mask_region_area > 0``: fill small holes, remove small islands,
   and NMS again preferring the masks that needed no change.

Only the masks that pass step 2 are upsampled (the IoU score does not depend
on the upsampling), one at a time and only in the window where their logits
can exceed the lowest threshold (:func:`edgesam._postprocess.window_logits`), so the float
logits of all ``3 x points_per_batch`` masks never exist at full resolution.
The results are segment_anything's, up to float32 rounding.

With a device pipeline (``device_pipeline``), step 3 and the boxes of step 4
run instead in one graph per decoder batch on the model's provider
(:meth:`edgesam._device_pipeline.DevicePipeline.everything`), which returns
the scores, the survivors' boxes and only their boolean masks; the records are
the same as the host path's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import get_args

import numpy as np
from numpy.typing import NDArray

from edgesam._files import short_repr
from edgesam._image import load_rgb
from edgesam._model import EdgeSam
from edgesam._postprocess import MASK_THRESHOLD, window_logits
from edgesam._predictor import SamPredictor
from edgesam._validate import integer as _integer
from edgesam._validate import number as _number
from edgesam.amg._grid import build_all_layer_point_grids, generate_crop_boxes
from edgesam.amg._masks import (
    calculate_stability_score,
    is_box_near_crop_edge,
    masks_to_boxes,
    uncrop_boxes_xyxy,
    uncrop_points,
)
from edgesam.amg._nms import batched_nms, box_area
from edgesam.amg._records import MaskData, MaskRecord, OutputMode, to_records
from edgesam.amg._regions import remove_small_regions
from edgesam.amg._rle import (
    UncompressedRle,
    mask_to_rle,
    rle_to_transposed_mask,
    transposed_mask_to_rle,
)
from edgesam.errors import InvalidInputError

__all__ = ["SamAutomaticMaskGenerator"]

logger = logging.getLogger(__name__)


# Bounds that keep a careless argument from asking for hours of work or more memory than
# any machine has: 1024 points per side is a million clicks per crop, and crop layer 5
# alone is 1,024 crops (1,365 encoder runs in all). segment_anything uses 32 and 0..2.
MAX_POINTS_PER_SIDE = 1024
MAX_CROP_N_LAYERS = 5


def _point_grids(
    points_per_side: int | None,
    point_grids: Sequence[NDArray[np.floating]] | None,
    crop_n_layers: int,
    downscale: int,
) -> list[NDArray[np.float64]]:
    if points_per_side is not None and point_grids is None:
        side = _integer(points_per_side, "points_per_side", 1, MAX_POINTS_PER_SIDE)
        return build_all_layer_point_grids(side, crop_n_layers, downscale)
    if points_per_side is not None or point_grids is None:
        raise InvalidInputError(
            "give exactly one of points_per_side (a regular grid, e.g. 32) and point_grids "
            "(explicit normalised points per crop layer): "
            f"got points_per_side={points_per_side!r} and "
            f"{'no point_grids' if point_grids is None else 'point_grids'}"
        )
    if isinstance(point_grids, str | bytes) or not isinstance(point_grids, Sequence | np.ndarray):
        raise InvalidInputError(
            "point_grids must be a list of (N, 2) arrays, one per crop layer: got "
            f"{type(point_grids).__name__}"
        )
    grids = []
    for layer, grid in enumerate(point_grids):
        try:
            grids.append(np.asarray(grid, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise InvalidInputError(
                f"point_grids[{layer}] must be an (N, 2) array of numbers in [0, 1]: got "
                f"{short_repr(grid)} ({err})"
            ) from err
    if len(grids) < crop_n_layers + 1:
        raise InvalidInputError(
            f"point_grids needs one grid per crop layer, {crop_n_layers + 1} for "
            f"crop_n_layers={crop_n_layers}: got {len(grids)}"
        )
    for layer, grid in enumerate(grids):
        if grid.ndim != 2 or grid.shape[1] != 2 or grid.shape[0] == 0:
            raise InvalidInputError(
                f"point_grids[{layer}] must have shape (N, 2), (x, y) in [0, 1]: "
                f"got shape {grid.shape}"
            )
        if grid.shape[0] > MAX_POINTS_PER_SIDE**2:
            raise InvalidInputError(
                f"point_grids[{layer}] has {grid.shape[0]} points, more than the "
                f"{MAX_POINTS_PER_SIDE**2} (a {MAX_POINTS_PER_SIDE}x{MAX_POINTS_PER_SIDE} grid) "
                "allowed per crop layer"
            )
        if not np.all((grid >= 0.0) & (grid <= 1.0)):
            raise InvalidInputError(
                f"point_grids[{layer}] must be normalised to [0, 1] (multiply by nothing: "
                "the generator scales each grid to its crop)"
            )
    return grids


class SamAutomaticMaskGenerator:
    """Generate masks for everything in an image, as segment_anything's generator.

    Clicks a grid of points over the image (and optionally over crops of it),
    keeps the good masks and removes duplicates. The options and defaults are
    segment_anything's, which were chosen for SAM ViT-H.

    Parameters
    ----------
    model : SamPredictor or EdgeSam
        The predictor to use (its current image is replaced), or a model to
        make one from.
    points_per_side : int or None
        Points along each side of the grid; ``points_per_side**2`` clicks on
        the whole image, at most 1024. None when ``point_grids`` is given.
    points_per_batch : int
        Clicks decoded per decoder call (a batched decoder takes them in one
        run; the official one runs once per click). Bigger uses more memory.
    pred_iou_thresh : float in [0, 1]
        Keep masks whose predicted IoU is strictly above this (0 disables).
        See ``use_stability_score`` for what "predicted IoU" is with EdgeSAM.
    stability_score_thresh : float in [0, 1]
        Keep masks whose stability score (IoU of the mask binarised at
        ``±stability_score_offset`` around 0, full resolution) is at least
        this (0 disables).
    stability_score_offset : float
        How far the binarisation threshold moves for the stability score.
    box_nms_thresh : float in [0, 1]
        Box IoU above which the worse of two masks from one crop is dropped.
    crop_n_layers : int
        If > 0, also run on crops: layer ``i`` splits the image into
        ``2**i x 2**i`` overlapping crops. Finds smaller objects, costs one
        encoder run and one grid of clicks per crop. At most 5 (1,365 crops).
    crop_nms_thresh : float in [0, 1]
        Box IoU above which duplicates from different crops are dropped
        (masks from smaller crops win).
    crop_overlap_ratio : float in [0, 1]
        Overlap of neighbouring crops in layer 1, as a fraction of the image's
        short side; later layers overlap proportionally less.
    crop_n_points_downscale_factor : int
        Layer ``i`` uses ``points_per_side / factor**i`` points per side.
    point_grids : list of ndarray of float, shape (N, 2), optional
        Explicit (x, y) points in ``[0, 1]``, one grid per crop layer (at most
        1024**2 points each); exclusive with ``points_per_side``.
    min_mask_region_area : int
        If > 0, fill holes and remove islands smaller than this many pixels
        in every mask (8-connected, as segment_anything with OpenCV; no
        OpenCV needed here), then drop new duplicates.
    output_mode : {"binary_mask", "uncompressed_rle", "coco_rle"}
        Form of each record's ``segmentation``: a bool array (H, W), COCO
        uncompressed RLE, or COCO compressed RLE (JSON-ready; no pycocotools
        needed). Binary masks of large images take a lot of memory.
    use_stability_score : bool
        EdgeSAM's IoU head was not distilled, so its IoU predictions rank
        masks poorly. True (the default) does what the EdgeSAM authors'
        generator does, whose batched predictor substitutes stability
        scores: each mask's "predicted IoU" is the stability score of its
        256x256 low-res logits (threshold 0, offset 1.0); ``pred_iou_thresh``
        filters it, box NMS ranks by it, and records report it as
        ``predicted_iou``. False uses the decoder's IoU predictions, exactly
        as segment_anything does.

    Notes
    -----
    One generator holds one predictor and its image state: use one
    generator per thread (they can share one :class:`~edgesam.EdgeSam`).
    Ties in NMS scores are broken by order (earlier mask wins), where
    torchvision leaves them to an unstable sort.

    Examples
    --------
    >>> generator = SamAutomaticMaskGenerator(SamPredictor.from_pretrained())  # doctest: +SKIP
    >>> records = generator.generate(image)  # doctest: +SKIP
    >>> records[0]["bbox"], records[0]["area"]  # doctest: +SKIP
    """

    def __init__(
        self,
        model: SamPredictor | EdgeSam,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: Sequence[NDArray[np.floating]] | None = None,
        min_mask_region_area: int = 0,
        output_mode: OutputMode = "binary_mask",
        *,
        use_stability_score: bool = True,
    ) -> None:
        if isinstance(model, EdgeSam):
            model = SamPredictor(model)
        if not isinstance(model, SamPredictor):
            raise InvalidInputError(
                "model must be an edgesam.SamPredictor or edgesam.EdgeSam: got "
                f"{type(model).__name__}. Use SamPredictor.from_pretrained() or .from_files()"
            )
        if output_mode not in get_args(OutputMode):
            raise InvalidInputError(
                "output_mode must be 'binary_mask', 'uncompressed_rle' or 'coco_rle': "
                f"got {output_mode!r}"
            )
        self.predictor = model
        self.crop_n_layers = _integer(crop_n_layers, "crop_n_layers", 0, MAX_CROP_N_LAYERS)
        self.crop_n_points_downscale_factor = _integer(
            crop_n_points_downscale_factor, "crop_n_points_downscale_factor", 1
        )
        self.point_grids = _point_grids(
            points_per_side, point_grids, self.crop_n_layers, self.crop_n_points_downscale_factor
        )
        self.points_per_batch = _integer(points_per_batch, "points_per_batch", 1)
        # Scores and box IoUs lie in [0, 1]: a threshold outside keeps or drops everything.
        self.pred_iou_thresh = _number(
            pred_iou_thresh, "pred_iou_thresh", (0.0, 1.0), " (0 disables the filter)"
        )
        self.stability_score_thresh = _number(
            stability_score_thresh, "stability_score_thresh", (0.0, 1.0), " (0 disables the filter)"
        )
        self.stability_score_offset = _number(stability_score_offset, "stability_score_offset")
        self.box_nms_thresh = _number(box_nms_thresh, "box_nms_thresh", (0.0, 1.0))
        self.crop_nms_thresh = _number(crop_nms_thresh, "crop_nms_thresh", (0.0, 1.0))
        self.crop_overlap_ratio = _number(crop_overlap_ratio, "crop_overlap_ratio", (0.0, 1.0))
        self.min_mask_region_area = _integer(min_mask_region_area, "min_mask_region_area", 0)
        self.output_mode: OutputMode = output_mode
        self.use_stability_score = bool(use_stability_score)
        self._scratch: NDArray[np.bool_] | None = None

    def generate(
        self, image: object, *, progress: Callable[[int, int], None] | None = None
    ) -> list[MaskRecord]:
        """Generate masks for everything in ``image``.

        Parameters
        ----------
        image : ndarray of uint8, shape (H, W, 3); PIL.Image.Image; str or os.PathLike
            The image, RGB.
        progress : callable, optional
            Called as ``progress(done, total)`` after each decoder batch, with
            the grid points decoded so far and in all (every crop included):
            for a progress bar within one image, which can take a minute on a
            small CPU.

        Returns
        -------
        list of dict
            One record per mask (see :class:`~edgesam.amg.MaskRecord`):
            ``segmentation`` (per ``output_mode``), ``area`` (int), ``bbox``
            (XYWH), ``predicted_iou``, ``point_coords`` (``[[x, y]]``),
            ``stability_score`` and ``crop_box`` (XYWH). Ordered as
            segment_anything orders them: by the last NMS's score.
        """
        if progress is not None and not callable(progress):
            raise InvalidInputError(
                f"progress must be a callable progress(done, total) or None: got "
                f"{type(progress).__name__}",
                argument="progress",
            )
        rgb = load_rgb(image)
        data = self._generate_masks(rgb, progress)
        if self.min_mask_region_area > 0:
            data = self.postprocess_small_regions(
                data, self.min_mask_region_area, max(self.box_nms_thresh, self.crop_nms_thresh)
            )
        return to_records(data, self.output_mode)

    # -- stages ---------------------------------------------------------------------------

    def _generate_masks(
        self, image: NDArray[np.uint8], progress: Callable[[int, int], None] | None = None
    ) -> MaskData:
        original_size = (int(image.shape[0]), int(image.shape[1]))
        crop_boxes, layer_idxs = generate_crop_boxes(
            original_size, self.crop_n_layers, self.crop_overlap_ratio
        )
        crops = []
        for crop_box, layer in zip(crop_boxes, layer_idxs, strict=True):
            x0, y0, x1, y1 = crop_box
            if max(x1 - x0, 0) * max(y1 - y0, 0) < 2:
                # Images a few pixels wide split into crops too small for the encoder.
                logger.debug("skipping crop %s: fewer than 2 pixels", crop_box)
                continue
            crops.append((crop_box, layer))
        counter = _Progress(sum(len(self.point_grids[layer]) for _, layer in crops), progress)
        data = MaskData()
        for crop_box, layer in crops:
            data.extend(self._process_crop(image, crop_box, layer, original_size, counter))
        if len(crop_boxes) > 1:
            # Prefer masks from smaller crops: score 1 / crop area (float32, as torch).
            scores = np.float32(1.0) / box_area(data.crop_boxes)
            keep = batched_nms(
                data.boxes, scores, np.zeros(len(data), dtype=np.int64), self.crop_nms_thresh
            )
            data.filter(keep)
        logger.debug("%d masks after all crops", len(data))
        return data

    def _process_crop(
        self,
        image: NDArray[np.uint8],
        crop_box: list[int],
        layer: int,
        original_size: tuple[int, int],
        counter: _Progress,
    ) -> MaskData:
        x0, y0, x1, y1 = crop_box
        cropped = image[y0:y1, x0:x1]
        crop_size = (int(cropped.shape[0]), int(cropped.shape[1]))
        self.predictor.set_image(cropped)
        input_size = self.predictor.get_image_embedding().input_size
        # Grid (x, y) in [0, 1] times the crop's (width, height), in float64 as numpy does.
        points = self.point_grids[layer] * np.array(crop_size[::-1])[None, :]
        data = MaskData()
        for start in range(0, points.shape[0], self.points_per_batch):
            batch = points[start : start + self.points_per_batch]
            data.extend(self._process_batch(batch, crop_size, input_size, crop_box, original_size))
            counter.advance(len(batch))
        self.predictor.reset_image()
        keep = batched_nms(
            data.boxes, data.iou_preds, np.zeros(len(data), dtype=np.int64), self.box_nms_thresh
        )
        data.filter(keep)
        data.boxes = uncrop_boxes_xyxy(data.boxes, crop_box).astype(np.int64)
        data.points = uncrop_points(data.points, crop_box).astype(np.float64)
        data.crop_boxes = np.tile(np.asarray(crop_box, dtype=np.int64), (len(data), 1))
        logger.debug("crop %s: %d masks from %d points", crop_box, len(data), points.shape[0])
        return data

    def _decode(
        self, points: NDArray[np.float64]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Scores (B, 3) and low-res logits (B, 3, 256, 256) of one click per point."""
        count = points.shape[0]
        scores, low_res = self.predictor.predict_low_res(
            points[:, None, :],  # float64: scaled into the 1024 frame before rounding
            np.ones((count, 1), dtype=np.float32),
            multimask_output=True,
            use_stability_score=self.use_stability_score,
        )
        return scores, low_res

    def _process_batch(
        self,
        points: NDArray[np.float64],
        crop_size: tuple[int, int],
        input_size: tuple[int, int],
        crop_box: list[int],
        original_size: tuple[int, int],
    ) -> MaskData:
        scores, low_res = self._decode(points)
        outputs = low_res.shape[1]
        iou_preds = scores.reshape(-1)
        candidates = np.arange(iou_preds.shape[0])
        if self.pred_iou_thresh > 0.0:
            candidates = candidates[iou_preds > self.pred_iou_thresh]
        on_device = self.predictor.model._everything_on_device(
            low_res.reshape(-1, *low_res.shape[2:]),
            candidates,
            crop_size,
            input_size,
            self.stability_score_offset,
            self.stability_score_thresh,
        )
        if on_device is not None:
            # The graph scored every candidate and sent back the survivors' masks only.
            kept = candidates[on_device.keep].tolist()
            stabilities = list(on_device.stability_scores[on_device.keep])
            windows = [(0, 0, mask) for mask in on_device.masks]
            boxes = on_device.boxes
        else:
            kept, stabilities, windows = self._filter_on_host(
                low_res, candidates, crop_size, input_size
            )
            boxes = self._window_boxes(windows)
        chosen = np.asarray(kept, dtype=np.int64)
        orig_h, orig_w = original_size
        inner = is_box_near_crop_edge(boxes, crop_box, [0, 0, orig_w, orig_h])
        outer = np.flatnonzero(~inner)
        return MaskData(
            rles=self._encode_windows([windows[row] for row in outer], crop_box, original_size),
            boxes=boxes[outer],
            iou_preds=iou_preds[chosen[outer]].astype(np.float32),
            stability_score=np.asarray(stabilities, dtype=np.float32)[outer],
            points=points[chosen[outer] // outputs],
            crop_boxes=np.zeros((outer.shape[0], 4), dtype=np.int64),
        )

    def _filter_on_host(
        self,
        low_res: NDArray[np.float32],
        candidates: NDArray[np.int64],
        crop_size: tuple[int, int],
        input_size: tuple[int, int],
    ) -> tuple[list[int], list[np.float32], list[tuple[int, int, NDArray[np.bool_]]]]:
        """Stability filter of the candidates: kept indices, their scores and mask windows."""
        outputs = low_res.shape[1]
        # Below the lowest threshold a pixel counts nowhere: upsample only where it can.
        offset = self.stability_score_offset
        floor = MASK_THRESHOLD - abs(offset)
        # Compared in float32, as torch compares a float32 tensor with a Python float.
        stability_thresh = np.float32(self.stability_score_thresh)
        kept: list[int] = []
        stabilities: list[np.float32] = []
        windows: list[tuple[int, int, NDArray[np.bool_]]] = []
        for index in candidates.tolist():
            window = window_logits(
                low_res[index // outputs, index % outputs], crop_size, input_size, floor
            )
            if window is None:
                top, left, logits = 0, 0, np.zeros((0, 0), dtype=np.float32)
            else:
                top, left, logits = window.top, window.left, window.logits
            stability = np.float32(calculate_stability_score(logits, MASK_THRESHOLD, offset))
            if self.stability_score_thresh > 0.0 and not stability >= stability_thresh:
                continue
            kept.append(index)
            stabilities.append(stability)
            windows.append((top, left, logits > MASK_THRESHOLD))
        return kept, stabilities, windows

    @staticmethod
    def _window_boxes(windows: list[tuple[int, int, NDArray[np.bool_]]]) -> NDArray[np.int64]:
        """XYXY boxes (N, 4) of window masks in the crop's frame; zeros for empty ones."""
        boxes = np.zeros((len(windows), 4), dtype=np.int64)
        for row, (top, left, mask) in enumerate(windows):
            if mask.any():
                boxes[row] = masks_to_boxes(mask) + np.array([left, top, left, top])
        return boxes

    def _encode_windows(
        self,
        windows: list[tuple[int, int, NDArray[np.bool_]]],
        crop_box: list[int],
        original_size: tuple[int, int],
    ) -> list[UncompressedRle]:
        """RLE of each window's mask placed in the image (``uncrop_masks``, one at a time)."""
        if not windows:
            return []
        if self._scratch is None or self._scratch.shape != original_size:
            self._scratch = np.zeros(original_size, dtype=np.bool_)
        canvas = self._scratch
        rles = []
        for top, left, mask in windows:
            y0, x0 = crop_box[1] + top, crop_box[0] + left
            region = canvas[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]]
            region[...] = mask
            try:
                rles.append(mask_to_rle(canvas))
            finally:
                region[...] = False  # the canvas is all False between masks
        return rles

    @staticmethod
    def postprocess_small_regions(data: MaskData, min_area: int, nms_thresh: float) -> MaskData:
        """Fill small holes and remove small islands in every mask, then NMS again.

        Masks that needed no change score 1 and the others 0 in the NMS, so
        an untouched mask wins over a cleaned duplicate of it. Edits ``data``
        in place and returns it. (When every island of a mask is small, the
        largest is kept; of equally large ones, the first in column-major
        order, where OpenCV's choice follows its own scan order.)

        Parameters
        ----------
        data : MaskData
            The generator's masks.
        min_area : int
            Holes and islands smaller than this many pixels are removed.
        nms_thresh : float
            Box IoU above which the worse of two masks is dropped.
        """
        if len(data) == 0:
            return data
        new_boxes = np.empty_like(data.boxes)
        new_rles = list(data.rles)
        unchanged = np.empty(len(data), dtype=np.float32)
        for index, rle in enumerate(data.rles):
            # Components do not depend on orientation: work on the transposed mask, which
            # is the RLE's column-major data as is (no transposing copy either way).
            mask = rle_to_transposed_mask(rle)
            mask, holes_changed = remove_small_regions(mask, min_area, "holes")
            mask, islands_changed = remove_small_regions(mask, min_area, "islands")
            changed = holes_changed or islands_changed
            unchanged[index] = 0.0 if changed else 1.0
            new_boxes[index] = masks_to_boxes(mask)[[1, 0, 3, 2]]
            if changed:
                new_rles[index] = transposed_mask_to_rle(mask)
        keep = batched_nms(new_boxes, unchanged, np.zeros(len(data), dtype=np.int64), nms_thresh)
        for index in keep:
            if unchanged[index] == 0.0:
                data.rles[index] = new_rles[index]
                data.boxes[index] = new_boxes[index]
        data.filter(keep)
        logger.debug("%d masks after small-region removal", len(data))
        return data

    def __repr__(self) -> str:
        grid = self.point_grids[0].shape[0]
        return (
            f"SamAutomaticMaskGenerator({grid} points, crop_n_layers={self.crop_n_layers}, "
            f"output_mode={self.output_mode!r}, use_stability_score={self.use_stability_score})"
        )


class _Progress:
    """Counts decoded grid points and reports them to an optional callback."""

    def __init__(self, total: int, callback: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.callback = total, 0, callback

    def advance(self, count: int) -> None:
        self.done += count
        if self.callback is not None:
            self.callback(self.done, self.total)
