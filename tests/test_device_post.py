"""The post-processing graph against the host upsampling: identical masks."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edgesam._device_pipeline import _graph_bytes
from edgesam._device_post import postprocess_feeds
from edgesam._postprocess import stability_scores, upsample_logits, upsample_masks
from edgesam._transforms import input_size_for


@pytest.fixture(scope="module")
def graph() -> ort.InferenceSession:
    return ort.InferenceSession(
        _graph_bytes("postprocess.onnx"), providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize(
    "original_size", [(1800, 1200), (534, 800), (37, 53), (1, 1500), (1500, 1), (1024, 1024)]
)
def test_graph_masks_logits_and_stability_match_the_host(
    graph: ort.InferenceSession, original_size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(original_size))
    # Logits spread like a trained decoder's (std about 4), some exactly at the threshold.
    low_res = (rng.standard_normal((3, 256, 256)) * 4).astype(np.float32)
    low_res[0, :8] = 0.0
    input_size = input_size_for(original_size)
    logits, masks, stability = graph.run(
        None, postprocess_feeds(low_res, original_size, input_size)
    )
    assert masks.dtype == np.bool_
    assert masks.shape == (3, *original_size)
    np.testing.assert_array_equal(masks, upsample_masks(low_res, original_size, input_size))
    host_logits = upsample_logits(low_res, original_size, input_size)
    # Dense products instead of banded ones: the same terms, float32 rounding apart.
    np.testing.assert_allclose(logits, host_logits, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(stability, stability_scores(host_logits))


def test_graph_stability_of_empty_masks_is_zero(graph: ort.InferenceSession) -> None:
    low_res = np.full((2, 256, 256), -20.0, dtype=np.float32)
    low_res[1, 100:120, 100:120] = 20.0
    _, masks, stability = graph.run(None, postprocess_feeds(low_res, (300, 400), (768, 1024)))
    assert stability[0] == 0.0
    assert not masks[0].any()
    assert 0.0 < stability[1] <= 1.0
    assert masks[1].any()
