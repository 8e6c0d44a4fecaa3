"""ONNX export of EdgeSAM checkpoints: the optional ``edgesam[export]`` extra.

The runtime never imports this package. It needs torch and onnx, which are
imported only when one of its names is first used, so that ``edgesam.cli``
can offer the ``export`` command (and say what to install) without them::

    pip install "edgesam[export]"

    from edgesam.export import export_onnx
    result = export_onnx("edge_sam_3x.pth", "models/", variants=["official", "full"])
    result.files["encoder"], result.files["full_decoder"], result.manifest

Names
-----
export_onnx
    Checkpoint -> ONNX files (official, full, fp16, int8) + manifest.
ExportResult
    What ``export_onnx`` wrote.
load_checkpoint
    Checkpoint -> the torch :class:`EdgeSamNetwork`, strictly, in eval mode.
EdgeSamNetwork
    The torch network (RepViT encoder, prompt encoder, mask decoder).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgesam.errors import MissingExtraError

if TYPE_CHECKING:
    from edgesam.export._api import ExportResult, export_onnx
    from edgesam.export._checkpoint import load_checkpoint
    from edgesam.export._network import EdgeSamNetwork

__all__ = ["EdgeSamNetwork", "ExportResult", "batch_encoder", "export_onnx", "load_checkpoint"]

INSTALL_HINT = 'pip install "edgesam[export]"'

_LOCATIONS = {
    "EdgeSamNetwork": "edgesam.export._network",
    "batch_encoder": "edgesam.export._batch_encoder",
    "ExportResult": "edgesam.export._api",
    "export_onnx": "edgesam.export._api",
    "load_checkpoint": "edgesam.export._checkpoint",
}


def require_extra() -> None:
    """Import torch and onnx, or raise :class:`~edgesam.errors.MissingExtraError` naming the fix."""
    missing = []
    for package in ("torch", "onnx"):
        try:
            importlib.import_module(package)
        except ImportError:
            missing.append(package)
    if missing:
        raise MissingExtraError(
            f"ONNX export needs {' and '.join(missing)}, which edgesam does not install by "
            f"default: {INSTALL_HINT}"
        )


def __getattr__(name: str) -> Any:
    location = _LOCATIONS.get(name)
    if location is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_extra()
    value = getattr(importlib.import_module(location), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
