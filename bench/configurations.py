"""The Quill deployments under test: which database and cache each uses, and the settings every
Quill server of the benchmark shares."""

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.postgres import PostgresDatabase

# Raised, not disabled: the limiter's own cost (a Redis round trip per request) stays in the
# numbers, as in production, but no benchmark request is refused.
RAISED_RATE_LIMIT = "1000000/minute"
# Long enough for the longest run: the tokens are fetched once, at the start.
TOKEN_TTL_SECONDS = str(24 * 3600)


@dataclass(frozen=True)
class Configuration:
    """One deployment: a database (and for PostgreSQL its asyncpg DSN) and a Redis database.

    Each runs as two servers on the same data: one with the response cache, one with it off
    (the "uncached" rows), so an uncached read is a real miss and not a cache-busting trick.
    """

    name: str
    database_url: str
    postgres: PostgresDatabase | None
    redis_url: str | None

    @property
    def postgres_dsn(self) -> str | None:
        return self.postgres.dsn if self.postgres else None

    def postgres_processes(self) -> list[int]:
        """Whose CPU counts as PostgreSQL's; none for SQLite."""
        return self.postgres.processes() if self.postgres else []


def quill_environment(
    configuration: Configuration, secret_key: str, data_dir: Path, *, cached: bool
) -> dict[str, str]:
    """Production settings, with the rate limits raised and mail written to files (no SMTP)."""
    environment = _without_quill_settings(os.environ)
    environment |= {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secret_key,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": configuration.database_url,
        # The seeder migrated already; two workers migrating at once would race.
        "AUTO_MIGRATE": "false",
        "CACHE_BACKEND": "redis" if cached and configuration.redis_url else "off",
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_DEFAULT": RAISED_RATE_LIMIT,
        "RATE_LIMIT_LOGIN_ACCOUNT": RAISED_RATE_LIMIT,
        "RATE_LIMIT_LOGIN_ADDRESS": RAISED_RATE_LIMIT,
        "RATE_LIMIT_REGISTER_ADDRESS": RAISED_RATE_LIMIT,
        "MAIL_BACKEND": "file",
        "MAIL_FILE_DIR": str(data_dir / "mail"),
        # No mail is sent during the benchmark: the dispatcher's polling would only add noise.
        "MAIL_DISPATCHER_IN_APP": "false",
        "ACCESS_TOKEN_TTL_SECONDS": TOKEN_TTL_SECONDS,
        "CONDUIT_TOKEN_TTL_SECONDS": TOKEN_TTL_SECONDS,
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": "2",
    }
    if configuration.redis_url:
        environment["REDIS_URL"] = configuration.redis_url
    return environment


def new_secret_key() -> str:
    """Strong enough for production's check, and new for every run."""
    return secrets.token_urlsafe(48)


def _without_quill_settings(environment: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment minus anything Quill would read as a setting of its own (a
    developer's exported DATABASE_URL must not leak into the benchmark)."""
    from app.core.config import Settings  # the settings' names, read from their one source

    names = set(Settings.model_fields)
    return {name: value for name, value in environment.items() if name not in names}
