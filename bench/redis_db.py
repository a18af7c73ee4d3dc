"""The Redis database a configuration caches in: a number of its own, flushed before use."""

import redis

REDIS_BASE_URL = "redis://127.0.0.1:6379"


def url_of(database_number: int) -> str:
    return f"{REDIS_BASE_URL}/{database_number}"


def unreachable_reason(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} is unreachable: {exc}"
    return None


def flush(url: str) -> None:
    """Empties this one database only (FLUSHDB, not FLUSHALL): other users of the server keep
    theirs."""
    redis.Redis.from_url(url, socket_timeout=3).flushdb()
