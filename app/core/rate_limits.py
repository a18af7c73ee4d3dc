"""Rate limits: how often a client may do a thing per window, counted in memory or in Redis.

Every limit is a moving window: at most `amount` hits in any span one window long, and a refused
client is refused until the moment its Retry-After names. The alternatives cost more where it
matters: a fixed window lets twice the amount through around its boundary, and `limits`'
sliding-window counter is an estimate whose in-memory storage walks every client's counters on
each hit (measured: 1 ms a request with 5,000 clients).

- The general limit (RATE_LIMIT_DEFAULT) is kept in each process's memory, so hot reads pay no
  Redis round trip: each of the WEB_CONCURRENCY workers allows its share of the rate. It is
  counted in buckets of a sixtieth of the window (app/core/local_window.py): constant time and
  memory per client whatever the rate, where `limits`' in-memory window keeps a timestamp per hit.
- The sign-in, sign-up and mail-request limits are shared by every process: in Redis when
  REDIS_URL is set (`limits`' MovingWindowRateLimiter), else in this process's memory (all there
  is then), as the general limit is. When Redis cannot be reached they refuse
  (RateLimitUnavailable, 503) rather than let password guessing, or a flood of mail, through.
"""

import hashlib
import hmac
import math
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import Scope

from app.core.config import Settings
from app.core.errors import RateLimited, RateLimitUnavailable
from app.core.local_window import LocalMovingWindow, WindowState
from app.core.redis import RedisLink, RedisUnavailable

T = TypeVar("T")

# Where a request's handlers leave the quotas they met, for its RateLimit-* headers.
_QUOTAS_STATE_KEY = "rate_limit_quotas"
# The address of a client the server could not name (a Unix socket): all of them share one.
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True, slots=True)
class Quota:
    """Where one client stands against one limit, as the RateLimit-* headers tell it."""

    limit: int
    remaining: int
    # Seconds until the oldest counted hit leaves the window, so that one more is allowed.
    reset_seconds: int
    refused: bool = False

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }

    def error(self) -> RateLimited:
        return RateLimited(retry_after_seconds=max(1, self.reset_seconds), headers=self.headers())


def tightest(quotas: Iterable[Quota]) -> Quota:
    """The quota its client runs out of first: the fewest remaining, then the longest wait."""
    return min(quotas, key=lambda quota: (quota.remaining, -quota.reset_seconds))


class Limit:
    """One limit: `item` (an amount per window) of what `name` counts.

    With `shared` (a `limits` storage in Redis) every process counts in it, and every call goes
    through the process's RedisLink, so an outage is noticed once and costs no request more than
    its short timeout. Without, this process counts alone, in memory (LocalMovingWindow).
    """

    def __init__(
        self,
        name: str,
        item: RateLimitItem,
        shared: Storage | None,
        *,
        redis: RedisLink | None,
        unavailable_retry_after_seconds: int,
    ) -> None:
        self.name = name
        self.item = item
        self._counter: LocalMovingWindow | MovingWindowRateLimiter = (
            LocalMovingWindow(item.amount, item.get_expiry())
            if shared is None
            else MovingWindowRateLimiter(shared)
        )
        self._redis = redis
        self._unavailable_retry_after_seconds = unavailable_retry_after_seconds

    async def hit(self, key: str) -> Quota:
        """Count one hit for `key`, unless its window is full: then it is `refused`, uncounted."""
        if isinstance(self._counter, LocalMovingWindow):
            state = self._counter.hit(key)
            return self._quota(state, refused=not state.counted)
        limiter = self._counter
        counted = await self._call(lambda: limiter.hit(self.item, self.name, key))
        quota = await self.check(key)
        return Quota(quota.limit, quota.remaining, quota.reset_seconds, refused=not counted)

    async def check(self, key: str) -> Quota:
        """Where `key` stands, counting nothing: `refused` when its window is full."""
        if isinstance(self._counter, LocalMovingWindow):
            state = self._counter.check(key)
            return self._quota(state, refused=state.remaining == 0)
        limiter = self._counter
        stats = await self._call(lambda: limiter.get_window_stats(self.item, self.name, key))
        remaining = max(0, stats.remaining)
        # Never past a window from now, whatever a step of the wall clock (which the stored hits
        # are stamped with) makes of the difference.
        reset_seconds = min(
            self.item.get_expiry(), max(0, math.ceil(stats.reset_time - time.time()))
        )
        return Quota(self.item.amount, remaining, reset_seconds, refused=remaining == 0)

    async def clear(self, key: str) -> None:
        """Forget every hit of `key`, as if its window had passed."""
        if isinstance(self._counter, LocalMovingWindow):
            self._counter.clear(key)
            return
        limiter = self._counter
        await self._call(lambda: limiter.clear(self.item, self.name, key))

    def _quota(self, state: WindowState, *, refused: bool) -> Quota:
        return Quota(
            self.item.amount, state.remaining, math.ceil(state.reset_seconds), refused=refused
        )

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self._redis is None:
            return await operation()
        try:
            return await self._redis.call(operation)
        except RedisUnavailable as exc:
            raise RateLimitUnavailable(
                retry_after_seconds=self._unavailable_retry_after_seconds
            ) from exc


def per_process_share(item: RateLimitItem, processes: int) -> RateLimitItem:
    """`item` as one of `processes` workers keeps it: its amount divided, rounded up."""
    return type(item)(math.ceil(item.amount / processes), item.multiples, item.namespace)


class RateLimits:
    """The process's limits, built once from the settings (`app.state.rate_limits`)."""

    def __init__(self, settings: Settings, redis: RedisLink | None) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        retry = settings.RETRY_AFTER_SECONDS
        general = per_process_share(parse(settings.RATE_LIMIT_DEFAULT), settings.WEB_CONCURRENCY)
        self.general = Limit(
            "general", general, None, redis=None, unavailable_retry_after_seconds=retry
        )
        shared = _redis_storage(redis) if redis is not None else None

        def shared_limit(name: str, rate: str) -> Limit:
            return Limit(
                name, parse(rate), shared, redis=redis, unavailable_retry_after_seconds=retry
            )

        # Failed sign-ins of one account; every sign-in and every sign-up of one address.
        self.login_account = shared_limit("login-account", settings.RATE_LIMIT_LOGIN_ACCOUNT)
        self.login_address = shared_limit("login-address", settings.RATE_LIMIT_LOGIN_ADDRESS)
        self.register_address = shared_limit(
            "register-address", settings.RATE_LIMIT_REGISTER_ADDRESS
        )
        # Verification and reset mail asked for: per address it would go to, per client.
        self.mail_address = shared_limit("mail-address", settings.RATE_LIMIT_MAIL_ADDRESS)
        self.mail_client = shared_limit("mail-client", settings.RATE_LIMIT_MAIL_CLIENT)
        self._pseudonym_key = settings.SECRET_KEY.get_secret_value().encode()

    def pseudonym(self, text: str) -> str:
        """A key that names `text` without telling it, to whoever reads the storage."""
        return hmac.new(self._pseudonym_key, text.encode(), hashlib.sha256).hexdigest()


def _redis_storage(redis: RedisLink) -> RedisStorage:
    """`limits`' storage on the process's own pool: one set of connections, one set of timeouts."""
    return RedisStorage(
        # Only the scheme is read: the connections come from the pool.
        "async+redis://",
        implementation="redispy",
        key_prefix=redis.key("rate-limit"),
        connection_pool=redis.client.connection_pool,  # type: ignore[arg-type]  # typed too narrowly
    )


def client_address(scope: Scope) -> str:
    """The address the server reports: behind a proxy, uvicorn takes it from X-Forwarded-For
    only when the proxy is in FORWARDED_ALLOW_IPS. Quill never reads that header itself."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_ADDRESS


def report_quota(scope_state: MutableMapping[str, Any], limit: Limit, quota: Quota) -> None:
    """Let the response's RateLimit-* headers tell where the request left `limit`, if that is
    the tightest limit it met."""
    scope_state.setdefault(_QUOTAS_STATE_KEY, {})[limit.name] = quota


def reported_quotas(scope_state: MutableMapping[str, Any]) -> list[Quota]:
    quotas: dict[str, Quota] = scope_state.get(_QUOTAS_STATE_KEY, {})
    return list(quotas.values())


class RequestLimits:
    """The limits as one request meets them, each reported for its RateLimit-* headers.

    Every method raises RateLimitUnavailable when the limit cannot be consulted.
    """

    def __init__(self, rate_limits: RateLimits, scope: Scope) -> None:
        self.rate_limits = rate_limits
        self.address = client_address(scope)
        self._scope_state: MutableMapping[str, Any] = scope.setdefault("state", {})

    async def count(self, limit: Limit, key: str) -> Quota | None:
        """Count one hit for `key`: where it leaves `key` (None with limits off); RateLimited
        (and nothing counted) when it has none left."""
        if not self.rate_limits.enabled:
            return None
        quota = await limit.hit(key)
        report_quota(self._scope_state, limit, quota)
        if quota.refused:
            raise quota.error()
        return quota

    async def forgive(self, limit: Limit, key: str) -> None:
        """Forget every hit `key` has in `limit`'s window."""
        if self.rate_limits.enabled:
            await limit.clear(key)
            report_quota(self._scope_state, limit, await limit.check(key))


async def get_request_limits(request: Request) -> RequestLimits:
    rate_limits: RateLimits = request.app.state.rate_limits
    return RequestLimits(rate_limits, request.scope)


RequestLimitsDep = Annotated[RequestLimits, Depends(get_request_limits)]
