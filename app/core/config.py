"""Every setting Quill reads, in one place, read once per process."""

import json
import logging
import os
import re
import secrets
from email.utils import parseaddr
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

import limits
import structlog
from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = structlog.get_logger(__name__)

MIN_SECRET_KEY_BYTES = 32
# Placeholders ("changeme" * 4, "ab" * 16, one character repeated) use few distinct characters;
# random keys use many. Fewer than 10 happens to a secrets.token_urlsafe(32) key (43 characters of
# 64) with probability 6e-27, and to 64 hex digits (32 random bytes) with 1e-12. Only keys with
# less randomness than asked for come near it: 32 hex digits fail about once in 10,000.
MIN_SECRET_KEY_DISTINCT_CHARACTERS = 10
GENERATE_SECRET_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
SECRET_KEY_FILE_NAME = "secret_key"


# Where frontend dev servers listen by default: create-react-app and Next (3000), the RealWorld
# React frontend (4100), Angular (4200), Vite (5173) and the Vue CLI (8080).
DEVELOPMENT_FRONTEND_PORTS = (3000, 4100, 4200, 5173, 8080)
DEVELOPMENT_FRONTEND_ORIGINS = tuple(
    f"http://{host}:{port}"
    for port in DEVELOPMENT_FRONTEND_PORTS
    for host in ("localhost", "127.0.0.1")
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


class CacheBackend(StrEnum):
    OFF = "off"
    MEMORY = "memory"
    REDIS = "redis"


class MailBackend(StrEnum):
    SMTP = "smtp"
    FILE = "file"


def _parse_rate_limit(text: str) -> str:
    try:
        limits.parse(text)
    except ValueError:
        raise ValueError("is not a rate limit such as '600/minute' or '10/15 minutes'") from None
    return text


RateLimitText = Annotated[str, AfterValidator(_parse_rate_limit)]


def _parse_log_level(text: str) -> str:
    if text.upper() not in logging.getLevelNamesMapping():
        raise ValueError("is not a log level such as DEBUG, INFO, WARNING or ERROR")
    return text.upper()


def _comma_separated(value: Any) -> Any:
    """A list setting from the environment: a JSON list, or values separated by commas."""
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        return json.loads(value)
    return [item.strip() for item in value.split(",") if item.strip()]


_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_PATTERN = re.compile(r"\*|(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\]")
_NOT_AN_ORIGIN = (
    "is not an origin: a scheme, a host and an optional port, such as 'https://app.example.com' "
    "(no path, not even '/')"
)


def _http_url(text: str) -> tuple[str, str, int | None, str] | None:
    """Scheme, host, port and path of an http(s) URL with nothing else in it (no user, query
    or fragment); None for anything else."""
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or text != text.strip():
        return None
    if parts.username is not None or parts.query or parts.fragment:
        return None
    return parts.scheme, parts.hostname, port, parts.path


def _parse_origin(text: str) -> str:
    """A CORS origin as browsers send it: lowercase, without its scheme's default port."""
    if text == "*":
        return text
    url = _http_url(text.lower())
    if url is None or url[3]:
        raise ValueError(_NOT_AN_ORIGIN)
    scheme, host, port, _ = url
    host = f"[{host}]" if ":" in host else host
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def _parse_host_pattern(text: str) -> str:
    pattern = text.lower()
    if not _HOST_PATTERN.fullmatch(pattern):
        raise ValueError("is not a host name (no scheme, no port), '*.example.com' or '*'")
    return pattern


def _parse_public_base_url(text: str) -> str:
    if text and _http_url(text) is None:
        raise ValueError(
            "is not an http(s) URL such as 'https://api.example.com' (a path prefix may follow; "
            "no query, no fragment)"
        )
    return text.rstrip("/")


Origins = Annotated[list[Annotated[str, AfterValidator(_parse_origin)]], NoDecode]
HostPatterns = Annotated[list[Annotated[str, AfterValidator(_parse_host_pattern)]], NoDecode]
PublicBaseUrl = Annotated[str, AfterValidator(_parse_public_base_url)]


def _parse_mail_address(text: str) -> str:
    _name, address = parseaddr(text)
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise ValueError("is not a mail address such as 'Quill <no-reply@example.com>'")
    return text


MailAddressText = Annotated[str, AfterValidator(_parse_mail_address)]


class Settings(BaseSettings):
    # A validation error never quotes its input: that may be SECRET_KEY or a DATABASE_URL with
    # a password in it.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    ENVIRONMENT: Environment = Environment.DEVELOPMENT
    DATA_DIR: Path = Path("data")
    # Empty means the embedded SQLite file inside DATA_DIR. Not in repr: it may hold a password.
    DATABASE_URL: Annotated[str, Field(repr=False)] = ""
    # None means: migrate on start-up exactly when the database is SQLite.
    AUTO_MIGRATE: bool | None = None
    # A pool of connections kept open. A request beyond them waits for one (at most
    # DB_POOL_TIMEOUT_SECONDS): an overflow connection is opened for one request and closed
    # after it, which under steady load is a new PostgreSQL backend per request (measured, one
    # worker, 16 concurrent GET /users/me: 447 a second on a pool of 10 with 10 overflow, 760
    # on a pool of 20).
    DB_POOL_SIZE: Annotated[int, Field(ge=1)] = 20
    DB_MAX_OVERFLOW: Annotated[int, Field(ge=0)] = 0
    DB_POOL_TIMEOUT_SECONDS: Annotated[float, Field(gt=0)] = 10.0
    # A pooled PostgreSQL connection idle this long is pinged before use (app/core/db.py).
    DB_PING_IDLE_SECONDS: Annotated[float, Field(ge=0)] = 10.0
    SQLITE_BUSY_TIMEOUT_MS: Annotated[int, Field(ge=0)] = 5000
    DB_ECHO: bool = False

    SECRET_KEY: SecretStr = SecretStr("")
    ACCESS_TOKEN_TTL_SECONDS: Annotated[int, Field(ge=1)] = 900
    REFRESH_TOKEN_TTL_SECONDS: Annotated[int, Field(ge=1)] = 30 * 24 * 3600
    # However often it is refreshed, a login ends this long after the sign-in.
    LOGIN_MAX_AGE_SECONDS: Annotated[int, Field(ge=1)] = 90 * 24 * 3600
    JWT_ISSUER: str = "quill"
    # A token of the Conduit API (/api) is a login of its own, with no refresh token (Conduit
    # clients cannot refresh): it works this long, unless its login ends before.
    CONDUIT_TOKEN_TTL_SECONDS: Annotated[int, Field(ge=1)] = 7 * 24 * 3600
    # The links mailed to verify an address and to reset a password work once, this long. Whole
    # hours and minutes: the message says "within 48 hours", "within 60 minutes".
    VERIFY_TOKEN_TTL_SECONDS: Annotated[int, Field(ge=3600)] = 48 * 3600
    RESET_TOKEN_TTL_SECONDS: Annotated[int, Field(ge=60)] = 3600
    # A creating request sent with Idempotency-Key keeps its answer this long: a retry within it
    # gets that answer again and creates nothing.
    IDEMPOTENCY_KEY_TTL_SECONDS: Annotated[int, Field(ge=60)] = 24 * 3600

    # argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane), about 25 ms of CPU per
    # hash (measured on a 2-core host); the library's default (64 MiB, 3, 4) costs 190 ms, which
    # caps such a host near 10 logins a second. A hash made with other parameters is redone at
    # its user's next login. Tests make them cheaper still.
    PASSWORD_HASH_TIME_COST: Annotated[int, Field(ge=1)] = 2
    PASSWORD_HASH_MEMORY_COST_KIB: Annotated[int, Field(ge=8)] = 19456
    PASSWORD_HASH_PARALLELISM: Annotated[int, Field(ge=1)] = 1
    # Hashing is CPU and memory heavy: bound how many run at once in worker threads. Two per
    # process (measured, 2 workers on 2 cores, 16 concurrent sign-ins): 59 a second with a p99
    # of 364 ms, against 53 and 501 ms with four, which also leave reads less CPU.
    PASSWORD_HASH_MAX_CONCURRENCY: Annotated[int, Field(ge=1)] = 2
    # Refuse new passwords on the bundled list of common ones (app/core/common_passwords.txt).
    # Off by default: the rule is 8-128 characters, and the sign-in limits slow guessing down.
    PASSWORD_REJECT_COMMON: bool = False

    LOG_LEVEL: Annotated[str, AfterValidator(_parse_log_level)] = "INFO"
    LOG_JSON: bool | None = None
    RETRY_AFTER_SECONDS: Annotated[int, Field(ge=1)] = 5

    # Redis: the shared response cache and rate limits. Empty means none: limits live in each
    # process, and the cache is off unless CACHE_BACKEND=memory. Not in repr: it may hold a
    # password.
    REDIS_URL: Annotated[str, Field(repr=False)] = ""
    # Every key Quill writes starts with this, so several deployments (or tests) share one Redis.
    REDIS_KEY_PREFIX: str = "quill:"
    # Short: a Redis that stops answering costs a request this long at most, once; then Redis is
    # skipped for REDIS_RETRY_SECONDS before it is tried again.
    REDIS_SOCKET_TIMEOUT_SECONDS: Annotated[float, Field(gt=0)] = 0.5
    REDIS_RETRY_SECONDS: Annotated[float, Field(gt=0)] = 2.0
    REDIS_MAX_CONNECTIONS: Annotated[int, Field(ge=1)] = 50

    # None: Redis when REDIS_URL is set, else off. "memory" is for one process only: several
    # workers with private caches would serve each other's stale reads.
    CACHE_BACKEND: CacheBackend | None = None
    CACHE_TTL_SECONDS: Annotated[int, Field(ge=1)] = 300
    CACHE_MEMORY_MAX_ENTRIES: Annotated[int, Field(ge=1)] = 10_000

    # Rate limits, in the `limits` syntax ("10/15 minutes"). Benchmarks and fuzzing raise them.
    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_DEFAULT: RateLimitText = "600/minute"
    RATE_LIMIT_LOGIN_ACCOUNT: RateLimitText = "10/15 minutes"
    RATE_LIMIT_LOGIN_ADDRESS: RateLimitText = "30/minute"
    RATE_LIMIT_REGISTER_ADDRESS: RateLimitText = "60/hour"
    # Verification and password-reset requests: per mail address they would write to, and per
    # client. Over either, the request is answered as usual and nothing is sent.
    RATE_LIMIT_MAIL_ADDRESS: RateLimitText = "5/hour"
    RATE_LIMIT_MAIL_CLIENT: RateLimitText = "20/hour"
    # How many worker processes serve this app (the variable uvicorn and gunicorn read too): the
    # general limit is kept per process, each allowing its share of RATE_LIMIT_DEFAULT.
    WEB_CONCURRENCY: Annotated[int, Field(ge=1)] = 1

    # Mail: every message goes through the outbox table and a dispatcher (app/mail/).
    # None: smtp when SMTP_HOST is set, else file; production refuses file unless it is explicit.
    MAIL_BACKEND: MailBackend | None = None
    SMTP_HOST: str = ""
    # None: 465 with SMTP_TLS, else 587 (submission with STARTTLS).
    SMTP_PORT: Annotated[int, Field(ge=1, le=65535)] | None = None
    # Empty: no AUTH.
    SMTP_USER: str = ""
    SMTP_PASSWORD: SecretStr = SecretStr("")
    # TLS from the first byte (port 465).
    SMTP_TLS: bool = False
    # None: required unless SMTP_TLS, so links never cross the network in clear; false for a
    # local catcher that offers no STARTTLS.
    SMTP_STARTTLS: bool | None = None
    # The longest one delivery may take (connect, TLS, AUTH, send): a hung server stalls nothing.
    SMTP_TIMEOUT_SECONDS: Annotated[float, Field(gt=0)] = 15.0
    # The From of every message; production with SMTP needs one on its own domain.
    MAIL_FROM: MailAddressText = "Quill <no-reply@localhost>"
    # Where the file backend writes its .eml files. None: DATA_DIR/mail.
    MAIL_FILE_DIR: Path | None = None
    # Off for deployments that run `python -m app.worker` apart.
    MAIL_DISPATCHER_IN_APP: bool = True
    # Failed sends wait base * 2**(attempts - 1) seconds, at most MAIL_RETRY_MAX_SECONDS; after
    # MAIL_MAX_ATTEMPTS attempts the message is failed (see `python -m app.cli list-failed-mail`).
    MAIL_RETRY_BASE_SECONDS: Annotated[float, Field(gt=0)] = 2.0
    MAIL_RETRY_MAX_SECONDS: Annotated[float, Field(gt=0)] = 600.0
    MAIL_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=100)] = 10
    # How long a dispatcher owns the messages it claimed: one killed mid-send leaves them to
    # another after this. Longer than SMTP_TIMEOUT_SECONDS, so no live send is claimed twice.
    MAIL_CLAIM_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=60)] = 60.0
    # Messages one dispatcher claims and sends at once, each on its own SMTP connection.
    MAIL_BATCH_SIZE: Annotated[int, Field(ge=1, le=100)] = 10
    # The longest a dispatcher sleeps: how late it sees mail queued by another process (a commit
    # in this process wakes it at once).
    MAIL_POLL_INTERVAL_SECONDS: Annotated[float, Field(gt=0)] = 5.0
    # Sent messages are deleted this long after sending: they hold live links.
    MAIL_RETENTION_SECONDS: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    # Where the links in mail lead: the frontend's pages that take the token.
    FRONTEND_URL: str = "http://localhost:3000"
    VERIFY_EMAIL_PATH: Annotated[str, Field(pattern=r"^/")] = "/verify-email"
    RESET_PASSWORD_PATH: Annotated[str, Field(pattern=r"^/")] = "/reset-password"

    # HTTP hygiene. Lists are JSON or comma-separated.
    # Origins whose pages may call the API from a browser; "*" alone allows any. Quill's tokens
    # are Bearer tokens, never cookies: no origin is ever sent credentials. Unset in development:
    # the local frontend dev servers (DEVELOPMENT_FRONTEND_ORIGINS).
    CORS_ORIGINS: Annotated[Origins, BeforeValidator(_comma_separated)] = []
    # Host names this service answers to; enforced in production, or anywhere once set.
    ALLOWED_HOSTS: Annotated[HostPatterns, BeforeValidator(_comma_separated)] = [
        "localhost",
        "127.0.0.1",
    ]
    # Where clients reach Quill ("https://api.example.com"): absolute links are built from it,
    # never from the Host header. Empty: Quill writes relative links.
    PUBLIC_BASE_URL: PublicBaseUrl = ""
    MAX_REQUEST_BODY_BYTES: Annotated[int, Field(ge=1024)] = 1024 * 1024
    # Who may read /metrics (addresses or networks); empty means anyone who reaches it.
    METRICS_ALLOWED_IPS: list[str] = []

    @model_validator(mode="after")
    def _refuse_wildcard_among_origins(self) -> Self:
        if "*" in self.CORS_ORIGINS and len(self.CORS_ORIGINS) > 1:
            raise ValueError("CORS_ORIGINS: '*' allows every origin; list it alone, or list none")
        return self

    @model_validator(mode="after")
    def _require_redis_for_redis_cache(self) -> Self:
        if self.CACHE_BACKEND is CacheBackend.REDIS and not self.REDIS_URL:
            raise ValueError("CACHE_BACKEND=redis needs REDIS_URL")
        return self

    @model_validator(mode="after")
    def _require_production_secrets(self) -> Self:
        if self.ENVIRONMENT is not Environment.PRODUCTION:
            return self
        weakness = _secret_key_weakness(self.SECRET_KEY.get_secret_value())
        if weakness:
            raise ValueError(
                f"SECRET_KEY {weakness}: production needs a random secret of at least "
                f"{MIN_SECRET_KEY_BYTES} bytes (for example: {GENERATE_SECRET_KEY})"
            )
        return self

    @model_validator(mode="after")
    def _require_a_usable_mail_setup(self) -> Self:
        if self.MAIL_BACKEND is MailBackend.SMTP and not self.SMTP_HOST:
            raise ValueError("MAIL_BACKEND=smtp needs SMTP_HOST")
        if self.SMTP_TLS and self.SMTP_STARTTLS:
            raise ValueError("SMTP_TLS and SMTP_STARTTLS exclude each other: TLS is on already")
        if self.MAIL_CLAIM_TIMEOUT_SECONDS <= self.SMTP_TIMEOUT_SECONDS:
            raise ValueError(
                "MAIL_CLAIM_TIMEOUT_SECONDS must be longer than SMTP_TIMEOUT_SECONDS: a claim "
                "that ends during its send lets another dispatcher send the message again"
            )
        if self.MAIL_RETRY_MAX_SECONDS < self.MAIL_RETRY_BASE_SECONDS:
            raise ValueError("MAIL_RETRY_MAX_SECONDS must be at least MAIL_RETRY_BASE_SECONDS")
        if self.ENVIRONMENT is not Environment.PRODUCTION:
            return self
        if self.MAIL_BACKEND is None and not self.SMTP_HOST:
            raise ValueError(
                "SMTP_HOST is not set: production sends mail over SMTP "
                "(MAIL_BACKEND=file writes it to MAIL_FILE_DIR instead)"
            )
        if self.mail_backend is MailBackend.SMTP and "MAIL_FROM" not in self.model_fields_set:
            raise ValueError("MAIL_FROM is not set: production mail needs a sender of its own")
        return self

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite+aiosqlite:///{self.DATA_DIR / 'quill.db'}"

    @property
    def cache_backend(self) -> CacheBackend:
        if self.CACHE_BACKEND is not None:
            return self.CACHE_BACKEND
        return CacheBackend.REDIS if self.REDIS_URL else CacheBackend.OFF

    @property
    def mail_backend(self) -> MailBackend:
        if self.MAIL_BACKEND is not None:
            return self.MAIL_BACKEND
        return MailBackend.SMTP if self.SMTP_HOST else MailBackend.FILE

    @property
    def smtp_starttls(self) -> bool:
        return not self.SMTP_TLS if self.SMTP_STARTTLS is None else self.SMTP_STARTTLS

    @property
    def smtp_port(self) -> int:
        if self.SMTP_PORT is not None:
            return self.SMTP_PORT
        return 465 if self.SMTP_TLS else 587

    @property
    def mail_file_dir(self) -> Path:
        return self.MAIL_FILE_DIR if self.MAIL_FILE_DIR is not None else self.DATA_DIR / "mail"

    @property
    def allowed_hosts(self) -> list[str]:
        """The Host values accepted: ALLOWED_HOSTS in production or once set, else any."""
        if self.ENVIRONMENT is Environment.PRODUCTION or "ALLOWED_HOSTS" in self.model_fields_set:
            return self.ALLOWED_HOSTS
        return ["*"]

    @property
    def cors_origins(self) -> list[str]:
        """The origins CORS lets read: CORS_ORIGINS once set; unset, the local frontend dev
        servers in development and none elsewhere."""
        if (
            "CORS_ORIGINS" in self.model_fields_set
            or self.ENVIRONMENT is not Environment.DEVELOPMENT
        ):
            return self.CORS_ORIGINS
        return list(DEVELOPMENT_FRONTEND_ORIGINS)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def auto_migrate(self) -> bool:
        return self.is_sqlite if self.AUTO_MIGRATE is None else self.AUTO_MIGRATE

    @property
    def log_json(self) -> bool:
        if self.LOG_JSON is None:
            return self.ENVIRONMENT is Environment.PRODUCTION
        return self.LOG_JSON

    def with_secret_key(self) -> "Settings":
        """These settings with a signing secret: outside production one is kept in DATA_DIR."""
        if self.SECRET_KEY.get_secret_value():
            return self
        key = _development_secret_key(self.DATA_DIR)
        return self.model_copy(update={"SECRET_KEY": SecretStr(key)})


def _secret_key_weakness(key: str) -> str | None:
    """What makes `key` unfit to sign tokens in production, said without quoting any of it."""
    if not key:
        return "is not set"
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        return "is too short"
    if key.isspace():
        return "is only whitespace"
    distinct = len(set(key))
    if distinct == 1:
        return "repeats one character"
    if distinct < MIN_SECRET_KEY_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_SECRET_KEY_DISTINCT_CHARACTERS} distinct characters"
    return None


def _development_secret_key(data_dir: Path) -> str:
    """Read the kept development secret, creating it atomically if no process has yet.

    Workers start together: each writes a candidate to its own file and hard-links it into place;
    the link fails for all but the first, and everyone then reads the winner.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_KEY_FILE_NAME
    if not path.exists():
        candidate = data_dir / f".{SECRET_KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
        # Created readable by its owner only, never for a moment by anyone else.
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(secrets.token_urlsafe(48))
        try:
            os.link(candidate, path)
            log.warning(
                "config.secret_key_generated",
                path=str(path),
                hint="set SECRET_KEY; a generated key is for development only",
            )
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
