"""Where the response cache keeps final responses: in Redis (shared), or in this process's memory.

Entries are kept per generation of what they show. Every entry depends on tags (`post:7`,
`authors`), each with a generation counter. A reader takes the generations *before* it builds its
response and stores the response with them; a committed write bumps the generations of its tags
(after the commit, through the domain events). An entry whose generations are no longer the
current ones is never served, so a slow reader that loaded the old row before a write and stores
it after the write's invalidation leaves nothing anyone will read: the classic cache-aside race
cannot leave a stale entry behind. Entries are never deleted, they expire (CACHE_TTL_SECONDS).

An invalidation that cannot reach Redis is kept and retried first thing on this process's next
use of the cache; until it has been delivered, this process neither reads nor fills the cache.
"""

import json
from collections import OrderedDict
from collections.abc import Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol, cast

from app.core.config import CacheBackend, Settings
from app.core.redis import RedisLink, RedisUnavailable

# Generation counters outlive every entry that could name them by far: one that expired and
# started again at 0 can only meet entries that are long gone.
_MIN_GENERATION_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A final response as the app sent it: what a hit replays, byte for byte."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a lookup found (None: a miss), and the generations a response built now must carry."""

    response: CachedResponse | None
    generations: str


class CacheStore(Protocol):
    async def lookup(self, key: str, tags: Sequence[str]) -> Lookup:
        """The entry under `key` if it was built at the tags' current generations.

        Raises RedisUnavailable when the shared copy cannot be asked: the caller goes without."""
        ...

    async def store(self, key: str, generations: str, response: CachedResponse) -> None:
        """Keep `response`, built at `generations` (from this request's lookup)."""
        ...

    async def invalidate(self, tags: Collection[str]) -> None:
        """Make every entry that depends on any of `tags` stale. Never raises."""
        ...


def build_cache_store(settings: Settings, redis: RedisLink | None) -> CacheStore | None:
    """The store CACHE_BACKEND names, or None when the cache is off."""
    backend = settings.cache_backend
    if backend is CacheBackend.MEMORY:
        return MemoryCacheStore(settings.CACHE_MEMORY_MAX_ENTRIES)
    if backend is CacheBackend.REDIS:
        # The settings refuse CACHE_BACKEND=redis without REDIS_URL, so there is a link.
        assert redis is not None
        return RedisCacheStore(redis, ttl_seconds=settings.CACHE_TTL_SECONDS)
    return None


def _encode(generations: str, response: CachedResponse) -> bytes:
    # JSON escapes newlines, so the first b"\n" ends the head; the body follows as it is.
    head = [
        generations,
        response.status,
        [[name.decode("latin-1"), value.decode("latin-1")] for name, value in response.headers],
    ]
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + response.body


def _decode(data: bytes) -> tuple[str, CachedResponse]:
    head, _, body = data.partition(b"\n")
    generations, status, headers = json.loads(head)
    return generations, CachedResponse(
        status=status,
        headers=tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers),
        body=body,
    )


class RedisCacheStore:
    """The shared copy: any number of workers and machines read and invalidate the same entries."""

    def __init__(self, redis: RedisLink, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.generation_ttl_seconds = max(_MIN_GENERATION_TTL_SECONDS, 10 * ttl_seconds)
        self._undelivered: set[str] = set()

    def _entry_key(self, key: str) -> str:
        return self.redis.key("cache", key)

    def _generation_key(self, tag: str) -> str:
        return self.redis.key("generation", tag)

    async def lookup(self, key: str, tags: Sequence[str]) -> Lookup:
        await self._deliver_undelivered()
        # One round trip: the entry and the current generations of its tags together.
        # Bytes: the client does not decode responses.
        found = await self.redis.call(
            lambda: self.redis.client.mget(
                [self._entry_key(key), *(self._generation_key(tag) for tag in tags)]
            )
        )
        entry, *counters = cast(list[bytes | None], found)
        current = ".".join(counter.decode() if counter else "0" for counter in counters)
        if entry is None:
            return Lookup(None, current)
        generations, response = _decode(entry)
        return Lookup(response if generations == current else None, current)

    async def store(self, key: str, generations: str, response: CachedResponse) -> None:
        if self._undelivered:
            return
        value = _encode(generations, response)
        await self.redis.call(
            lambda: self.redis.client.set(self._entry_key(key), value, ex=self.ttl_seconds)
        )

    async def invalidate(self, tags: Collection[str]) -> None:
        self._undelivered.update(tags)
        # Kept when Redis does not answer, and delivered before this process uses the cache again.
        with suppress(RedisUnavailable):
            await self._deliver_undelivered()

    async def _deliver_undelivered(self) -> None:
        if not self._undelivered:
            return
        tags = sorted(self._undelivered)

        async def bump() -> None:
            async with self.redis.client.pipeline(transaction=False) as pipeline:
                for tag in tags:
                    pipeline.incr(self._generation_key(tag))
                    pipeline.expire(self._generation_key(tag), self.generation_ttl_seconds)
                await pipeline.execute()

        await self.redis.call(bump)
        self._undelivered.difference_update(tags)


class MemoryCacheStore:
    """One process's private cache (CACHE_BACKEND=memory): for a single-process deployment."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[str, CachedResponse]] = OrderedDict()
        self._generations: dict[str, int] = {}

    def _current(self, tags: Sequence[str]) -> str:
        return ".".join(str(self._generations.get(tag, 0)) for tag in tags)

    async def lookup(self, key: str, tags: Sequence[str]) -> Lookup:
        current = self._current(tags)
        entry = self._entries.get(key)
        if entry is None or entry[0] != current:
            return Lookup(None, current)
        self._entries.move_to_end(key)
        return Lookup(entry[1], current)

    async def store(self, key: str, generations: str, response: CachedResponse) -> None:
        self._entries[key] = (generations, response)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def invalidate(self, tags: Collection[str]) -> None:
        for tag in tags:
            self._generations[tag] = self._generations.get(tag, 0) + 1
