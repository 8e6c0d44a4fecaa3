"""The work behind the endpoints, run in the worker threads: encode, decode, everything."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

import edgesam.formats
from edgesam import EdgeSam, ImageEmbedding, SamPredictor
from edgesam.amg import (
    SamAutomaticMaskGenerator,
    box_xyxy_to_xywh,
    calculate_stability_score,
    mask_to_coco_rle,
    masks_to_boxes,
)
from edgesam.errors import InvalidImageError, InvalidInputError, InvalidPromptError
from edgesam.serve._cache import EmbeddingCache
from edgesam.serve._http import HttpError, too_large

__all__ = ["DecodeRequest", "Server", "everything_options"]

_MAX_POINTS = 256
_LOW_RES = 256
# The generator's options that /v1/everything takes as query parameters, with the
# largest value the server accepts (the work grows with the square of the grid).
_EVERYTHING_INT = {
    "points_per_side": 128,
    "points_per_batch": 256,
    "crop_n_layers": 3,
    "crop_n_points_downscale_factor": 16,
    "min_mask_region_area": 1 << 30,
}
_EVERYTHING_FLOAT = (
    "pred_iou_thresh",
    "stability_score_thresh",
    "stability_score_offset",
    "box_nms_thresh",
    "crop_nms_thresh",
    "crop_overlap_ratio",
)
_EVERYTHING_BOOL = ("use_stability_score",)

T = TypeVar("T")


# -- request bodies -------------------------------------------------------------------------


class DecodeRequest(BaseModel):
    """The body of ``POST /v1/decode``: prompts in original-image pixels."""

    model_config = ConfigDict(extra="forbid")

    image_id: str = Field(description="from POST /v1/embed")
    points: list[list[float]] | None = Field(None, description="[[x, y], ...] in pixels")
    labels: list[int] | None = Field(None, description="one per point: 1 object, 0 background")
    box: list[float] | None = Field(None, description="[x0, y0, x1, y1] in pixels")
    mask_input: str | None = Field(
        None, description="base64 little-endian float32 (1, 256, 256) low-res logits"
    )
    multimask: bool = True
    num_multimask_outputs: Literal[1, 3, 4] | None = None
    use_stability_score: bool = False
    mask_format: Literal["rle", "png", "polygons"] = "rle"
    return_low_res: bool = False


# -- the server's state ---------------------------------------------------------------------


class Server:
    def __init__(
        self,
        model: EdgeSam,
        *,
        cache_bytes: int,
        max_pixels: int,
        workers: int,
        queue_size: int,
        decoder_file: Path,
    ) -> None:
        self.model = model
        self.cache = EmbeddingCache(cache_bytes)
        self.max_pixels = max_pixels
        self.workers = workers
        self.capacity = workers + queue_size
        self.pending = 0
        self.decoder_file = decoder_file
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgesam-serve")
        self._local = threading.local()

    def predictor(self) -> SamPredictor:
        """This worker thread's own predictor over the shared model."""
        predictor: SamPredictor | None = getattr(self._local, "predictor", None)
        if predictor is None:
            predictor = SamPredictor(self.model)
            self._local.predictor = predictor
        return predictor

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in the pool, or answer 503 when the queue is full."""
        if self.pending >= self.capacity:
            raise HttpError(
                503,
                "OverloadedError",
                f"the server is busy ({self.pending} requests running or queued for "
                f"{self.workers} workers); retry shortly",
                {"Retry-After": "1"},
            )
        loop = asyncio.get_running_loop()
        job = self.pool.submit(function, *args)
        self.pending += 1

        def finished(_: object) -> None:
            # Counted until the thread is done, not until the caller stops waiting: a
            # client that disconnects does not free a worker.
            with contextlib.suppress(RuntimeError):  # the loop has closed at shutdown
                loop.call_soon_threadsafe(self._release)

        job.add_done_callback(finished)
        return await asyncio.wrap_future(job)

    def _release(self) -> None:
        self.pending -= 1

    # Everything below runs in a worker thread.

    def open_image(self, data: bytes) -> Image.Image:
        if not data:
            raise InvalidImageError("the request body is empty: send an image file")
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > self.max_pixels:
                raise too_large(
                    f"the image is {width}x{height} = {width * height} pixels, more than this "
                    f"server's limit of {self.max_pixels}; downscale it (EdgeSAM sees every "
                    "image at 1024 pixels on the long side)"
                )
            image.load()
            upright: Image.Image = ImageOps.exif_transpose(image)
            return upright
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise too_large(f"the image is larger than Pillow's safety limit ({err})") from err
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            raise InvalidImageError(
                f"the uploaded file could not be read as an image ({err}); send a JPEG, PNG, "
                "WebP, ... file"
            ) from err

    def encode(self, data: bytes) -> ImageEmbedding:
        image = self.open_image(data)
        predictor = self.predictor()
        try:
            predictor.set_image(image)
            return predictor.get_image_embedding()
        finally:
            predictor.reset_image()

    def decode(self, embedding: ImageEmbedding, body: DecodeRequest) -> dict[str, Any]:
        # Lists as they came: the predictor validates them and names the argument.
        points: list[list[float]] | None = body.points or None
        if points is not None and len(points) > _MAX_POINTS:
            raise InvalidPromptError(
                f"points: at most {_MAX_POINTS} points per request: got {len(points)}"
            )
        if points is not None and any(len(point) != 2 for point in points):
            raise InvalidPromptError(
                f"points must be [[x, y], ...] pairs in pixels: got {points[:4]}"
            )
        labels = body.labels or None
        mask_input = _decode_mask_input(body.mask_input) if body.mask_input is not None else None
        predictor = self.predictor()
        try:
            predictor.set_image_embedding(embedding)
            masks, scores, low_res = predictor.predict(
                points,
                labels,
                body.box,
                mask_input,
                multimask_output=body.multimask,
                num_multimask_outputs=body.num_multimask_outputs,
                use_stability_score=body.use_stability_score,
            )
        finally:
            predictor.reset_image()
        masks = np.asarray(masks, dtype=np.bool_)  # return_logits is never asked for
        stability = calculate_stability_score(low_res, 0.0, 1.0)
        boxes = box_xyxy_to_xywh(masks_to_boxes(masks))
        records = [
            {
                "segmentation": _encode_mask(mask, body.mask_format),
                "score": float(score),
                "stability_score": float(stable),
                "bbox": [int(value) for value in bbox],
                "area": int(np.count_nonzero(mask)),
            }
            for mask, score, stable, bbox in zip(masks, scores, stability, boxes, strict=True)
        ]
        answer: dict[str, Any] = {"masks": records}
        if body.return_low_res:
            answer["low_res_logits"] = base64.b64encode(
                np.ascontiguousarray(low_res, dtype="<f4").tobytes()
            ).decode("ascii")
        return answer

    def everything(self, data: bytes, options: dict[str, Any]) -> list[dict[str, Any]]:
        image = self.open_image(data)
        predictor = self.predictor()
        try:
            generator = SamAutomaticMaskGenerator(predictor, output_mode="coco_rle", **options)
            records = generator.generate(image)
        finally:
            predictor.reset_image()
        return [_json_safe(dict(record)) for record in records]


def _decode_mask_input(text: str) -> NDArray[np.float32]:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as err:
        raise InvalidPromptError(
            f"mask_input must be base64 of little-endian float32 (1, 256, 256) logits: {err}"
        ) from err
    if len(raw) != 4 * _LOW_RES * _LOW_RES:
        raise InvalidPromptError(
            "mask_input must be base64 of little-endian float32 (1, 256, 256) logits "
            f"({4 * _LOW_RES * _LOW_RES} bytes): got {len(raw)} bytes; send one of the "
            "low_res_logits of an earlier decode"
        )
    return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(1, _LOW_RES, _LOW_RES)


def _encode_mask(mask: NDArray[np.bool_], mask_format: str) -> Any:
    if mask_format == "rle":
        rle = mask_to_coco_rle(mask)
        return {"size": [int(size) for size in rle["size"]], "counts": rle["counts"]}
    if mask_format == "png":
        buffer = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")
    to_polygons = getattr(edgesam.formats, "masks_to_polygons", None)
    if to_polygons is None:
        raise InvalidInputError(
            "mask_format 'polygons' needs edgesam.formats.masks_to_polygons, which this "
            "edgesam version lacks: use mask_format 'rle' or 'png'"
        )
    return to_polygons(mask, tolerance=0.0)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("ascii")
    return value


def everything_options(query: Sequence[tuple[str, str]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, text in query:
        if name in options:
            raise InvalidInputError(f"query parameter {name} is given twice")
        try:
            if name in _EVERYTHING_INT:
                value: Any = int(text)
                if value > _EVERYTHING_INT[name]:
                    raise InvalidInputError(
                        f"{name} must be at most {_EVERYTHING_INT[name]} on this server: "
                        f"got {value}"
                    )
            elif name in _EVERYTHING_FLOAT:
                value = float(text)
            elif name in _EVERYTHING_BOOL:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1")
            else:
                known = sorted((*_EVERYTHING_INT, *_EVERYTHING_FLOAT, *_EVERYTHING_BOOL))
                raise InvalidInputError(
                    f"unknown query parameter {name!r}; the generator's options are: "
                    f"{', '.join(known)}"
                )
        except ValueError as err:
            if isinstance(err, InvalidInputError):
                raise
            raise InvalidInputError(
                f"query parameter {name} must be a number: got {text!r}"
            ) from err
        options[name] = value
    return options
