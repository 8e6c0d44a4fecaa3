"""The embedding cache on its own: bytes bound, LRU order, single flight."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from edgesam import ImageEmbedding
from edgesam.serve._cache import EmbeddingCache

EMBEDDING_BYTES = 256 * 64 * 64 * 4


def _embedding(value: float) -> ImageEmbedding:
    return ImageEmbedding(
        array=np.full((1, 256, 64, 64), value, dtype=np.float32),
        original_size=(10, 10),
        input_size=(1024, 1024),
        model_name="m",
        fingerprint="f",
    )


def test_lru_bounded_in_bytes() -> None:
    cache = EmbeddingCache(2 * EMBEDDING_BYTES + 10)
    cache.put("a", _embedding(1))
    cache.put("b", _embedding(2))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", _embedding(3))
    assert "b" not in cache
    assert ("a" in cache, "c" in cache) == (True, True)
    assert cache.nbytes == 2 * EMBEDDING_BYTES
    assert cache.stats.evictions == 1
    cache.put("c", _embedding(4))  # replacing does not double-count
    assert cache.nbytes == 2 * EMBEDDING_BYTES
    assert float(cache.get("c").array.max()) == 4  # type: ignore[union-attr]


def test_too_small_a_cache_keeps_nothing() -> None:
    cache = EmbeddingCache(EMBEDDING_BYTES - 1)
    cache.put("a", _embedding(1))
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_single_flight_runs_once_and_survives_a_cancelled_caller() -> None:
    async def scenario() -> None:
        cache = EmbeddingCache(4 * EMBEDDING_BYTES)
        release = asyncio.Event()
        runs = []

        async def compute() -> ImageEmbedding:
            runs.append(1)
            await release.wait()
            return _embedding(7)

        first = asyncio.create_task(cache.get_or_compute("k", compute))
        await asyncio.sleep(0)
        others = [asyncio.create_task(cache.get_or_compute("k", compute)) for _ in range(4)]
        await asyncio.sleep(0)
        first.cancel()  # the first caller goes away; the run goes on for the others
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*others)
        assert runs == [1]
        assert all(cached for _, cached in results)
        assert len({id(embedding) for embedding, _ in results}) == 1
        assert "k" in cache
        assert (cache.stats.misses, cache.stats.shared) == (1, 4)
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(scenario())


def test_a_failed_run_fails_every_waiter_and_is_not_cached() -> None:
    async def scenario() -> None:
        cache = EmbeddingCache(4 * EMBEDDING_BYTES)
        release = asyncio.Event()

        async def compute() -> ImageEmbedding:
            await release.wait()
            raise ValueError("bad image")

        waiters = [asyncio.create_task(cache.get_or_compute("k", compute)) for _ in range(3)]
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(result, ValueError) for result in results)
        assert "k" not in cache
        assert cache.stats.misses == 1

    asyncio.run(scenario())
