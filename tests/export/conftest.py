"""Fixtures of the export tests: the reference checkpoint, the network, one export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .export_helpers import Reference


@pytest.fixture(scope="session")
def reference(reference_dir: Path) -> Reference:
    """The authors' reference arrays and files (skips without ../shared/reference)."""
    import json

    return Reference(
        reference_dir,
        np.load(reference_dir / "vectors.npz"),
        json.loads((reference_dir / "vectors.json").read_text()),
    )


@pytest.fixture(scope="session")
def checkpoint(reference_dir: Path) -> Path:
    """``edge_sam_random.pth``: official keys and shapes, random weights."""
    return reference_dir / "edge_sam_random.pth"


@pytest.fixture(scope="session")
def network(checkpoint: Path) -> Any:
    """The torch network with the reference checkpoint, eval mode."""
    pytest.importorskip("torch")
    from edgesam.export import load_checkpoint

    return load_checkpoint(checkpoint)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Any:
    """Every variant exported once per session from the reference checkpoint.

    int8 is calibrated on two of the four reference images.
    """
    pytest.importorskip("torch")
    from edgesam.export import export_onnx

    images = checkpoint.parent / "images"
    return export_onnx(
        checkpoint,
        tmp_path_factory.mktemp("exported"),
        variants=["official", "full", "fp16", "int8"],
        calibration_images=[images / "truck.jpg", images / "groceries.jpg"],
    )


@pytest.fixture(scope="session")
def cpu_session() -> Any:
    """Make CPU onnxruntime sessions (two threads, full optimisation)."""
    import onnxruntime as ort

    def make(path: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return make
