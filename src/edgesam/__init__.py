"""edgesam: a torch-free SDK for EdgeSAM, on ONNX Runtime."""

from __future__ import annotations

import logging

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
from edgesam.amg import SamAutomaticMaskGenerator

__version__ = "0.1.0"

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
    "download",
]
