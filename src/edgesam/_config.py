"""Every environment variable edgesam reads, parsed in this one place.

The Hugging Face variables (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``,
``HF_ENDPOINT``, ``HF_TOKEN``) are *not* read here: ``huggingface_hub`` owns
them and edgesam passes its options through under their own names.

=============================  ==================================================
``EDGESAM_PROVIDERS``          Comma-separated execution providers, in order of
                               preference, e.g. ``"cuda,cpu"`` or
                               ``"CUDAExecutionProvider,CPUExecutionProvider"``.
                               Overrides automatic selection; ``providers=``
                               overrides it. Unset, empty or blank means
                               automatic selection.
``EDGESAM_DOWNLOAD_TIMEOUT``   Seconds one model file's download may take in
                               all (connecting, every retry, every byte)
                               before it is abandoned with a ``DownloadError``.
                               Default 1800 (30 minutes); ``0`` or ``none``
                               means no limit.
``EDGESAM_API_KEY``            The API key ``edgesam serve`` requires (as
                               ``Authorization: Bearer KEY``) when ``--api-key``
                               is not given. Unset or empty: no key.
=============================  ==================================================
"""

from __future__ import annotations

import math
import os

from edgesam.errors import InvalidInputError, ProviderError

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "ENV_API_KEY",
    "ENV_DOWNLOAD_TIMEOUT",
    "ENV_PROVIDERS",
    "api_key_from_env",
    "download_timeout_from_env",
    "providers_from_env",
]

ENV_PROVIDERS = "EDGESAM_PROVIDERS"
ENV_API_KEY = "EDGESAM_API_KEY"
ENV_DOWNLOAD_TIMEOUT = "EDGESAM_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT = 1800.0


def download_timeout_from_env() -> float | None:
    """Seconds a file's download may take in all, from ``EDGESAM_DOWNLOAD_TIMEOUT``.

    Returns the default (1800) when unset or blank, None for ``0`` or ``none``
    (no limit).

    Raises
    ------
    InvalidInputError
        If the value is not a non-negative number of seconds.
    """
    raw = os.environ.get(ENV_DOWNLOAD_TIMEOUT)
    if raw is None or not raw.strip():
        return DEFAULT_DOWNLOAD_TIMEOUT
    text = raw.strip().lower()
    if text == "none":
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InvalidInputError(
            f"{ENV_DOWNLOAD_TIMEOUT}={raw!r} is not a number of seconds; set it to e.g. 3600, "
            "to 0 or 'none' for no limit, or unset it for the default of 1800 (30 minutes)"
        )
    return seconds or None


def providers_from_env() -> list[str] | None:
    """Return the provider names listed in ``EDGESAM_PROVIDERS``, or None when unset.

    The names are returned as written (trimmed); ``_providers`` resolves aliases.

    Raises
    ------
    ProviderError
        If the list has an empty entry (``"cuda,,cpu"``).
    """
    raw = os.environ.get(ENV_PROVIDERS)
    if raw is None or not raw.strip():
        return None
    names = [part.strip() for part in raw.split(",")]
    if any(not name for name in names):
        raise ProviderError(
            f"{ENV_PROVIDERS}={raw!r} has an empty entry; write a comma-separated list "
            "such as 'cuda,cpu', or unset it for automatic selection"
        )
    return names


def api_key_from_env() -> str | None:
    """The API key in ``EDGESAM_API_KEY`` for ``edgesam serve``, or None when unset or empty."""
    return os.environ.get(ENV_API_KEY) or None
