"""Read an EdgeSAM ``.pth`` checkpoint into the torch network, strictly.

The file is read by the package's torch-free reader
(:func:`edgesam._checkpoint.read_state_dict`: an allowlist unpickler, nothing in
the file is ever run) and its arrays become tensors with ``torch.from_numpy``.
The state dict must then have exactly the network's keys with exactly its
shapes; anything else is a :class:`~edgesam.errors.CheckpointError` that says what is
missing, unexpected or mis-shaped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch

from edgesam._checkpoint import listing
from edgesam._checkpoint import read_state_dict as read_arrays
from edgesam.errors import CheckpointError
from edgesam.export._network import EdgeSamNetwork
from edgesam.export._repvit import UpsampleMode

__all__ = ["load_checkpoint", "read_state_dict"]

logger = logging.getLogger(__name__)


def read_state_dict(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a checkpoint file as a ``{name: tensor}`` dict, safely and without its pickle.

    Accepts what :func:`edgesam._checkpoint.read_state_dict` accepts: a plain
    state dict (what the authors publish) or one wrapped in a ``{"model": ...}``
    or ``{"state_dict": ...}`` mapping, saved by ``torch.save`` (PyTorch 1.6 or
    later).

    Parameters
    ----------
    path : str or PathLike
        The ``.pth`` file.

    Returns
    -------
    dict of str to Tensor
        CPU tensors sharing memory with the arrays read.

    Raises
    ------
    CheckpointError
        The file is missing, is not a torch checkpoint, or does not hold a
        mapping of names to tensors.
    UnsafeCheckpointError
        The pickle references objects other than tensors and plain containers.
    """
    return {name: torch.from_numpy(array) for name, array in read_arrays(path).items()}


def _check_state_dict(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: Path
) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if len(missing) == len(expected):
        raise CheckpointError(
            f"{source} is not an EdgeSAM checkpoint: none of the {len(expected)} expected "
            f"tensors is there (it has {len(state)} others, e.g. {listing(unexpected)})"
        )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {listing(unexpected)}")
    wrong = sorted(
        f"{name} is {tuple(state[name].shape)}, expected {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and state[name].shape != tensor.shape
    )
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape: {listing(wrong)}")
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
