"""The official EdgeSAM models: where their files live, and what they must hash to.

Each model is a :class:`ModelSpec` naming the Hugging Face repository that holds
its files and a pinned :class:`FileSpec` (path, byte size, sha256) for the ONNX
encoder, the ONNX decoder and the PyTorch checkpoint. ``_hub`` downloads a file
and refuses it unless it matches the pin, so the table below *is* the
specification of "the official files".

The files are in the authors' Hugging Face **Space** ``chongzhou/EdgeSAM``
(``repo_type="space"``), under ``weights/``. They are licensed under the
NTU S-Lab License 1.0, which allows non-commercial use only; edgesam never
bundles them and downloads them on first use.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

from edgesam._validate import integer
from edgesam.errors import InvalidInputError, UnknownModelError

__all__ = [
    "DEFAULT_MODEL",
    "FILE_ROLES",
    "MODELS",
    "FileRole",
    "FileSpec",
    "ModelSpec",
    "get_model_spec",
]

RepoType = Literal["model", "dataset", "space"]
FileRole = Literal["encoder", "decoder", "checkpoint"]
FILE_ROLES: tuple[FileRole, ...] = get_args(FileRole)

_SHA256 = re.compile(r"[0-9a-f]{64}")

LICENCE = "NTU S-Lab License 1.0 (non-commercial use only)"
LICENCE_URL = "https://github.com/chongzhou96/EdgeSAM/blob/master/LICENSE"
SPACE_REPO_ID = "chongzhou/EdgeSAM"


@dataclass(frozen=True)
class FileSpec:
    """One pinned file in a Hub repository.

    Parameters
    ----------
    path : str
        Path inside the repository, with ``/`` separators (``"weights/edge_sam_encoder.onnx"``).
    size : int
        Exact size in bytes.
    sha256 : str
        Lower-case hex sha256 of the file's contents (64 characters).

    Raises
    ------
    InvalidInputError
        If ``path`` is empty or absolute, ``size`` is not positive, or ``sha256``
        is not 64 lower-case hex digits.
    """

    path: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/") or "\\" in self.path:
            raise InvalidInputError(
                f"FileSpec.path must be a relative repository path with '/' separators, "
                f"got {self.path!r}"
            )
        integer(self.size, "FileSpec.size")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise InvalidInputError(
                f"FileSpec.sha256 must be 64 lower-case hex digits, got {self.sha256!r}"
            )

    @property
    def filename(self) -> str:
        """The file's base name, e.g. ``"edge_sam_encoder.onnx"``."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """An official model: its repository and its three pinned files.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"edge_sam_3x"``.
    encoder, decoder, checkpoint : FileSpec
        The ONNX image encoder, the ONNX prompt encoder + mask decoder, and the
        PyTorch checkpoint (needed only for mask input and for exporting).
    repo_id : str
        Hugging Face repository holding the files.
    repo_type : {"space", "model", "dataset"}
        Kind of repository; the official files are in a Space.
    licence, licence_url : str
        Licence of the weights, and where to read it.
    """

    name: str
    encoder: FileSpec
    decoder: FileSpec
    checkpoint: FileSpec
    repo_id: str = SPACE_REPO_ID
    repo_type: RepoType = "space"
    licence: str = LICENCE
    licence_url: str = LICENCE_URL

    def file(self, role: FileRole) -> FileSpec:
        """The pinned file for ``role`` (``"encoder"``, ``"decoder"`` or ``"checkpoint"``).

        Raises
        ------
        InvalidInputError
            If ``role`` is not one of the three roles.
        """
        if role not in FILE_ROLES:
            raise InvalidInputError(
                f"file role must be one of {', '.join(map(repr, FILE_ROLES))}, got {role!r}"
            )
        spec: FileSpec = getattr(self, role)
        return spec

    @property
    def repo_url(self) -> str:
        """Web address of the repository on huggingface.co."""
        prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[self.repo_type]
        return f"https://huggingface.co/{prefix}{self.repo_id}"


def _official(name: str, encoder: FileSpec, decoder: FileSpec, checkpoint: FileSpec) -> ModelSpec:
    return ModelSpec(name=name, encoder=encoder, decoder=decoder, checkpoint=checkpoint)


# Pins copied from the authors' Space (chongzhou/EdgeSAM, weights/); see docs/weights.md.
MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "edge_sam": _official(
            "edge_sam",
            encoder=FileSpec(
                "weights/edge_sam_encoder.onnx",
                22098300,
                "c051e69a2a16ca8f5e09583ca18420ef0e75a67387dd90228ac9438f7f01357a",
            ),
            decoder=FileSpec(
                "weights/edge_sam_decoder.onnx",
                15937006,
                "e820af76837271db87478851603c6ce855906ca96baae2238217c2d5a38e0926",
            ),
            checkpoint=FileSpec(
                "weights/edge_sam.pth",
                38807540,
                "439b086a20ab6fba90c12cba32e0001ba3aa726da5791ff8738acdd440330991",
            ),
        ),
        "edge_sam_3x": _official(
            "edge_sam_3x",
            encoder=FileSpec(
                "weights/edge_sam_3x_encoder.onnx",
                22098300,
                "719a498cf5b3fe9be9f01ee513e13d3915f9028aa4f23dfd30eaaa0a17143159",
            ),
            decoder=FileSpec(
                "weights/edge_sam_3x_decoder.onnx",
                15937006,
                "83a2174d54571596913dcb7455d021e713623c3dca30a31c8c41ab98c9fb0863",
            ),
            checkpoint=FileSpec(
                "weights/edge_sam_3x.pth",
                38807540,
                "5a3e3261da9e2f4c8154410885689ae57d09cbf4cf5d0c848b9d80b6df336ece",
            ),
        ),
    }
)
"""Official models by name, read-only."""

DEFAULT_MODEL = "edge_sam_3x"
"""The model used when none is named: trained 3x longer than ``edge_sam``, and better."""


def get_model_spec(name: str) -> ModelSpec:
    """Look up an official model by name.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`: ``"edge_sam_3x"`` (recommended) or ``"edge_sam"``.

    Returns
    -------
    ModelSpec
        The model's repository and pinned files.

    Raises
    ------
    UnknownModelError
        If ``name`` is not a known model; the message lists the known names and
        suggests the closest one.
    """
    known = ", ".join(repr(key) for key in MODELS)
    if not isinstance(name, str):
        raise UnknownModelError(
            f"model must be a model name (str), got {type(name).__name__}: known models are {known}"
        )
    spec = MODELS.get(name)
    if spec is not None:
        return spec
    normalised = name.strip().lower().replace("-", "_").replace(" ", "_")
    guesses = difflib.get_close_matches(normalised, list(MODELS), n=1, cutoff=0.6)
    hint = f"; did you mean {guesses[0]!r}?" if guesses else ""
    raise UnknownModelError(f"unknown model {name!r}: known models are {known}{hint}")
