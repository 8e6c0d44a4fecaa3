"""``edgesam serve``: an HTTP API and a browser page for EdgeSAM.

:func:`create_app` builds a FastAPI application around one shared
:class:`~edgesam.EdgeSam`: ``POST /v1/embed`` runs the encoder (results kept in
an LRU cache bounded in bytes), ``POST /v1/decode`` decodes prompts against a
cached embedding, and ``GET /`` is a page that decodes clicks in the browser
with onnxruntime-web. Needs the ``serve`` extra: ``pip install "edgesam[serve]"``.

The extra is imported on first use of :func:`create_app`, so that the
``edgesam`` command can list ``serve`` without it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from edgesam.errors import MissingExtraError

if TYPE_CHECKING:
    from edgesam.serve._app import ORT_WEB_VERSION, create_app
    from edgesam.serve._cache import EmbeddingCache
    from edgesam.serve._server import DecodeRequest

__all__ = ["INSTALL_HINT", "ORT_WEB_VERSION", "DecodeRequest", "EmbeddingCache", "create_app"]

INSTALL_HINT = 'pip install "edgesam[serve]"'

_LOCATIONS = {
    "ORT_WEB_VERSION": "edgesam.serve._app",
    "DecodeRequest": "edgesam.serve._server",
    "create_app": "edgesam.serve._app",
    "EmbeddingCache": "edgesam.serve._cache",
}


def require_extra() -> None:
    """Raise :class:`~edgesam.errors.MissingExtraError` unless the serve extra is installed."""
    missing = [
        package
        for package in ("fastapi", "uvicorn", "multipart")
        if importlib.util.find_spec(package) is None
    ]
    if missing:
        raise MissingExtraError(
            f"edgesam serve needs {', '.join(missing)}, which edgesam does not install by "
            f"default: {INSTALL_HINT}"
        )


def __getattr__(name: str) -> Any:
    location = _LOCATIONS.get(name)
    if location is None:
        raise AttributeError(f"module 'edgesam.serve' has no attribute {name!r}")
    require_extra()
    return getattr(importlib.import_module(location), name)
