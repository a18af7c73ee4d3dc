"""Password hashing off the event loop, and the JWTs that carry a login."""

import asyncio
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import TypeVar

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings

_T = TypeVar("_T")

JWT_ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "type", "sid"]


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class InvalidToken(Exception):
    """A token that is malformed, forged, expired, or of the wrong type."""


# How much lower than the process a hashing thread runs (Linux schedules each thread by its own
# niceness; 19 is the lowest priority). A storm of sign-ins then gets the CPU the event loop
# leaves, while reads and /health keep theirs; with nothing else to run, hashing is as fast.
HASHING_NICENESS_INCREMENT = 10
_LOWEST_PRIORITY = 19


def _lower_this_threads_priority() -> None:
    """Run by each hashing thread as it starts."""
    if not hasattr(os, "setpriority"):
        return  # not a Unix: hashing keeps the process's priority
    thread = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(
            os.PRIO_PROCESS, thread, min(niceness + HASHING_NICENESS_INCREMENT, _LOWEST_PRIORITY)
        )
    except OSError:
        pass  # not permitted here: the same, at the process's priority


@cache
def _hashing_threads(max_concurrency: int) -> ThreadPoolExecutor:
    """The process's hashing threads for this bound: their number is the bound, the rest wait in
    the queue. Shared by every hasher (every app) of the process and kept for its life: threads
    made per app would pile up for a tracer such as coverage's, one per thread ever started."""
    return ThreadPoolExecutor(
        max_workers=max_concurrency,
        thread_name_prefix="argon2",
        initializer=_lower_this_threads_priority,
    )


class PasswordHasher:
    """argon2id hashing in threads of its own, at most `max_concurrency` at a time, each at a
    lower priority than the threads that answer requests.

    Hashing takes tens of milliseconds of CPU and megabytes of memory: on the event loop it would
    stall every other request, and unbounded it would let a login flood exhaust memory.
    """

    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.PASSWORD_HASH_TIME_COST,
                    memory_cost=settings.PASSWORD_HASH_MEMORY_COST_KIB,
                    parallelism=settings.PASSWORD_HASH_PARALLELISM,
                ),
            )
        )
        self._threads = _hashing_threads(settings.PASSWORD_HASH_MAX_CONCURRENCY)
        # Verified against when a login names no user, so that every attempt costs one verify.
        self._dummy_hash = self._hash.hash(uuid.uuid4().hex)

    async def hash(self, password: str) -> str:
        return await self._in_a_hashing_thread(self._hash.hash, password)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """Whether `password` matches; with a new hash when the parameters have changed.

        With no hash (an unknown user) the password is checked against a dummy hash, so the
        answer takes as long as for a real user, and is always False.
        """
        target = hashed if hashed is not None else self._dummy_hash
        valid, updated = await self._in_a_hashing_thread(
            self._hash.verify_and_update, password, target
        )
        return (valid and hashed is not None), updated

    async def _in_a_hashing_thread(self, run: Callable[..., _T], *args: str) -> _T:
        # A request cancelled meanwhile stops waiting; its thread finishes the hash, still bounded.
        return await asyncio.get_running_loop().run_in_executor(self._threads, run, *args)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    session_id: str
    token_id: str
    type: TokenType
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class TokenCodec:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.SECRET_KEY.get_secret_value()
        self._issuer = settings.JWT_ISSUER
        self._ttl = {
            TokenType.ACCESS: timedelta(seconds=settings.ACCESS_TOKEN_TTL_SECONDS),
            TokenType.REFRESH: timedelta(seconds=settings.REFRESH_TOKEN_TTL_SECONDS),
        }
        self._login_max_age = timedelta(seconds=settings.LOGIN_MAX_AGE_SECONDS)

    def login_expires_at(self, signed_in_at: datetime) -> datetime:
        return signed_in_at + self._login_max_age

    def ttl_seconds(self, token_type: TokenType) -> int:
        return int(self._ttl[token_type].total_seconds())

    def issue(
        self,
        token_type: TokenType,
        *,
        user_id: int,
        session_id: str,
        not_after: datetime,
        lifetime: timedelta | None = None,
    ) -> IssuedToken:
        """A token of its type's lifetime (or `lifetime`), but never outliving `not_after` (its
        login's end)."""
        now = datetime.now(UTC)
        claims = TokenClaims(
            user_id=user_id,
            session_id=session_id,
            token_id=uuid.uuid4().hex,
            type=token_type,
            issued_at=now,
            expires_at=min(now + (lifetime or self._ttl[token_type]), not_after),
        )
        payload = {
            "sub": str(user_id),
            "sid": session_id,
            "jti": claims.token_id,
            "type": token_type.value,
            "iat": now,
            "exp": claims.expires_at,
            "iss": self._issuer,
        }
        return IssuedToken(jwt.encode(payload, self._key, algorithm=JWT_ALGORITHM), claims)

    def decode(self, token: str, expected_type: TokenType) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[JWT_ALGORITHM],
                issuer=self._issuer,
                options={"require": [*REQUIRED_CLAIMS, "iss"]},
            )
            if payload["type"] != expected_type.value:
                raise InvalidToken(f"expected a {expected_type.value} token")
            return TokenClaims(
                user_id=int(payload["sub"]),
                session_id=str(payload["sid"]),
                token_id=str(payload["jti"]),
                type=expected_type,
                issued_at=datetime.fromtimestamp(payload["iat"], UTC),
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            )
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
            raise InvalidToken(str(exc)) from exc
