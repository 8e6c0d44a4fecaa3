"""The public face of the package: exported names, exception tree, no torch at import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgesam
from edgesam import errors as _errors

EXPECTED_ALL = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert edgesam.__all__ == EXPECTED_ALL
    assert sorted(edgesam.__all__) == edgesam.__all__
    for name in edgesam.__all__:
        assert hasattr(edgesam, name), name


def test_import_does_not_import_torch_or_cv2() -> None:
    code = (
        "import sys\nimport edgesam\n"
        "bad = [m for m in ('torch', 'cv2', 'scipy') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (_errors.InvalidInputError, ValueError),
        (_errors.InvalidImageError, ValueError),
        (_errors.InvalidPromptError, ValueError),
        (_errors.InvalidEmbeddingError, ValueError),
        (_errors.UnknownModelError, ValueError),
        (_errors.ImageNotSetError, RuntimeError),
        (_errors.MaskInputUnavailableError, RuntimeError),
        (_errors.WeightsError, OSError),
        (_errors.DownloadError, OSError),
        (_errors.WeightsNotFoundError, FileNotFoundError),
        (_errors.ChecksumMismatchError, OSError),
        (_errors.ModelFileError, ValueError),
        (_errors.CorruptModelError, ValueError),
        (_errors.ModelContractError, ValueError),
        (_errors.CheckpointError, ValueError),
        (_errors.UnsafeCheckpointError, ValueError),
        (_errors.ProviderError, ValueError),
        (_errors.InferenceError, RuntimeError),
        (_errors.MissingExtraError, ImportError),
        (_errors.ExportError, RuntimeError),
    ],
)
def test_every_error_is_an_edgesam_error_and_its_builtin(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, edgesam.EdgeSamError)
    assert issubclass(error, builtin)
    assert error.__name__ in (_errors.__doc__ or "")


def test_version_matches_metadata() -> None:
    from importlib.metadata import version

    assert edgesam.__version__ == version("edgesam")
