"""TokenCodec and PasswordHasher on their own, without HTTP or a database."""

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import SecretStr

from app.core.config import Settings
from app.core.security import (
    HASHING_NICENESS_INCREMENT,
    InvalidToken,
    PasswordHasher,
    TokenCodec,
    TokenType,
)

SECRET_KEY = "unit-test-secret-key-that-is-long-enough"
# Far beyond any token's lifetime: these tokens belong to a login that does not end soon.
LOGIN_ENDS = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture
def unit_settings(tmp_path: Path) -> Settings:
    return Settings(
        ENVIRONMENT="test",
        DATA_DIR=tmp_path,
        SECRET_KEY=SECRET_KEY,
        ACCESS_TOKEN_TTL_SECONDS=600,
        REFRESH_TOKEN_TTL_SECONDS=86400,
        PASSWORD_HASH_TIME_COST=1,
        PASSWORD_HASH_MEMORY_COST_KIB=8,
        PASSWORD_HASH_PARALLELISM=1,
    )


@pytest.fixture
def codec(unit_settings: Settings) -> TokenCodec:
    return TokenCodec(unit_settings)


@pytest.fixture
def hasher(unit_settings: Settings) -> PasswordHasher:
    return PasswordHasher(unit_settings)


def payload_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def resigned(token: str, **changes: Any) -> str:
    payload = {**payload_of(token), **changes}
    return jwt.encode(payload, SECRET_KEY, algorithm="HS256")


@pytest.mark.parametrize(
    ("token_type", "ttl_seconds"), [(TokenType.ACCESS, 600), (TokenType.REFRESH, 86400)]
)
def test_issued_token_decodes_to_its_claims_and_lives_its_ttl(
    codec: TokenCodec, token_type: TokenType, ttl_seconds: int
) -> None:
    issued = codec.issue(token_type, user_id=7, session_id="login-1", not_after=LOGIN_ENDS)

    claims = codec.decode(issued.token, token_type)

    assert claims.user_id == 7
    assert claims.session_id == "login-1"
    assert claims.type is token_type
    assert claims.token_id == issued.claims.token_id
    assert claims.expires_at == issued.claims.expires_at.replace(microsecond=0)
    payload = payload_of(issued.token)
    assert payload["exp"] - payload["iat"] == ttl_seconds
    assert codec.ttl_seconds(token_type) == ttl_seconds
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


@pytest.mark.parametrize("token_type", [TokenType.ACCESS, TokenType.REFRESH])
def test_no_token_outlives_its_login(codec: TokenCodec, token_type: TokenType) -> None:
    login_ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)

    issued = codec.issue(token_type, user_id=7, session_id="login-1", not_after=login_ends)

    assert issued.claims.expires_at == login_ends
    assert codec.decode(issued.token, token_type).expires_at == login_ends


def test_every_token_gets_its_own_id(codec: TokenCodec) -> None:
    first = codec.issue(TokenType.REFRESH, user_id=7, session_id="login-1", not_after=LOGIN_ENDS)
    second = codec.issue(TokenType.REFRESH, user_id=7, session_id="login-1", not_after=LOGIN_ENDS)

    assert first.claims.token_id != second.claims.token_id
    assert first.token != second.token


@pytest.mark.parametrize(
    ("issued_as", "expected"),
    [(TokenType.REFRESH, TokenType.ACCESS), (TokenType.ACCESS, TokenType.REFRESH)],
)
def test_token_of_the_other_type_is_invalid(
    codec: TokenCodec, issued_as: TokenType, expected: TokenType
) -> None:
    token = codec.issue(issued_as, user_id=7, session_id="login-1", not_after=LOGIN_ENDS).token

    with pytest.raises(InvalidToken, match=f"expected a {expected.value} token"):
        codec.decode(token, expected)


def test_token_of_another_key_is_invalid(codec: TokenCodec, unit_settings: Settings) -> None:
    other = TokenCodec(unit_settings.model_copy(update={"SECRET_KEY": SecretStr("x" * 40)}))
    token = other.issue(
        TokenType.ACCESS, user_id=7, session_id="login-1", not_after=LOGIN_ENDS
    ).token

    with pytest.raises(InvalidToken, match="Signature verification failed"):
        codec.decode(token, TokenType.ACCESS)


def test_expired_token_is_invalid(codec: TokenCodec) -> None:
    token = codec.issue(
        TokenType.ACCESS, user_id=7, session_id="login-1", not_after=LOGIN_ENDS
    ).token
    now = int(datetime.now(UTC).timestamp())

    with pytest.raises(InvalidToken, match="expired"):
        codec.decode(resigned(token, iat=now - 700, exp=now - 100), TokenType.ACCESS)


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "jti", "type", "sid", "iss"])
def test_token_missing_a_claim_is_invalid(codec: TokenCodec, claim: str) -> None:
    token = codec.issue(
        TokenType.ACCESS, user_id=7, session_id="login-1", not_after=LOGIN_ENDS
    ).token
    payload = payload_of(token)
    del payload[claim]

    with pytest.raises(InvalidToken, match=claim):
        codec.decode(jwt.encode(payload, SECRET_KEY, algorithm="HS256"), TokenType.ACCESS)


@pytest.mark.parametrize(
    "changes",
    [{"sub": "seven"}, {"iss": "someone-else"}, {"exp": 10**20}],
    ids=["non-numeric-sub", "other-issuer", "exp-beyond-any-date"],
)
def test_signed_token_with_unusable_claims_is_invalid(
    codec: TokenCodec, changes: dict[str, Any]
) -> None:
    token = codec.issue(
        TokenType.ACCESS, user_id=7, session_id="login-1", not_after=LOGIN_ENDS
    ).token

    with pytest.raises(InvalidToken):
        codec.decode(resigned(token, **changes), TokenType.ACCESS)


def test_token_with_alg_none_is_invalid(codec: TokenCodec) -> None:
    token = codec.issue(
        TokenType.ACCESS, user_id=7, session_id="login-1", not_after=LOGIN_ENDS
    ).token
    unsigned = jwt.encode(payload_of(token), None, algorithm="none")

    with pytest.raises(InvalidToken):
        codec.decode(unsigned, TokenType.ACCESS)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..."])
def test_garbage_is_invalid(codec: TokenCodec, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        codec.decode(garbage, TokenType.ACCESS)


async def test_hasher_verifies_the_right_password_only(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("correct horse")

    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert await hasher.verify("correct horse", hashed) == (True, None)
    assert await hasher.verify("wrong horse", hashed) == (False, None)


async def test_hasher_without_a_hash_still_runs_one_verification_and_says_no(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    verify_and_update = PasswordHash.verify_and_update

    def counting(
        self: PasswordHash, password: str | bytes, hash: str | bytes
    ) -> tuple[bool, str | None]:
        verified.append(str(hash))
        return verify_and_update(self, password, hash)

    monkeypatch.setattr(PasswordHash, "verify_and_update", counting)

    assert await hasher.verify("anything", None) == (False, None)
    assert len(verified) == 1
    assert verified[0].startswith("$argon2id$")


async def test_hasher_returns_a_new_hash_when_the_parameters_changed(
    hasher: PasswordHasher,
) -> None:
    old = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=8, parallelism=1),)).hash("pw")

    valid, new_hash = await hasher.verify("pw", old)

    assert valid is True
    assert new_hash is not None
    assert new_hash != old
    assert await hasher.verify("pw", new_hash) == (True, None)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="thread priorities are Unix's")
async def test_hashing_runs_below_the_priority_of_the_threads_that_answer_requests(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Linux gives each thread its own niceness: a storm of sign-ins must not take the CPU that
    # the event loop needs for everything else.
    niceness: list[int] = []
    hash_, verify_and_update = PasswordHash.hash, PasswordHash.verify_and_update

    def this_threads_niceness() -> None:
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    def hashing(self: PasswordHash, password: str | bytes, **kwargs: Any) -> str:
        this_threads_niceness()
        return hash_(self, password, **kwargs)

    def verifying(self: PasswordHash, password: str | bytes, hash: str | bytes) -> Any:
        this_threads_niceness()
        return verify_and_update(self, password, hash)

    monkeypatch.setattr(PasswordHash, "hash", hashing)
    monkeypatch.setattr(PasswordHash, "verify_and_update", verifying)
    await hasher.verify("correct horse", await hasher.hash("correct horse"))

    event_loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert niceness == [min(event_loop_niceness + HASHING_NICENESS_INCREMENT, 19)] * 2
