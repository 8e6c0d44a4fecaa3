"""Shared fixtures: where the reference data lives, and the tiny test models."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _find_reference_dir() -> Path | None:
    configured = os.environ.get("EDGESAM_REFERENCE_DIR")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "reference"
    return candidate if (candidate / "vectors.npz").is_file() else None


pytest_plugins = ["fakehub"]

REFERENCE_DIR = _find_reference_dir()
SKIP_NO_REFERENCE = (
    "reference data not found: these tests need ../shared/reference beside the checkout "
    "(or EDGESAM_REFERENCE_DIR); CI has it, a user's clone does not"
)


# The reference data set's images (its vectors.json; test_reference checks they match), so
# that parametrised tests have the same ids with the data and without it.
REFERENCE_IMAGES = ("truck", "groceries", "synthetic", "tiny")


def pytest_report_header(config: pytest.Config) -> str | None:
    if REFERENCE_DIR is not None:
        return f"reference data: {REFERENCE_DIR}"
    return f"reference data: not found; the tests that need it skip ({SKIP_NO_REFERENCE})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Report every missing-reference skip from one place, so ``-ra`` folds them into one line."""
    outcome = yield
    report = outcome.get_result()
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and SKIP_NO_REFERENCE in str(longrepr[2]):
        report.longrepr = (str(Path(__file__)), _SKIP_LINE, longrepr[2])


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The authors' reference data (``../shared/reference``); skips the test when absent."""
    if REFERENCE_DIR is None:
        _skip_no_reference()
    return REFERENCE_DIR


def _skip_no_reference() -> NoReturn:
    pytest.skip(SKIP_NO_REFERENCE)


_SKIP_LINE = _skip_no_reference.__code__.co_firstlineno


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of the tiny encoder, decoder and full (mask + batch) decoder."""
    from tiny_models import build_decoder, build_encoder

    folder = tmp_path_factory.mktemp("tiny_models")
    return {
        "encoder": build_encoder(folder / "tiny_encoder.onnx"),
        "decoder": build_decoder(folder / "tiny_decoder.onnx"),
        "full_decoder": build_decoder(folder / "tiny_full_decoder.onnx", full=True),
    }


@pytest.fixture(scope="session")
def tiny_model(tiny_model_files: dict[str, Path]):  # type: ignore[no-untyped-def]
    """One shared EdgeSam over the tiny encoder and official-contract decoder."""
    from edgesam import EdgeSam

    return EdgeSam.from_files(
        tiny_model_files["encoder"], tiny_model_files["decoder"], providers=["cpu"]
    )


@pytest.fixture(scope="session")
def tiny_full_model(tiny_model_files: dict[str, Path]):  # type: ignore[no-untyped-def]
    """One shared EdgeSam over the tiny encoder and the full (mask + batch) decoder."""
    from edgesam import EdgeSam

    return EdgeSam.from_files(
        tiny_model_files["encoder"], tiny_model_files["full_decoder"], providers=["cpu"]
    )
