"""Shared fixtures: where the reference data lives, and the tiny test models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_reference_dir() -> Path | None:
    configured = os.environ.get("EDGESAM_REFERENCE_DIR")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "reference"
    return candidate if (candidate / "vectors.npz").is_file() else None


REFERENCE_DIR = _find_reference_dir()
SKIP_NO_REFERENCE = (
    "reference data not found: these tests need ../shared/reference beside the checkout "
    "(or EDGESAM_REFERENCE_DIR); CI has it, a user's clone does not"
)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The authors' reference data (``../shared/reference``); skips the test when absent."""
    if REFERENCE_DIR is None:
        pytest.skip(SKIP_NO_REFERENCE)
    return REFERENCE_DIR
