"""EdgeSam.encode_batch, with the official encoder and with a dynamic-batch copy of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesam import EdgeSam
from edgesam.errors import InvalidImageError, InvalidInputError

pytest.importorskip("onnx")


def _inputs(count: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((count, 3, 1024, 1024)).astype(np.float32)


def test_tiny_encoder_batch_matches_single_runs(
    tmp_path: Path, tiny_model_files: dict[str, Path]
) -> None:
    from edgesam.export._batch_encoder import batch_encoder

    batched_file = batch_encoder(tiny_model_files["encoder"], tmp_path / "batch_encoder.onnx")
    plain = EdgeSam.from_files(tiny_model_files["encoder"], tiny_model_files["decoder"])
    batched = EdgeSam.from_files(batched_file, tiny_model_files["decoder"])
    images = _inputs(3)
    singles = np.concatenate([plain.encode(images[i : i + 1]) for i in range(3)])
    assert singles.shape == (3, 256, 64, 64)
    np.testing.assert_array_equal(plain.encode_batch(images), singles)
    np.testing.assert_allclose(batched.encode_batch(images), singles, atol=1e-6)
    np.testing.assert_allclose(batched.encode_batch(images[:1]), singles[:1], atol=1e-6)


@pytest.mark.reference
def test_reference_encoder_batch_matches_single_runs(tmp_path: Path, reference_dir: Path) -> None:
    from edgesam.export._batch_encoder import batch_encoder

    onnx_dir = reference_dir / "onnx"
    batched_file = batch_encoder(
        onnx_dir / "edge_sam_random_encoder.onnx", tmp_path / "batch_encoder.onnx"
    )
    model = EdgeSam.from_files(
        batched_file, onnx_dir / "edge_sam_random_decoder.onnx", providers=["cpu"]
    )
    images = _inputs(2)
    singles = np.concatenate([model.encode(images[i : i + 1]) for i in range(2)])
    # Same graph, same weights; a batch only changes how the work is split (float noise).
    np.testing.assert_allclose(model.encode_batch(images), singles, atol=1e-4)


def test_bad_stacks_are_refused(tiny_model: EdgeSam) -> None:
    with pytest.raises(InvalidImageError, match=r"\(B, 3, 1024, 1024\)"):
        tiny_model.encode_batch(np.zeros((3, 1024, 1024), np.float32))
    with pytest.raises(InvalidImageError, match="empty"):
        tiny_model.encode_batch(np.zeros((0, 3, 1024, 1024), np.float32))


def test_batch_encoder_refuses_a_decoder(tmp_path: Path, tiny_model_files: dict[str, Path]) -> None:
    from edgesam.export._batch_encoder import batch_encoder

    with pytest.raises(InvalidInputError, match="not an EdgeSAM encoder"):
        batch_encoder(tiny_model_files["decoder"], tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
