"""The embedding cache: an LRU bounded in bytes, shared by every client.

Entries are keyed by image id (the sha256 of the uploaded bytes). Two requests
for the same id that arrive while its encoder run is under way share that run
(single flight): the encoder runs once and both get its result.

Everything here runs on the server's event loop, so no lock is needed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edgesam import ImageEmbedding

__all__ = ["CacheStats", "EmbeddingCache"]


@dataclass
class CacheStats:
    """Counters since the cache was made."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    shared: int = 0  # requests that waited for another request's encoder run


class EmbeddingCache:
    """Least-recently-used embeddings, at most ``max_bytes`` of arrays in all.

    Parameters
    ----------
    max_bytes : int
        Upper bound on the summed ``array.nbytes`` of the cached embeddings
        (4 MiB each). The least recently used entries go first.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._entries: OrderedDict[str, ImageEmbedding] = OrderedDict()
        self._bytes = 0
        self._running: dict[str, asyncio.Future[ImageEmbedding]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def get(self, key: str) -> ImageEmbedding | None:
        """The embedding for ``key`` (and mark it recently used), or None."""
        embedding = self._entries.get(key)
        if embedding is not None:
            self._entries.move_to_end(key)
        return embedding

    def put(self, key: str, embedding: ImageEmbedding) -> None:
        """Store ``embedding`` under ``key``, evicting the oldest entries to make room."""
        size = embedding.array.nbytes
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.array.nbytes
        while self._entries and self._bytes + size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.array.nbytes
            self.stats.evictions += 1
        self._entries[key] = embedding
        self._bytes += size

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[ImageEmbedding]]
    ) -> tuple[ImageEmbedding, bool]:
        """The embedding for ``key``, computing it once however many ask at once.

        The computation runs as its own task: a caller that goes away (a client
        disconnecting) does not cancel it for the others, and its result is
        cached either way.

        Returns
        -------
        embedding : ImageEmbedding
        cached : bool
            True when no encoder run was started for this call (a hit, or a
            run another request had started).
        """
        embedding = self.get(key)
        if embedding is not None:
            self.stats.hits += 1
            return embedding, True
        task = self._running.get(key)
        started = task is None
        if task is None:
            self.stats.misses += 1
            task = asyncio.ensure_future(self._compute(key, compute))
            # Retrieve the outcome even when every caller has gone, so that asyncio
            # does not log "exception was never retrieved".
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._running[key] = task
        else:
            self.stats.shared += 1
        return await asyncio.shield(task), not started

    async def _compute(
        self, key: str, compute: Callable[[], Awaitable[ImageEmbedding]]
    ) -> ImageEmbedding:
        try:
            embedding = await compute()
            self.put(key, embedding)
            return embedding
        finally:
            del self._running[key]
