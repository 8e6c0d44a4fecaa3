"""The FastAPI application behind ``edgesam serve``.

One shared :class:`~edgesam.EdgeSam`; encoder and decoder calls run in a
bounded thread pool (onnxruntime releases the GIL), never on the event loop.
Each worker thread keeps its own :class:`~edgesam.SamPredictor` over the shared
model, so ``/v1/decode`` is ``SamPredictor.predict`` on the cached embedding.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from edgesam import EdgeSam, ImageEmbedding
from edgesam._validate import integer
from edgesam.errors import EdgeSamError, InvalidImageError, InvalidInputError
from edgesam.serve._http import (
    BodyLimit,
    HttpError,
    RequestLog,
    StaticWithHeaders,
    error_response,
    page_headers,
    status_for,
)
from edgesam.serve._server import DecodeRequest, Server, everything_options

__all__ = ["CDN_RUNTIME", "ORT_WEB_VERSION", "DecodeRequest", "create_app"]

logger = logging.getLogger("edgesam.serve")

ORT_WEB_VERSION = "1.30.0"
"""The onnxruntime-web version the page is written and tested against."""
CDN_RUNTIME = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"

_STATIC = Path(__file__).resolve().parent / "static"
_MIB = 1 << 20
_EMBEDDING_BYTES = 256 * 64 * 64 * 4
_IMAGE_ID = re.compile(r"[0-9a-f]{64}")


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
    integer(workers, "workers")
    integer(queue_size, "queue_size", minimum=0)
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

    server = Server(
        model,
        cache_bytes=int(cache_mb * _MIB),
        max_pixels=max_pixels,
        workers=workers,
        queue_size=queue_size,
        decoder_file=model.decoder_path,
    )
    runtime_url = "/ort/" if runtime_dir is not None else CDN_RUNTIME
    # require-corp also blocks a CDN script that sends no CORP header; credentialless does not.
    isolation = page_headers("require-corp" if runtime_dir is not None else "credentialless")

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
        return error_response(status_for(err), type(err).__name__, str(err))

    @app.exception_handler(HttpError)
    async def _http_error(request: Request, err: HttpError) -> JSONResponse:
        return error_response(err.status, err.kind, str(err), err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:]) or 'body'}: {error['msg']}"
            for error in err.errors()[:5]
        )
        return error_response(422, "InvalidInputError", f"invalid request body: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "NotFoundError" if err.status_code == 404 else "HTTPError"
        return error_response(err.status_code, kind, str(err.detail), err.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "InternalServerError", "the server failed; see its log")

    # -- the API ----------------------------------------------------------------------

    async def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), api_key.encode()
        ):
            raise HttpError(
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
        raise HttpError(
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
            raise HttpError(
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
        options = everything_options(list(request.query_params.multi_items()))
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
        return HTMLResponse(page, headers=isolation)

    app.mount("/static", StaticWithHeaders(_STATIC, isolation), name="static")
    if runtime_dir is not None:
        app.mount("/ort", StaticWithHeaders(runtime_dir, isolation), name="ort")

    # -- outer layers: request log, body limit, CORS ----------------------------------

    app.add_middleware(RequestLog)
    app.add_middleware(BodyLimit, limit=int(max_body_mb * _MIB))
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
