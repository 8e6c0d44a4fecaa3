"""Windowed upsampling: the same logits as the full upsampling where it matters."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam._postprocess import upsample_logits, window_logits


def _input_size(height: int, width: int) -> tuple[int, int]:
    scale = 1024 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def _disc(cy: float, cx: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:256, :256]
    return ((radius - np.hypot(yy - cy, xx - cx)) / 4).astype(np.float32)


CASES = [
    _disc(40, 60, 10),
    _disc(100, 20, 60),
    _disc(0, 255, 30),  # top-right corner: in the padding of a portrait image
    np.random.default_rng(0).normal(0, 2, (256, 256)).astype(np.float32),  # everywhere
]


@pytest.mark.parametrize("size", [(120, 180), (180, 120), (37, 53), (64, 64)])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_window_matches_full_upsampling(size: tuple[int, int], case: int) -> None:
    low = CASES[case]
    dense = upsample_logits(low, size, _input_size(*size))
    window = window_logits(low, size, _input_size(*size), -1.0)
    if window is None:  # e.g. the corner disc lies in a portrait image's padding
        assert (dense <= -1.0 + 1e-5).all()
        return
    height, width = window.logits.shape
    inside = (slice(window.top, window.top + height), slice(window.left, window.left + width))
    np.testing.assert_allclose(window.logits, dense[inside], atol=1e-5)
    outside = np.ones(size, dtype=bool)
    outside[inside] = False
    assert (dense[outside] <= -1.0 + 1e-5).all()


def test_small_disc_needs_a_small_window() -> None:
    window = window_logits(CASES[0], (1200, 1800), _input_size(1200, 1800), -1.0)
    assert window is not None
    # support: low-res rows/cols ~ 30..50 x 50..70, i.e. ~7 image px per low-res px
    assert window.logits.size < 0.05 * 1200 * 1800
    assert 150 < window.top < 300
    assert 300 < window.left < 450


def test_nothing_above_the_floor_gives_none() -> None:
    low = np.full((256, 256), -3.0, dtype=np.float32)
    assert window_logits(low, (120, 180), _input_size(120, 180), -1.0) is None


def test_support_only_in_the_padding_gives_none() -> None:
    # A 120 x 180 image fills rows 0..683 of the 1024 frame: low-res rows >= 171
    # are padding that no output pixel reads.
    low = np.full((256, 256), -3.0, dtype=np.float32)
    low[200:, :] = 5.0
    assert window_logits(low, (120, 180), _input_size(120, 180), -1.0) is None
