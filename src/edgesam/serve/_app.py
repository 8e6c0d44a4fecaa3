"""The FastAPI application behind ``edgesam serve``.

One shared :class:`~edgesam.EdgeSam`; encoder and decoder calls run in a
bounded thread pool (onnxruntime releases the GIL), never on the event loop.
Each worker thread keeps its own :class:`~edgesam.SamPredictor` over the shared
model, so ``/v1/decode`` is ``SamPredictor.predict`` on the cached embedding.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import edgesam.formats
from edgesam import EdgeSam, ImageEmbedding, SamPredictor
from edgesam._errors import (
    EdgeSamError,
    InvalidImageError,
    InvalidInputError,
    InvalidPromptError,
    MaskInputUnavailableError,
)
from edgesam.amg import (
    SamAutomaticMaskGenerator,
    box_xyxy_to_xywh,
    calculate_stability_score,
    mask_to_coco_rle,
    masks_to_boxes,
)
from edgesam.serve._cache import EmbeddingCache

__all__ = ["ORT_WEB_VERSION", "DecodeRequest", "create_app"]

logger = logging.getLogger("edgesam.serve")

ORT_WEB_VERSION = "1.30.0"
"""The onnxruntime-web version the page is written and tested against."""
CDN_RUNTIME = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"

_STATIC = Path(__file__).resolve().parent / "static"
_MIB = 1 << 20
_EMBEDDING_BYTES = 256 * 64 * 64 * 4
_IMAGE_ID = re.compile(r"[0-9a-f]{64}")
_MAX_POINTS = 256
_LOW_RES = 256
_MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}
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


# -- errors that are not the package's ------------------------------------------------------


class _HttpError(Exception):
    """An error answered with ``status`` and the ``{"error": ...}`` body."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.headers = headers


def _too_large(message: str) -> _HttpError:
    return _HttpError(413, "PayloadTooLargeError", message)


def _error_response(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


def _status_for(err: EdgeSamError) -> int:
    return 422 if isinstance(err, MaskInputUnavailableError) else 400


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


class _Server:
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
            raise _HttpError(
                503,
                "OverloadedError",
                f"the server is busy ({self.pending} requests running or queued for "
                f"{self.workers} workers); retry shortly",
                {"Retry-After": "1"},
            )
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)
        finally:
            self.pending -= 1

    # Everything below runs in a worker thread.

    def open_image(self, data: bytes) -> Image.Image:
        if not data:
            raise InvalidImageError("the request body is empty: send an image file")
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > self.max_pixels:
                raise _too_large(
                    f"the image is {width}x{height} = {width * height} pixels, more than this "
                    f"server's limit of {self.max_pixels}; downscale it (EdgeSAM sees every "
                    "image at 1024 pixels on the long side)"
                )
            image.load()
            upright: Image.Image = ImageOps.exif_transpose(image)
            return upright
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _too_large(f"the image is larger than Pillow's safety limit ({err})") from err
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


def _everything_options(query: Sequence[tuple[str, str]]) -> dict[str, Any]:
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


# -- middleware -----------------------------------------------------------------------------


class _BodyLimit:
    """Answer 413 for a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (
            f"the request body is larger than this server's limit of {self.limit} bytes "
            "(edgesam serve --max-body-mb)"
        )
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    response = _error_response(413, "PayloadTooLargeError", message)
                    await response(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            received = await receive()
            if received["type"] == "http.request":
                seen += len(received.get("body", b""))
                if seen > self.limit:
                    raise _too_large(message)
            return received

        await self.app(scope, counted, send)


class _RequestLog:
    """Log one line per request: method, path, status, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            logger.info(
                "%s %s %d %.1f ms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
            )


def _page_headers(coep: str) -> dict[str, str]:
    return {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": coep,
        "Cross-Origin-Resource-Policy": "same-origin",
    }


class _Static(StaticFiles):
    """Static files with the MIME types and isolation headers the page needs."""

    def __init__(self, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory)
        self.extra_headers = headers

    def file_response(self, full_path: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        mime = _MIME.get(Path(str(full_path)).suffix)
        if mime is not None:
            response.headers["content-type"] = mime
        response.headers.update(self.extra_headers)
        return response


# -- the application ------------------------------------------------------------------------


def create_app(
    model: EdgeSam,
    *,
    cache_mb: float = 512,
    max_body_mb: float = 32,
    max_pixels: int | None = None,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    web_runtime: str | os.PathLike[str] | None = None,
    workers: int = 2,
    queue_size: int = 32,
) -> FastAPI:
    """Build the ``edgesam serve`` application around one shared model.

    Parameters
    ----------
    model : EdgeSam
        The model every request uses (shared, thread-safe).
    cache_mb : float
        Size of the embedding cache in MiB (4 MiB per image); least recently
        used images are evicted first.
    max_body_mb : float
        Largest request body accepted; larger ones get 413.
    max_pixels : int, optional
        Largest image (width x height) accepted; larger ones get 413. Default:
        Pillow's ``Image.MAX_IMAGE_PIXELS``.
    api_key : str, optional
        When set, every ``/v1`` request needs ``Authorization: Bearer <api_key>``.
    cors_origins : sequence of str
        Origins allowed to call the API from other sites' pages; none by default.
    web_runtime : str or os.PathLike, optional
        A local onnxruntime-web ``dist`` folder served at ``/ort/`` for the page;
        default: the pinned version from the jsDelivr CDN.
    workers : int
        Threads running the encoder and decoder.
    queue_size : int
        Requests that may wait for a worker; beyond it the answer is 503 with
        ``Retry-After``.

    Returns
    -------
    fastapi.FastAPI
        Run it with any ASGI server, e.g. ``uvicorn.run(app)``.

    Raises
    ------
    InvalidInputError
        For an option out of range, or a ``web_runtime`` folder without
        onnxruntime-web's files.
    """
    if not isinstance(model, EdgeSam):
        raise InvalidInputError(f"model must be an edgesam.EdgeSam: got {type(model).__name__}")
    if not cache_mb * _MIB >= _EMBEDDING_BYTES:
        raise InvalidInputError(
            f"cache_mb must hold at least one embedding (4 MiB): got {cache_mb!r}"
        )
    if not max_body_mb > 0:
        raise InvalidInputError(f"max_body_mb must be positive: got {max_body_mb!r}")
    for name, value, least in (("workers", workers, 1), ("queue_size", queue_size, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInputError(f"{name} must be an int >= {least}: got {value!r}")
    if max_pixels is None:
        max_pixels = int(Image.MAX_IMAGE_PIXELS or 1 << 62)
    if api_key is not None and not api_key:
        raise InvalidInputError("api_key must not be empty: give a secret, or None")
    runtime_dir: Path | None = None
    if web_runtime is not None:
        runtime_dir = Path(web_runtime)
        if not (runtime_dir / "ort.wasm.min.mjs").is_file():
            raise InvalidInputError(
                f"web_runtime {str(runtime_dir)!r} is not onnxruntime-web's dist folder "
                f"(no ort.wasm.min.mjs): npm install onnxruntime-web@{ORT_WEB_VERSION} and "
                "pass node_modules/onnxruntime-web/dist"
            )

    server = _Server(
        model,
        cache_bytes=int(cache_mb * _MIB),
        max_pixels=max_pixels,
        workers=workers,
        queue_size=queue_size,
        decoder_file=model.decoder_path,
    )
    runtime_url = "/ort/" if runtime_dir is not None else CDN_RUNTIME
    # require-corp also blocks a CDN script that sends no CORP header; credentialless does not.
    page_headers = _page_headers("require-corp" if runtime_dir is not None else "credentialless")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        server.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="edgesam serve",
        version=_version(),
        description="EdgeSAM over HTTP: embed an image once, decode prompts against it.",
        lifespan=lifespan,
    )
    app.state.server = server

    # -- errors -----------------------------------------------------------------------

    @app.exception_handler(EdgeSamError)
    async def _package_error(request: Request, err: EdgeSamError) -> JSONResponse:
        return _error_response(_status_for(err), type(err).__name__, str(err))

    @app.exception_handler(_HttpError)
    async def _http_error(request: Request, err: _HttpError) -> JSONResponse:
        return _error_response(err.status, err.kind, str(err), err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:]) or 'body'}: {error['msg']}"
            for error in err.errors()[:5]
        )
        return _error_response(422, "InvalidInputError", f"invalid request body: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "NotFoundError" if err.status_code == 404 else "HTTPError"
        return _error_response(err.status_code, kind, str(err.detail), err.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return _error_response(500, "InternalServerError", "the server failed; see its log")

    # -- the API ----------------------------------------------------------------------

    async def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), api_key.encode()
        ):
            raise _HttpError(
                401,
                "UnauthorizedError",
                "this server needs an API key: send the header 'Authorization: Bearer <key>'",
                {"WWW-Authenticate": "Bearer"},
            )

    api = APIRouter(prefix="/v1", dependencies=[Depends(check_key)])

    @api.get("/health")
    async def health() -> dict[str, Any]:
        """Model name, fingerprint, providers and cache use."""
        stats = server.cache.stats
        return {
            "status": "ok",
            "model": model.name,
            "fingerprint": model.fingerprint,
            "providers": model.providers,
            "cache": {
                "images": len(server.cache),
                "bytes": server.cache.nbytes,
                "max_bytes": server.cache.max_bytes,
                "hits": stats.hits,
                "misses": stats.misses,
                "evictions": stats.evictions,
                "shared": stats.shared,
            },
        }

    async def uploaded_image(request: Request) -> bytes:
        content_type = request.headers.get("content-type", "application/octet-stream")
        media = content_type.split(";")[0].strip().lower()
        if media == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=8)
            try:
                upload = form.get("image")
                if not isinstance(upload, UploadFile):
                    raise InvalidImageError(
                        "the multipart body has no file field named 'image': send "
                        "-F image=@photo.jpg"
                    )
                return await upload.read()
            finally:
                await form.close()
        if media.startswith("image/") or media in ("application/octet-stream", ""):
            return await request.body()
        raise _HttpError(
            415,
            "UnsupportedMediaTypeError",
            f"Content-Type {media!r} is not an image: send the file as the body with "
            "Content-Type image/* or application/octet-stream, or as the multipart field "
            "'image'",
        )

    async def embedding_for(data: bytes) -> tuple[str, ImageEmbedding, bool]:
        image_id = hashlib.sha256(data).hexdigest()

        def compute() -> Awaitable[ImageEmbedding]:
            return server.run(server.encode, data)

        embedding, cached = await server.cache.get_or_compute(image_id, compute)
        return image_id, embedding, cached

    @api.post("/embed")
    async def embed(request: Request) -> dict[str, Any]:
        """Run the encoder on the uploaded image (or find it in the cache)."""
        image_id, embedding, cached = await embedding_for(await uploaded_image(request))
        return {
            "image_id": image_id,
            "original_size": list(embedding.original_size),
            "input_size": list(embedding.input_size),
            "fingerprint": embedding.fingerprint,
            "cached": cached,
        }

    def cached_embedding(image_id: str) -> ImageEmbedding:
        embedding = server.cache.get(image_id) if _IMAGE_ID.fullmatch(image_id) else None
        if embedding is None:
            raise _HttpError(
                404,
                "UnknownImageError",
                f"image_id {image_id[:80]!r} is not in the cache (never embedded, or evicted): "
                "POST the image to /v1/embed again",
            )
        return embedding

    @api.get("/embeddings/{image_id}")
    async def embedding_file(image_id: str) -> Response:
        """The embedding as a ``.npy`` file: float32, shape (1, 256, 64, 64)."""
        buffer = io.BytesIO()
        np.save(buffer, cached_embedding(image_id).array, allow_pickle=False)
        return Response(
            buffer.getvalue(),
            media_type="application/octet-stream",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    @api.post("/decode")
    async def decode(body: DecodeRequest) -> dict[str, Any]:
        """Masks for the prompts, as ``SamPredictor.predict`` returns them."""
        embedding = cached_embedding(body.image_id)
        return await server.run(server.decode, embedding, body)

    @api.post("/everything")
    async def everything(request: Request) -> dict[str, Any]:
        """Segment everything in the uploaded image (``SamAutomaticMaskGenerator``)."""
        options = _everything_options(list(request.query_params.multi_items()))
        data = await uploaded_image(request)
        return {"records": await server.run(server.everything, data, options)}

    @api.get("/models/decoder.onnx")
    async def decoder_file() -> FileResponse:
        """The decoder ONNX file the page runs in the browser."""
        return FileResponse(
            server.decoder_file,
            media_type="application/octet-stream",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    app.include_router(api)

    # -- the page ---------------------------------------------------------------------

    page = (_STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{ORT_RUNTIME}}", runtime_url).replace("{{ORT_VERSION}}", ORT_WEB_VERSION)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers=page_headers)

    app.mount("/static", _Static(_STATIC, page_headers), name="static")
    if runtime_dir is not None:
        app.mount("/ort", _Static(runtime_dir, page_headers), name="ort")

    # -- outer layers: request log, body limit, CORS ----------------------------------

    app.add_middleware(_RequestLog)
    app.add_middleware(_BodyLimit, limit=int(max_body_mb * _MIB))
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _version() -> str:
    from edgesam import __version__

    return __version__
