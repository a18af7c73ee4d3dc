"""The process's one Redis client, and whether Redis answers right now.

Redis is optional and may fail at any moment. A failed call marks it down for REDIS_RETRY_SECONDS:
meanwhile every caller is told at once that it is unavailable (no request waits for a timeout
that is known to come), and the first call after that tries again, so the service recovers on its
own. Going down and coming back are logged once each, never per request.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.core.config import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis was skipped (known to be down) or failed this call."""


class RedisLink:
    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.REDIS_KEY_PREFIX
        self.timeout = settings.REDIS_SOCKET_TIMEOUT_SECONDS
        self.retry_seconds = settings.REDIS_RETRY_SECONDS
        # No connection is made here: the pool connects on first use, on the serving loop.
        self.client: Redis = Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
            # One attempt: a retry would multiply the time a dead Redis costs a request.
            retry=Retry(NoBackoff(), 0),
        )
        self._down = False
        self._skip_until = 0.0

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    @property
    def available(self) -> bool:
        """False while Redis is known to be down and not yet due for another try."""
        return not self._down or time.monotonic() >= self._skip_until

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation` against Redis, or raise RedisUnavailable without waiting long."""
        if not self.available:
            raise RedisUnavailable
        try:
            # The socket timeouts bound each read and connect; this bounds the whole call.
            async with asyncio.timeout(self.timeout * 4):
                result = await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise RedisUnavailable from exc
        self._answered()
        return result

    async def ping(self) -> bool:
        """Whether Redis answers now (tried even while marked down: readiness asks the truth)."""
        self._skip_until = 0.0
        try:
            await self.call(self.client.ping)
        except RedisUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self.client.aclose()

    def _failed(self, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + self.retry_seconds
        if not self._down:
            self._down = True
            # The type only: a message could quote the URL, and with it a password.
            log.warning(
                "redis.unavailable", error=type(exc).__name__, retry_in_s=self.retry_seconds
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            log.info("redis.recovered")
