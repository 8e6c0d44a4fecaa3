"""Every environment variable edgesam reads, parsed in this one place.

The Hugging Face variables (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``,
``HF_ENDPOINT``, ``HF_TOKEN``) are *not* read here: ``huggingface_hub`` owns
them and edgesam passes its options through under their own names.

=====================  ==========================================================
``EDGESAM_PROVIDERS``  Comma-separated execution providers, in order of
                       preference, e.g. ``"cuda,cpu"`` or
                       ``"CUDAExecutionProvider,CPUExecutionProvider"``.
                       Overrides automatic selection; ``providers=`` overrides it.
                       Unset, empty or blank means automatic selection.
``EDGESAM_API_KEY``    The API key ``edgesam serve`` requires (as
                       ``Authorization: Bearer KEY``) when ``--api-key`` is not
                       given. Unset or empty: no key.
=====================  ==========================================================
"""

from __future__ import annotations

import os

from edgesam._errors import ProviderError

__all__ = ["ENV_API_KEY", "ENV_PROVIDERS", "api_key_from_env", "providers_from_env"]

ENV_PROVIDERS = "EDGESAM_PROVIDERS"
ENV_API_KEY = "EDGESAM_API_KEY"


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
