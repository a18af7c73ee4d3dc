"""A moving-window rate limit counted in this process's memory, in constant time and space per
client, whatever the rate.

`limits`' own in-memory moving window keeps one timestamp per hit, inserted at the front of a
list: at a raised limit a busy client's list grows to hundreds of thousands of entries, each hit
costs a copy of it (measured: 80 us a hit at 10,000 entries, 190 us at 100,000, 23 MB), and its
expiry sweep takes a thread hop per client; after a `clear()` that sweep fails with a KeyError.

Here the hits of a window of length W are kept in at most RESOLUTION + 1 buckets: a bucket takes
every hit that comes within W / RESOLUTION of its first, and counts until its last hit is W old.
The total therefore covers every hit of the last W, and some a little older: never more than
the limit in any span W long, a Retry-After never longer than W, and a refused client waits at
most W / RESOLUTION longer than an exact log would make it wait. Hits further apart than that
(any limit of at most RESOLUTION per window, at its full rate) are kept one per bucket, exactly.
Clients are kept in order of their last hit; those whose window has emptied are dropped as
others hit.
"""

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Buckets per window: the precision of the window, and the memory a client costs (a few KiB).
RESOLUTION = 60


@dataclass(frozen=True, slots=True)
class WindowState:
    """Where one client stands: hits left, and seconds until the oldest counted bucket leaves
    the window (when the next hit is allowed, if none are left)."""

    remaining: int
    reset_seconds: float
    counted: bool = True


@dataclass(slots=True)
class _Hits:
    # [first hit, last hit, count] of each bucket, oldest first.
    buckets: deque[list[float]] = field(default_factory=deque)
    total: int = 0


class LocalMovingWindow:
    """At most `amount` hits per `window_seconds` for each key, in this process."""

    def __init__(
        self, amount: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.amount = amount
        self.window_seconds = window_seconds
        self._bucket_seconds = window_seconds / RESOLUTION
        self._clock = clock
        self._clients: OrderedDict[str, _Hits] = OrderedDict()

    def hit(self, key: str) -> WindowState:
        """Count one hit for `key`, unless its window is full: then it is not counted."""
        now = self._clock()
        self._drop_idle_clients(now)
        hits = self._clients.get(key)
        if hits is None:
            hits = self._clients[key] = _Hits()
        else:
            self._clients.move_to_end(key)
            self._expire(hits, now)
        if hits.total >= self.amount:
            return WindowState(0, self._reset_seconds(hits, now), counted=False)
        newest = hits.buckets[-1] if hits.buckets else None
        if newest is not None and now - newest[0] < self._bucket_seconds:
            newest[1] = now
            newest[2] += 1
        else:
            hits.buckets.append([now, now, 1])
        hits.total += 1
        return WindowState(self.amount - hits.total, self._reset_seconds(hits, now))

    def check(self, key: str) -> WindowState:
        """Where `key` stands, counting nothing."""
        now = self._clock()
        hits = self._clients.get(key)
        if hits is None:
            return WindowState(self.amount, 0)
        self._expire(hits, now)
        return WindowState(max(0, self.amount - hits.total), self._reset_seconds(hits, now))

    def clear(self, key: str) -> None:
        """Forget every hit of `key`, as if its window had passed."""
        self._clients.pop(key, None)

    def _expire(self, hits: _Hits, now: float) -> None:
        while hits.buckets and self._leaves_at(hits.buckets[0]) <= now:
            hits.total -= int(hits.buckets.popleft()[2])

    def _leaves_at(self, bucket: list[float]) -> float:
        """When every hit in `bucket` is a full window old."""
        return bucket[1] + self.window_seconds

    def _reset_seconds(self, hits: _Hits, now: float) -> float:
        if not hits.buckets:
            return 0
        return max(0.0, self._leaves_at(hits.buckets[0]) - now)

    def _drop_idle_clients(self, now: float) -> None:
        """Drop the least recently seen clients whose whole window has passed (their last
        hit is a window old)."""
        while self._clients:
            key, oldest = next(iter(self._clients.items()))
            if oldest.buckets and self._leaves_at(oldest.buckets[-1]) > now:
                return
            del self._clients[key]

    def __len__(self) -> int:
        """How many clients are kept."""
        return len(self._clients)
