"""The exception tree of edgesam.

Every error the package raises on purpose is an :class:`EdgeSamError`, and each
subclass also inherits the builtin exception a caller would already catch::

    EdgeSamError
    ├── InvalidInputError (ValueError)            an argument a caller passed is wrong
    │   ├── InvalidImageError                     image: dtype, shape, channels, size
    │   ├── InvalidPromptError                    points, labels, boxes, mask_input
    │   └── InvalidEmbeddingError                 an ImageEmbedding / .npz that does not fit
    ├── UnknownModelError (ValueError)            a model name the registry does not know
    ├── ImageNotSetError (RuntimeError)           predict() before set_image()
    ├── MaskInputUnavailableError (RuntimeError)  mask_input with no way to honour it
    ├── WeightsError (OSError)                    getting model files onto disk
    │   ├── DownloadError                         the Hub (or its mirror) failed
    │   ├── WeightsNotFoundError (FileNotFoundError)  a file is neither cached nor local
    │   └── ChecksumMismatchError                 a file is not the pinned one
    ├── ModelFileError (ValueError)               a model file that cannot be used
    │   ├── CorruptModelError                     not a readable ONNX model
    │   └── ModelContractError                    inputs/outputs differ from the contract
    ├── CheckpointError (ValueError)              a .pth checkpoint that cannot be read
    │   └── UnsafeCheckpointError                 a pickle that asks for code to run
    ├── ProviderError (ValueError)                an execution-provider request that is wrong
    ├── InferenceError (RuntimeError)             onnxruntime failed while running
    ├── MissingExtraError (ImportError)           an optional extra is not installed
    └── ExportError (RuntimeError)                exporting ONNX from a checkpoint failed
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ChecksumMismatchError",
    "CorruptModelError",
    "DownloadError",
    "EdgeSamError",
    "ExportError",
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
    "UnknownModelError",
    "UnsafeCheckpointError",
    "WeightsError",
    "WeightsNotFoundError",
]


class EdgeSamError(Exception):
    """Root of every error that edgesam raises on purpose."""


class InvalidInputError(EdgeSamError, ValueError):
    """An argument passed to a public function is not valid.

    Parameters
    ----------
    message : str
        What was wrong, what was received, and the fix.
    argument : str, optional
        The name of the offending Python argument (``"point_coords"``), when
        one argument is to blame; available as :attr:`argument`.
    """

    def __init__(self, *args: object, argument: str | None = None) -> None:
        super().__init__(*args)
        self.argument = argument


class InvalidImageError(InvalidInputError):
    """The image has the wrong type, dtype, shape, channel count or size."""


class InvalidPromptError(InvalidInputError):
    """Points, labels, boxes or ``mask_input`` are malformed."""


class InvalidEmbeddingError(InvalidInputError):
    """An image embedding (object or file) does not fit this model or is damaged."""


class UnknownModelError(EdgeSamError, ValueError):
    """A model name that the registry does not know."""


class ImageNotSetError(EdgeSamError, RuntimeError):
    """``predict`` or ``get_image_embedding`` was called before ``set_image``."""


class MaskInputUnavailableError(EdgeSamError, RuntimeError):
    """``mask_input`` was given but neither the decoder nor a checkpoint can honour it."""


class WeightsError(EdgeSamError, OSError):
    """Model files could not be obtained."""


class DownloadError(WeightsError):
    """The Hub (or the endpoint configured instead) did not deliver a file."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A model file is neither cached, nor local, nor downloadable (e.g. offline)."""


class ChecksumMismatchError(WeightsError):
    """A file's size or sha256 differs from the pinned value."""


class ModelFileError(EdgeSamError, ValueError):
    """A model file exists but cannot be used."""


class CorruptModelError(ModelFileError):
    """The file is not a readable ONNX model (truncated, corrupt, or another format)."""


class ModelContractError(ModelFileError):
    """The model's inputs or outputs differ from the EdgeSAM ONNX contract."""


class CheckpointError(EdgeSamError, ValueError):
    """A ``.pth`` checkpoint cannot be read or lacks the tensors that are needed."""


class UnsafeCheckpointError(CheckpointError):
    """A ``.pth`` pickle references objects other than tensors and plain containers."""


class ProviderError(EdgeSamError, ValueError):
    """An execution-provider request (argument or ``EDGESAM_PROVIDERS``) is invalid."""


class InferenceError(EdgeSamError, RuntimeError):
    """onnxruntime failed while running a model, even after falling back to CPU."""


class MissingExtraError(EdgeSamError, ImportError):
    """A feature needs an optional extra that is not installed."""


class ExportError(EdgeSamError, RuntimeError):
    """Building the network from a checkpoint or writing ONNX files failed."""
