"""Read an EdgeSAM ``.pth`` checkpoint into the torch network, strictly.

``torch.load(weights_only=True)`` refuses pickles that ask for code to run.
The state dict must then have exactly the network's keys with exactly its
shapes; anything else is a :class:`~edgesam.CheckpointError` that says what
is missing, unexpected or mis-shaped.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch

from edgesam._errors import CheckpointError, UnsafeCheckpointError
from edgesam.export._network import EdgeSamNetwork
from edgesam.export._repvit import UpsampleMode

__all__ = ["load_checkpoint", "read_state_dict"]

logger = logging.getLogger(__name__)

_WRAPPER_KEYS = ("model", "state_dict")
_SHOWN = 5


def _first_sentence(err: BaseException) -> str:
    text = str(err).strip()
    return text.split(". ")[0].splitlines()[0] if text else ""


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"{shown}, ... ({more} more)" if more > 0 else shown


def read_state_dict(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a checkpoint file as a ``{name: tensor}`` dict, safely.

    Accepts a plain state dict (what the authors publish) or one wrapped in a
    ``{"model": ...}`` or ``{"state_dict": ...}`` mapping.

    Parameters
    ----------
    path : str or PathLike
        The ``.pth`` file.

    Returns
    -------
    dict of str to Tensor

    Raises
    ------
    CheckpointError
        The file is missing, is not a torch checkpoint, or does not hold a
        mapping of names to tensors.
    UnsafeCheckpointError
        The pickle references objects other than tensors and plain containers.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint not found: {file} is not a file")
    try:
        with warnings.catch_warnings():
            # A plain pickle.dump (not torch.save) file makes torch warn about its
            # protocol before failing or loading; the outcome is reported below.
            warnings.filterwarnings("ignore", message=r"Detected pickle protocol")
            loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" in str(err).lower():
            raise UnsafeCheckpointError(
                f"{file} asks to run code when unpickled; edgesam loads checkpoints with "
                "torch.load(weights_only=True) and refuses it. Re-save the plain state dict "
                "(torch.save(model.state_dict(), path))."
            ) from err
        raise CheckpointError(
            f"{file} is not a PyTorch checkpoint (a file written by torch.save): "
            "its content is not a torch pickle"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        reason = _first_sentence(err) or f"{type(err).__name__}, the file may be truncated"
        raise CheckpointError(
            f"{file} is not a PyTorch checkpoint (a file written by torch.save): {reason}"
        ) from err

    if isinstance(loaded, Mapping):
        for key in _WRAPPER_KEYS:
            inner = loaded.get(key)
            if isinstance(inner, Mapping):
                loaded = inner
                break
    if not isinstance(loaded, Mapping):
        raise CheckpointError(
            f"{file} does not hold a state dict (a mapping of names to tensors): "
            f"it holds a {type(loaded).__name__}"
        )
    not_tensors = sorted(
        str(key) for key, value in loaded.items() if not isinstance(value, torch.Tensor)
    )
    if not_tensors:
        raise CheckpointError(
            f"{file} is not a state dict: these entries are not tensors: {_listing(not_tensors)}"
        )
    return {str(key): value for key, value in loaded.items()}


def _check_state_dict(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: Path
) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if len(missing) == len(expected):
        raise CheckpointError(
            f"{source} is not an EdgeSAM checkpoint: none of the {len(expected)} expected "
            f"tensors is there (it has {len(state)} others, e.g. {_listing(unexpected)})"
        )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_listing(unexpected)}")
    wrong = sorted(
        f"{name} is {tuple(state[name].shape)}, expected {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and state[name].shape != tensor.shape
    )
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape: {_listing(wrong)}")
    if problems:
        raise CheckpointError(
            f"{source} does not match the EdgeSAM network ({'; '.join(problems)}). "
            "Use an edge_sam / edge_sam_3x checkpoint as the authors publish it."
        )


def load_checkpoint(
    path: str | PathLike[str], *, upsample_mode: UpsampleMode = "bilinear"
) -> EdgeSamNetwork:
    """Build the EdgeSAM network and load a checkpoint into it (``strict=True``).

    Parameters
    ----------
    path : str or PathLike
        An ``edge_sam.pth`` / ``edge_sam_3x.pth`` state dict.
    upsample_mode : {"bilinear", "bicubic"}, default "bilinear"
        Upsampling inside the encoder's fusion; ``"bilinear"`` matches the
        official ONNX files.

    Returns
    -------
    EdgeSamNetwork
        In eval mode, float32, on the CPU.

    Raises
    ------
    CheckpointError
        The file cannot be read, or its keys or shapes differ from the network's.
    """
    source = Path(path)
    state = read_state_dict(source)
    network = EdgeSamNetwork(upsample_mode)
    _check_state_dict(state, network.state_dict(), source)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{source} cannot be loaded into the EdgeSAM network: {err}") from err
    logger.debug("loaded %d tensors from %s", len(state), source)
    return network.float().eval()
