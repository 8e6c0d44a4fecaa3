"""edgesam: a torch-free SDK for EdgeSAM, on ONNX Runtime."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from edgesam._download import download
from edgesam._embedding import ImageEmbedding
from edgesam._errors import (
    CheckpointError,
    ChecksumMismatchError,
    CorruptModelError,
    DownloadError,
    EdgeSamError,
    ExportError,
    ImageNotSetError,
    InferenceError,
    InvalidEmbeddingError,
    InvalidImageError,
    InvalidInputError,
    InvalidPromptError,
    MaskInputUnavailableError,
    MissingExtraError,
    ModelContractError,
    ModelFileError,
    ProviderError,
    UnknownModelError,
    UnsafeCheckpointError,
    WeightsError,
    WeightsNotFoundError,
)
from edgesam._model import EdgeSam
from edgesam._predictor import SamPredictor
from edgesam._session import default_session_options

if TYPE_CHECKING:
    from edgesam.amg import SamAutomaticMaskGenerator

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The automatic mask generator loads on first use: most programs never need it,
    # and everything else is here at import time.
    if name == "SamAutomaticMaskGenerator":
        from edgesam.amg import SamAutomaticMaskGenerator

        return SamAutomaticMaskGenerator
    raise AttributeError(f"module 'edgesam' has no attribute {name!r}")


logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CheckpointError",
    "ChecksumMismatchError",
    "CorruptModelError",
    "DownloadError",
    "EdgeSam",
    "EdgeSamError",
    "ExportError",
    "ImageEmbedding",
    "ImageNotSetError",
    "InferenceError",
    "InvalidEmbeddingError",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidPromptError",
    "MaskInputUnavailableError",
    "MissingExtraError",
    "ModelContractError",
    "ModelFileError",
    "ProviderError",
    "SamAutomaticMaskGenerator",
    "SamPredictor",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "WeightsError",
    "WeightsNotFoundError",
    "__version__",
    "default_session_options",
    "download",
]
