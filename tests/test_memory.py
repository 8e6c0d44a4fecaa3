"""_memory: freed heap memory goes back to the OS after set_image (glibc), and the switch works."""

from __future__ import annotations

import platform

import numpy as np
import pytest

import edgesam._memory as heap
import edgesam._predictor as predictor_module
from edgesam import EdgeSam, InvalidImageError, SamPredictor

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's; elsewhere release_free_heap is a no-op",
)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@glibc_only
def test_release_free_heap_returns_freed_pages_to_the_os() -> None:
    # 400 blocks of 96 KiB (below glibc's initial 128 KiB mmap threshold, so they
    # come from the heap), each followed by a 4 KiB block that stays allocated (numpy caches
    # blocks under 1 KiB itself): when
    # the large ones are freed the heap cannot shrink from the top, and their pages
    # stay resident until malloc_trim hands them back.
    large, pinned = [], []
    for _ in range(400):
        block = np.ones(96 * 1024, dtype=np.uint8)
        large.append(block)
        pinned.append(np.ones(4096, dtype=np.uint8))
    del block
    large.clear()
    before = _resident_bytes()
    assert heap.release_free_heap() is True
    after = _resident_bytes()
    assert before - after > 20 * 2**20, (before, after)
    assert len(pinned) == 400


def test_release_free_heap_is_a_no_op_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    heap._malloc_trim.cache_clear()
    monkeypatch.setattr(heap.platform, "system", lambda: "Darwin")
    try:
        assert heap.release_free_heap() is False
    finally:
        heap._malloc_trim.cache_clear()


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry per heap trim that set_image asks for."""
    calls: list[None] = []
    monkeypatch.setattr(predictor_module, "release_free_heap", lambda: calls.append(None))
    return calls


@pytest.mark.parametrize("trim_memory", [True, False])
def test_set_image_trims_only_when_asked(
    tiny_model: EdgeSam, trims: list[None], trim_memory: bool
) -> None:
    predictor = SamPredictor(tiny_model)
    assert predictor.trim_memory is True  # the default
    predictor.trim_memory = trim_memory
    for size in (40, 60):
        predictor.set_image(np.zeros((size, size + 10, 3), dtype=np.uint8))
    assert len(trims) == (2 if trim_memory else 0)


def test_set_image_trims_only_after_a_change_of_image_size(
    tiny_model: EdgeSam, trims: list[None]
) -> None:
    # A same-sized image reuses the blocks the previous call freed: nothing to trim.
    predictor = SamPredictor(tiny_model)
    trimmed = []
    for height, width in [(40, 50), (40, 50), (40, 50), (50, 40), (40, 50), (40, 50)]:
        before = len(trims)
        predictor.set_image(np.zeros((height, width, 3), dtype=np.uint8))
        trimmed.append(len(trims) - before)
    assert trimmed == [1, 0, 0, 1, 1, 0]


def test_a_failed_set_image_does_not_count_as_the_previous_size(
    tiny_model: EdgeSam, trims: list[None]
) -> None:
    predictor = SamPredictor(tiny_model)
    predictor.set_image(np.zeros((40, 50, 3), dtype=np.uint8))
    with pytest.raises(InvalidImageError):
        predictor.set_image(np.zeros((1, 5000, 3), dtype=np.uint8))  # too elongated
    predictor.set_image(np.zeros((40, 50, 3), dtype=np.uint8))
    assert len(trims) == 1
