"""Fixtures for the serve tests: the reference model, an app factory and a client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "fastapi", reason="the serve extra is not installed: pip install 'edgesam[serve]'"
)
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

from fastapi.testclient import TestClient

from edgesam import EdgeSam


@pytest.fixture(scope="session")
def reference_model(reference_dir: Path) -> EdgeSam:
    """The reference ONNX export (random weights), with its checkpoint for mask_input."""
    return EdgeSam.from_files(
        reference_dir / "onnx" / "edge_sam_random_encoder.onnx",
        reference_dir / "onnx" / "edge_sam_random_decoder.onnx",
        checkpoint=reference_dir / "edge_sam_random.pth",
        providers=["cpu"],
    )


@pytest.fixture
def make_client(reference_model: EdgeSam) -> Iterator[Callable[..., TestClient]]:
    """Build an app over the reference model with the given options; closed after the test."""
    from edgesam.serve import create_app

    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        client = TestClient(create_app(reference_model, **options), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
