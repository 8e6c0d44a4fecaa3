"""edgesam: a torch-free SDK for EdgeSAM, on ONNX Runtime.

One image, from the front door to the masks (each step one module)::

    image   -> _image.load_rgb            ndarray / PIL / path -> HxWx3 uint8 RGB
            -> _transforms.preprocess_image   resize longest side to 1024, normalise, pad
            -> _model.EdgeSam._encode         encoder session (_session) -> ImageEmbedding
    prompts -> _prompts.validate_prompts / encode_prompts   into the 1024 frame, padding point
            -> _model.EdgeSam._decode         decoder session (+ _mask_prompt) -> low-res logits
            -> _postprocess.upsample_masks    crop, upsample to HxW, threshold -> masks, scores

:class:`SamPredictor` (``_predictor``) runs these steps behind segment_anything's
API; ``device_pipeline`` runs preprocessing and upsampling as small ONNX graphs
instead (``_device_pre``, ``_device_post``). Every exception is in
:mod:`edgesam.errors`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from edgesam import errors
from edgesam._download import download
from edgesam._embedding import ImageEmbedding
from edgesam._model import EdgeSam
from edgesam._predictor import SamPredictor
from edgesam._session import default_session_options
from edgesam.errors import (
    EdgeSamError,
    ImageNotSetError,
    InvalidImageError,
    InvalidInputError,
    InvalidPromptError,
    WeightsError,
)

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
    "EdgeSam",
    "EdgeSamError",
    "ImageEmbedding",
    "ImageNotSetError",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidPromptError",
    "SamAutomaticMaskGenerator",
    "SamPredictor",
    "WeightsError",
    "__version__",
    "default_session_options",
    "download",
    "errors",
]
