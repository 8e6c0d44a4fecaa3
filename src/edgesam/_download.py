"""``edgesam.download``: fetch and verify an official model's files ahead of time."""

from __future__ import annotations

import os
from pathlib import Path

from edgesam._registry import DEFAULT_MODEL, get_model_spec

__all__ = ["download"]


def download(
    model: str = DEFAULT_MODEL,
    *,
    checkpoint: bool = False,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: bool | str | None = None,
    force_download: bool = False,
    endpoint: str | None = None,
) -> dict[str, Path]:
    """Download (if not cached) and verify the files of an official model.

    Use it before going offline, or in a Docker build step; later loads with
    ``HF_HUB_OFFLINE=1`` or ``local_files_only=True`` find the files in the cache.

    Parameters
    ----------
    model : {"edge_sam_3x", "edge_sam"}
        Which model.
    checkpoint : bool
        Also fetch the ``.pth`` checkpoint, which ``mask_input`` needs with the
        official decoder (it is otherwise downloaded on first use of a mask).
    revision, cache_dir, token, force_download, endpoint
        Passed to ``huggingface_hub.hf_hub_download`` under the same names.

    Returns
    -------
    dict of str to pathlib.Path
        ``{"encoder": ..., "decoder": ...[, "checkpoint": ...]}``, verified paths
        in the Hugging Face cache.

    Raises
    ------
    UnknownModelError
        For a model name the registry does not know.
    WeightsError
        When a download fails or a file does not match its pinned sha256.
    """
    spec = get_model_spec(model)
    which = ("encoder", "decoder", "checkpoint") if checkpoint else ("encoder", "decoder")
    from edgesam._hub import fetch_model_files  # huggingface_hub is slow to import

    return fetch_model_files(
        spec,
        which=which,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        force_download=force_download,
        endpoint=endpoint,
    )
