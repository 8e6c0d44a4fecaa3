"""HTTP plumbing of ``edgesam serve``: error bodies, body limit, request log, static files."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgesam.errors import EdgeSamError, MaskInputUnavailableError

__all__ = [
    "MIME_TYPES",
    "BodyLimit",
    "HttpError",
    "RequestLog",
    "StaticWithHeaders",
    "error_response",
    "page_headers",
    "status_for",
    "too_large",
]

logger = logging.getLogger("edgesam.serve")

MIME_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}


# -- errors that are not the package's ------------------------------------------------------


class HttpError(Exception):
    """An error answered with ``status`` and the ``{"error": ...}`` body."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.headers = headers


def too_large(message: str) -> HttpError:
    return HttpError(413, "PayloadTooLargeError", message)


def error_response(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


def status_for(err: EdgeSamError) -> int:
    return 422 if isinstance(err, MaskInputUnavailableError) else 400


# -- middleware -----------------------------------------------------------------------------


class BodyLimit:
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
                    response = error_response(413, "PayloadTooLargeError", message)
                    await response(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            received = await receive()
            if received["type"] == "http.request":
                seen += len(received.get("body", b""))
                if seen > self.limit:
                    raise too_large(message)
            return received

        await self.app(scope, counted, send)


class RequestLog:
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


def page_headers(coep: str) -> dict[str, str]:
    return {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": coep,
        "Cross-Origin-Resource-Policy": "same-origin",
    }


class StaticWithHeaders(StaticFiles):
    """Static files with the MIME types and isolation headers the page needs."""

    def __init__(self, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory)
        self.extra_headers = headers

    def file_response(self, full_path: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        mime = MIME_TYPES.get(Path(str(full_path)).suffix)
        if mime is not None:
            response.headers["content-type"] = mime
        response.headers.update(self.extra_headers)
        return response
