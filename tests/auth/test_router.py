"""POST /auth/token, /auth/refresh and /auth/logout, and what a token is worth afterwards."""

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import SecretStr
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import PasswordHasher
from app.main import create_app
from app.models import Login, RefreshToken, User
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, auth_headers, bearer, login, make_user
from tests.helpers import (
    committing_once,
    connections_during_hashing,
    count_rows,
    on_hashing,
    open_session,
)

TOKEN_URL = "/api/v1/auth/token"
REFRESH_URL = "/api/v1/auth/refresh"
LOGOUT_URL = "/api/v1/auth/logout"
ME_URL = "/api/v1/users/me"


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a token this app issued, read without checking it."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def problem_without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body.pop("request_id", None)
    return body


def assert_unauthorized(response: httpx.Response, code: str = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == code
    assert "access_token" not in body


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(REFRESH_URL, json={"refresh_token": refresh_token})


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get(ME_URL, headers=bearer(access_token))


async def login_state(session: AsyncSession, login_id: str) -> tuple[datetime | None, str | None]:
    """The committed ended_at and end_reason of a login."""
    row = (
        await session.execute(select(Login.ended_at, Login.end_reason).where(Login.id == login_id))
    ).one()
    await session.commit()  # end the read, so the app's writers never wait for this session
    return row.ended_at, row.end_reason


async def refresh_token_spent_at(session: AsyncSession, refresh_token: str) -> datetime | None:
    spent_at = (
        await session.execute(
            select(RefreshToken.spent_at).where(RefreshToken.id == claims_of(refresh_token)["jti"])
        )
    ).scalar_one()
    await session.commit()
    return spent_at


# --- POST /auth/token ------------------------------------------------------------------------


async def test_login_by_username_returns_a_token_pair_that_works(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, username="ann")

    response = await client.post(TOKEN_URL, data={"username": "ann", "password": DEFAULT_PASSWORD})

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == settings.ACCESS_TOKEN_TTL_SECONDS
    access, refresh_claims = claims_of(tokens["access_token"]), claims_of(tokens["refresh_token"])
    assert access["sid"] == refresh_claims["sid"]
    assert access["sub"] == str(user.id)
    assert access["exp"] - access["iat"] == settings.ACCESS_TOKEN_TTL_SECONDS
    ended_at, _ = await login_state(session, access["sid"])
    assert ended_at is None
    assert await refresh_token_spent_at(session, tokens["refresh_token"]) is None
    profile = await me(client, tokens["access_token"])
    assert profile.status_code == 200
    assert profile.json()["username"] == "ann"


@pytest.mark.parametrize(
    "name",
    ["ann", "ANN", "Ann.Smith@Example.com", "ann.smith@example.com", "ANN.SMITH@EXAMPLE.COM"],
)
async def test_login_accepts_username_or_email_in_any_case(
    client: httpx.AsyncClient, session: AsyncSession, name: str
) -> None:
    await make_user(session, username="Ann", email="Ann.Smith@Example.com")

    tokens = await login(client, name)

    profile = await me(client, tokens["access_token"])
    assert profile.status_code == 200
    assert profile.json()["username"] == "Ann"


async def test_each_login_is_its_own_login_row(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")

    first = await login(client, "ann")
    second = await login(client, "ann")

    assert claims_of(first["access_token"])["sid"] != claims_of(second["access_token"])["sid"]
    assert (
        await count_rows(
            session, select(func.count()).select_from(Login).where(Login.user_id == user.id)
        )
        == 2
    )


async def test_wrong_password_unknown_user_and_inactive_user_get_the_same_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    await make_user(session, username="ivy", is_active=False)

    wrong_password = await client.post(TOKEN_URL, data={"username": "ann", "password": "nope"})
    unknown_user = await client.post(
        TOKEN_URL, data={"username": "nobody", "password": DEFAULT_PASSWORD}
    )
    inactive_user = await client.post(
        TOKEN_URL, data={"username": "ivy", "password": DEFAULT_PASSWORD}
    )

    for response in (wrong_password, unknown_user, inactive_user):
        assert_unauthorized(response, code="invalid_credentials")
    assert (
        problem_without_request_id(wrong_password)
        == problem_without_request_id(unknown_user)
        == problem_without_request_id(inactive_user)
    )
    assert await count_rows(session, select(func.count()).select_from(Login)) == 0


# Every kind of attempt, for the tests that check what each one costs: ann is active, ivy is not.
LOGIN_ATTEMPTS = pytest.mark.parametrize(
    ("username", "password", "status"),
    [
        ("ann", DEFAULT_PASSWORD, 200),
        ("ann", "wrong password", 401),
        ("nobody", DEFAULT_PASSWORD, 401),
        ("ivy", DEFAULT_PASSWORD, 401),
    ],
    ids=["success", "wrong-password", "unknown-user", "inactive-user"],
)


@LOGIN_ATTEMPTS
async def test_login_verifies_the_password_with_no_transaction_open(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    username: str,
    password: str,
    status: int,
) -> None:
    # A transaction held across argon2 would hold a pooled connection, and on SQLite the write
    # lock: a few clients guessing passwords would stall every write.
    await make_user(session, username="ann")
    await make_user(session, username="ivy", is_active=False)
    connections = connections_during_hashing(app, monkeypatch)

    response = await client.post(TOKEN_URL, data={"username": username, "password": password})

    assert response.status_code == status, response.text
    assert connections == [0]


@LOGIN_ATTEMPTS
async def test_every_login_attempt_verifies_exactly_one_password(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    username: str,
    password: str,
    status: int,
) -> None:
    await make_user(session, username="ann")
    await make_user(session, username="ivy", is_active=False)
    hasher: PasswordHasher = app.state.password_hasher
    verify = hasher.verify
    verifications: list[str | None] = []
    argon2_runs: list[str] = []

    async def counting_verify(password: str, hashed: str | None) -> tuple[bool, str | None]:
        verifications.append(hashed)
        return await verify(password, hashed)

    verify_and_update = PasswordHash.verify_and_update

    def counting_verify_and_update(
        self: PasswordHash, password: str | bytes, hash: str | bytes
    ) -> tuple[bool, str | None]:
        argon2_runs.append(str(hash))
        return verify_and_update(self, password, hash)

    monkeypatch.setattr(hasher, "verify", counting_verify)
    monkeypatch.setattr(PasswordHash, "verify_and_update", counting_verify_and_update)

    response = await client.post(TOKEN_URL, data={"username": username, "password": password})

    assert response.status_code == status, response.text
    assert len(verifications) == 1
    # The unknown user too costs one real argon2 verification (against the dummy hash).
    assert len(argon2_runs) == 1
    assert argon2_runs[0].startswith("$argon2id$")


@pytest.mark.parametrize(
    "form",
    [
        {"password": "s3cret-Passw0rd-never-echoed"},
        {"username": "ann"},
        {"username": "", "password": "s3cret-Passw0rd-never-echoed"},
        {"username": "ann", "password": "s3cret-Passw0rd-never-echoed" + "x" * 128},
    ],
    ids=["no-username", "no-password", "empty-username", "password-too-long"],
)
async def test_invalid_login_form_is_a_422_problem_that_never_echoes_the_password(
    client: httpx.AsyncClient, session: AsyncSession, form: dict[str, str]
) -> None:
    await make_user(session, username="ann")

    response = await client.post(TOKEN_URL, data=form)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["errors"]
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])
    assert "s3cret-Passw0rd" not in response.text
    assert await count_rows(session, select(func.count()).select_from(Login)) == 0


async def test_login_with_a_nul_in_the_username_is_a_422_problem(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")

    response = await client.post(
        TOKEN_URL, data={"username": "an\x00n", "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "username"]
    assert await count_rows(session, select(func.count()).select_from(Login)) == 0


async def test_login_rehashes_a_password_hashed_with_older_parameters(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    old_hash = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=8, parallelism=1),)).hash(
        DEFAULT_PASSWORD
    )
    await session.execute(update(User).where(User.id == user.id).values(hashed_password=old_hash))
    await session.commit()

    await login(client, "ann")

    new_hash = await session.scalar(select(User.hashed_password).where(User.id == user.id))
    await session.commit()
    assert new_hash is not None
    assert new_hash != old_hash
    hasher: PasswordHasher = app.state.password_hasher
    assert await hasher.verify(DEFAULT_PASSWORD, new_hash) == (True, None)


# --- Using an access token ---------------------------------------------------------------------


async def test_request_without_authorization_header_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ME_URL)

    assert_unauthorized(response, code="not_authenticated")


async def test_request_with_a_non_bearer_scheme_is_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await client.get(
        ME_URL, headers={"Authorization": f"Basic {tokens['access_token']}"}
    )

    assert_unauthorized(response, code="not_authenticated")


async def test_garbage_access_token_is_401(client: httpx.AsyncClient) -> None:
    response = await me(client, "not-a-jwt-at-all")

    assert_unauthorized(response)


async def test_refresh_token_used_as_access_token_is_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await me(client, tokens["refresh_token"])

    assert_unauthorized(response)


async def test_access_token_with_a_changed_payload_and_the_old_signature_is_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    admin = await make_user(session, username="root", is_superuser=True)
    tokens = await login(client, "ann")
    header, _payload, signature = tokens["access_token"].split(".")
    claims = {**claims_of(tokens["access_token"]), "sub": str(admin.id)}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    response = await me(client, f"{header}.{forged_payload}.{signature}")

    assert_unauthorized(response)


def _reissue(token: str, key: str | SecretStr, change: Callable[[dict[str, Any]], None]) -> str:
    claims = claims_of(token)
    change(claims)
    secret = key.get_secret_value() if isinstance(key, SecretStr) else key
    return jwt.encode(claims, secret, algorithm="HS256")


def _expire(claims: dict[str, Any]) -> None:
    now = int(datetime.now(UTC).timestamp())
    claims["iat"] = now - 3600
    claims["exp"] = now - 60


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        del claims[name]

    return change


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        claims[name] = value

    return change


async def test_reissued_access_token_with_an_extra_claim_is_accepted(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """The control for the tampering tests below: re-signing with our key breaks nothing."""
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await me(client, _reissue(tokens["access_token"], settings.SECRET_KEY, _set("x", 1)))

    assert response.status_code == 200
    assert response.json()["username"] == "ann"


@pytest.mark.parametrize(
    "change",
    [
        _expire,
        _drop("sub"),
        _drop("exp"),
        _drop("iat"),
        _drop("jti"),
        _drop("type"),
        _drop("sid"),
        _drop("iss"),
        _set("type", "refresh"),
        _set("type", "id"),
        _set("iss", "someone-else"),
        _set("sid", "0" * 32),
        _set("sub", "not-a-number"),
    ],
    ids=[
        "expired",
        "no-sub",
        "no-exp",
        "no-iat",
        "no-jti",
        "no-type",
        "no-sid",
        "no-iss",
        "type-refresh",
        "type-unknown",
        "other-issuer",
        "unknown-login",
        "non-numeric-sub",
    ],
)
async def test_signed_access_token_with_bad_claims_is_401(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    change: Callable[[dict[str, Any]], None],
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await me(client, _reissue(tokens["access_token"], settings.SECRET_KEY, change))

    assert_unauthorized(response)


async def test_access_token_naming_another_users_login_is_401(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    tokens = await login(client, "ann")

    response = await me(
        client, _reissue(tokens["access_token"], settings.SECRET_KEY, _set("sub", str(bob.id)))
    )

    assert_unauthorized(response)


async def test_access_token_signed_with_another_key_is_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    forged = _reissue(
        tokens["access_token"], "another-secret-key-long-enough-for-hs256", _set("x", 1)
    )

    assert_unauthorized(await me(client, forged))


async def test_access_token_with_alg_none_is_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    unsigned = (
        f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims_of(tokens['access_token']))}."
    )

    assert_unauthorized(await me(client, unsigned))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_access_token_signed_with_another_algorithm_is_401(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    other_algorithm = jwt.encode(
        claims_of(tokens["access_token"]), settings.SECRET_KEY.get_secret_value(), algorithm="HS512"
    )

    assert_unauthorized(await me(client, other_algorithm))


# --- POST /auth/refresh ------------------------------------------------------------------------


async def test_refresh_returns_a_new_pair_and_spends_the_presented_token(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await make_user(session, username="ann")
    first = await login(client, "ann")

    response = await refresh(client, first["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    second = response.json()
    assert second["token_type"] == "bearer"
    assert second["expires_in"] == settings.ACCESS_TOKEN_TTL_SECONDS
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["refresh_token"])["sid"] == claims_of(first["refresh_token"])["sid"]
    assert await refresh_token_spent_at(session, first["refresh_token"]) is not None
    assert await refresh_token_spent_at(session, second["refresh_token"]) is None
    assert (await me(client, second["access_token"])).status_code == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200
    assert (await me(client, third.json()["access_token"])).status_code == 200


async def test_refresh_token_reused_ends_the_login(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    other_login = await login(client, "ann")
    first = await login(client, "ann")
    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()

    reused = await refresh(client, first["refresh_token"])

    assert_unauthorized(reused)
    # The revocation was committed although the request failed.
    ended_at, reason = await login_state(session, claims_of(first["access_token"])["sid"])
    assert ended_at is not None
    assert reason == "refresh_token_reused"
    assert_unauthorized(await refresh(client, second["refresh_token"]))
    assert_unauthorized(await me(client, second["access_token"]))
    assert_unauthorized(await me(client, first["access_token"]))
    # Another login of the same user goes on.
    assert (await me(client, other_login["access_token"])).status_code == 200
    assert (await refresh(client, other_login["refresh_token"])).status_code == 200
    other_ended_at, _ = await login_state(session, claims_of(other_login["access_token"])["sid"])
    assert other_ended_at is None


async def test_concurrent_refreshes_with_one_token_let_one_win_and_then_end_the_login(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")
    login_id = claims_of(tokens["refresh_token"])["sid"]

    responses = await asyncio.gather(
        refresh(client, tokens["refresh_token"]), refresh(client, tokens["refresh_token"])
    )

    assert sorted(response.status_code for response in responses) == [200, 401]
    winner = next(response for response in responses if response.status_code == 200).json()
    loser = next(response for response in responses if response.status_code == 401)
    assert_unauthorized(loser)
    # One new refresh token was issued, not two.
    assert (
        await count_rows(
            session,
            select(func.count()).select_from(RefreshToken).where(RefreshToken.login_id == login_id),
        )
        == 2
    )
    # The loser presented a token already spent, which is what theft looks like: the login
    # ends, and the winner's new pair with it (the README tells clients to refresh one at a time).
    ended_at, end_reason = await login_state(session, login_id)
    assert ended_at is not None
    assert end_reason == "refresh_token_reused"
    assert_unauthorized(await me(client, winner["access_token"]))
    assert_unauthorized(await refresh(client, winner["refresh_token"]))


async def test_access_token_used_as_refresh_token_is_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await refresh(client, tokens["access_token"])

    assert_unauthorized(response)
    ended_at, _ = await login_state(session, claims_of(tokens["access_token"])["sid"])
    assert ended_at is None
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_garbage_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "not-a-jwt-at-all")

    assert_unauthorized(response)


async def test_expired_refresh_token_is_401_and_is_not_spent(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await refresh(
        client, _reissue(tokens["refresh_token"], settings.SECRET_KEY, _expire)
    )

    assert_unauthorized(response)
    assert await refresh_token_spent_at(session, tokens["refresh_token"]) is None


async def test_signed_refresh_token_that_was_never_issued_is_401(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await refresh(
        client, _reissue(tokens["refresh_token"], settings.SECRET_KEY, _set("jti", "f" * 32))
    )

    assert_unauthorized(response)
    ended_at, _ = await login_state(session, claims_of(tokens["refresh_token"])["sid"])
    assert ended_at is None


@pytest.mark.parametrize(
    "body",
    [{}, {"refresh_token": ""}, {"refresh_token": "x", "user_id": 1}],
    ids=["missing", "empty", "unknown-field"],
)
async def test_refresh_with_an_invalid_body_is_422(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post(REFRESH_URL, json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_failed"


LOGIN_MAX_AGE_SECONDS = 3600


@pytest.fixture
def short_login_app(settings: Settings) -> FastAPI:
    """Logins end after an hour; refresh tokens alone would live a month."""
    return create_app(settings.model_copy(update={"LOGIN_MAX_AGE_SECONDS": LOGIN_MAX_AGE_SECONDS}))


async def stored_login(session: AsyncSession, login_id: str) -> Login:
    statement = select(Login).where(Login.id == login_id).execution_options(populate_existing=True)
    row = (await session.scalars(statement)).one()
    await session.commit()
    return row


async def test_refreshing_never_extends_a_login_past_its_max_age(
    short_login_app: FastAPI, serve: Serve
) -> None:
    async with (
        serve(short_login_app) as client,
        open_session(short_login_app.state.database) as session,
    ):
        await make_user(session, username="ann")
        tokens = await login(client, "ann")
        login_id = claims_of(tokens["refresh_token"])["sid"]
        signed_in = await stored_login(session, login_id)
        for _ in range(3):
            response = await refresh(client, tokens["refresh_token"])
            assert response.status_code == 200, response.text
            tokens = response.json()
        after_refreshes = await stored_login(session, login_id)

    assert signed_in.expires_at == signed_in.created_at + timedelta(seconds=LOGIN_MAX_AGE_SECONDS)
    assert after_refreshes.expires_at == signed_in.expires_at
    login_ends = int(signed_in.expires_at.timestamp())
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert claims_of(token)["exp"] <= login_ends


async def test_a_login_past_its_max_age_is_over_for_its_access_and_refresh_tokens(
    short_login_app: FastAPI, serve: Serve
) -> None:
    async with (
        serve(short_login_app) as client,
        open_session(short_login_app.state.database) as session,
    ):
        await make_user(session, username="ann")
        tokens = await login(client, "ann")
        login_id = claims_of(tokens["refresh_token"])["sid"]
        await session.execute(
            update(Login)
            .where(Login.id == login_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()

        refused_refresh = await refresh(client, tokens["refresh_token"])
        refused_access = await me(client, tokens["access_token"])

    assert_unauthorized(refused_refresh)
    assert_unauthorized(refused_access)


# --- POST /auth/logout -------------------------------------------------------------------------


async def test_logout_ends_the_login_of_its_access_and_refresh_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    other_login = await login(client, "ann")
    tokens = await login(client, "ann")

    response = await client.post(LOGOUT_URL, json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 204
    assert response.content == b""
    ended_at, reason = await login_state(session, claims_of(tokens["access_token"])["sid"])
    assert ended_at is not None
    assert reason == "logout"
    assert_unauthorized(await me(client, tokens["access_token"]))
    assert_unauthorized(await refresh(client, tokens["refresh_token"]))
    assert (await me(client, other_login["access_token"])).status_code == 200


async def test_refresh_after_logout_does_not_spend_the_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")
    logout = await client.post(LOGOUT_URL, json={"refresh_token": tokens["refresh_token"]})
    assert logout.status_code == 204

    response = await refresh(client, tokens["refresh_token"])

    assert_unauthorized(response)
    assert await refresh_token_spent_at(session, tokens["refresh_token"]) is None


async def test_logout_with_a_garbage_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGOUT_URL, json={"refresh_token": "not-a-jwt-at-all"})

    assert_unauthorized(response)


async def test_logout_with_an_access_token_is_401_and_ends_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await client.post(LOGOUT_URL, json={"refresh_token": tokens["access_token"]})

    assert_unauthorized(response)
    ended_at, _ = await login_state(session, claims_of(tokens["access_token"])["sid"])
    assert ended_at is None
    assert (await me(client, tokens["access_token"])).status_code == 200


async def test_logout_with_unknown_fields_is_422_and_ends_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await client.post(
        LOGOUT_URL, json={"refresh_token": tokens["refresh_token"], "everywhere": True}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "everywhere"]
    ended_at, _ = await login_state(session, claims_of(tokens["access_token"])["sid"])
    assert ended_at is None
    assert (await me(client, tokens["access_token"])).status_code == 200


# --- Tokens of users that are gone, inactive, or changed their password ------------------------


async def test_tokens_of_a_deleted_user_are_401_at_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    tokens = await login(client, "ann")

    response = await client.delete(ME_URL, headers=bearer(tokens["access_token"]))

    assert response.status_code == 204
    assert (
        await count_rows(session, select(func.count()).select_from(User).where(User.id == user.id))
        == 0
    )
    assert_unauthorized(await me(client, tokens["access_token"]))
    assert_unauthorized(await refresh(client, tokens["refresh_token"]))


async def test_tokens_of_a_user_deactivated_in_the_database_are_401_at_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    tokens = await login(client, "ann")
    assert (await me(client, tokens["access_token"])).status_code == 200

    await session.execute(update(User).where(User.id == user.id).values(is_active=False))
    await session.commit()

    assert_unauthorized(await me(client, tokens["access_token"]))
    assert_unauthorized(await refresh(client, tokens["refresh_token"]))
    assert await refresh_token_spent_at(session, tokens["refresh_token"]) is None


async def test_tokens_of_a_user_deactivated_by_an_admin_are_401_even_after_reactivation(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    admin = await make_user(session, username="root", is_superuser=True)
    admin_headers = await auth_headers(client, admin)
    tokens = await login(client, "ann")

    response = await client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin_headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert_unauthorized(await me(client, tokens["access_token"]))
    assert_unauthorized(await refresh(client, tokens["refresh_token"]))
    ended_at, reason = await login_state(session, claims_of(tokens["access_token"])["sid"])
    assert ended_at is not None
    assert reason == "deactivated"
    # Reactivation lets the user sign in again, but does not revive the ended login.
    reactivated = await client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": True}, headers=admin_headers
    )
    assert reactivated.status_code == 200
    assert_unauthorized(await me(client, tokens["access_token"]))
    assert (await me(client, (await login(client, "ann"))["access_token"])).status_code == 200


async def test_password_change_keeps_this_login_and_ends_every_other(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    this_login = await login(client, "ann")
    other_login = await login(client, "ann")
    new_password = "a brand new passphrase"

    response = await client.patch(
        ME_URL,
        json={"password": new_password, "current_password": DEFAULT_PASSWORD},
        headers=bearer(this_login["access_token"]),
    )

    assert response.status_code == 200, response.text
    assert "password" not in json.dumps(response.json())
    assert (await me(client, this_login["access_token"])).status_code == 200
    rotated = await refresh(client, this_login["refresh_token"])
    assert rotated.status_code == 200
    assert (await me(client, rotated.json()["access_token"])).status_code == 200
    assert_unauthorized(await me(client, other_login["access_token"]))
    assert_unauthorized(await refresh(client, other_login["refresh_token"]))
    ended_at, reason = await login_state(session, claims_of(other_login["access_token"])["sid"])
    assert ended_at is not None
    assert reason == "password_changed"
    kept_ended_at, _ = await login_state(session, claims_of(this_login["access_token"])["sid"])
    assert kept_ended_at is None
    assert_unauthorized(
        await client.post(TOKEN_URL, data={"username": "ann", "password": DEFAULT_PASSWORD}),
        code="invalid_credentials",
    )
    assert (
        await me(client, (await login(client, "ann", new_password))["access_token"])
    ).status_code == 200


async def test_a_login_whose_account_is_deleted_while_the_password_is_checked_fails_cleanly(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(session, username="ann")
    on_hashing(
        app,
        monkeypatch,
        committing_once(app.state.database, delete(User).where(User.id == user.id)),
    )

    response = await client.post(TOKEN_URL, data={"username": "ann", "password": DEFAULT_PASSWORD})

    assert_unauthorized(response, code="invalid_credentials")
    assert await count_rows(session, select(func.count()).select_from(Login)) == 0


async def test_a_login_with_a_password_replaced_while_it_is_checked_fails(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(session, username="ann")
    replaced = update(User).where(User.id == user.id).values(hashed_password="another-hash")
    on_hashing(app, monkeypatch, committing_once(app.state.database, replaced))

    response = await client.post(TOKEN_URL, data={"username": "ann", "password": DEFAULT_PASSWORD})

    assert_unauthorized(response, code="invalid_credentials")
    assert await count_rows(session, select(func.count()).select_from(Login)) == 0
