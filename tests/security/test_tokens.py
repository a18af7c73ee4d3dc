"""Attacks on the bearer tokens (OWASP API2:2023 Broken Authentication, ASVS V9 and V7): every
forged, malformed, misplaced or outlived token is a 401 problem, never a 500, on reads and on
writes, and a write it comes with changes nothing.

Already covered where the token code is tested, and not repeated here:
- tests/auth/test_router.py: test_garbage_access_token_is_401, test_request_with_a_non_bearer_
  scheme_is_401 (Basic), test_access_token_with_alg_none_is_401, test_access_token_signed_with_
  another_algorithm_is_401 (HS512), test_access_token_signed_with_another_key_is_401,
  test_access_token_with_a_changed_payload_and_the_old_signature_is_401, test_signed_access_
  token_with_bad_claims_is_401 (expired; no sub, exp, iat, jti, type, sid or iss; another
  type, issuer or login), test_refresh_token_used_as_access_token_is_401, test_access_token_
  used_as_refresh_token_is_401, test_tokens_of_a_deleted_user_are_401_at_once, test_tokens_of_
  a_user_deactivated_in_the_database_are_401_at_once, test_tokens_of_a_user_deactivated_by_an_
  admin_are_401_even_after_reactivation, test_password_change_keeps_this_login_and_ends_every_
  other;
- tests/auth/test_password_reset.py: test_the_link_sets_the_password_and_ends_every_login_
  before_it;
- tests/core/test_security.py: the codec itself, claim by claim.
"""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import User
from tests.factories import DEFAULT_PASSWORD, bearer, login, make_post, make_user
from tests.helpers import assert_problem, snapshot

# What the HTTP layer decides, the same on either database: run on SQLite alone (the
# `http_layer` marker, tests/conftest.py).
pytestmark = pytest.mark.http_layer

ME = "/api/v1/users/me"
POSTS = "/api/v1/posts/"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
NEW_POST = {"title": "Forged", "content": "Written with a token that is not one."}


def segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_signed(header: dict[str, Any], claims: dict[str, Any], key: str) -> str:
    """A token whose header says anything, signed with HMAC-SHA256 under `key` whatever it says:
    what an attacker who knows (or guesses) the key would make of the header's `alg`."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{segment(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def key_of(settings: Settings) -> str:
    return settings.SECRET_KEY.get_secret_value()


# Each way a request can try to be served with a token that is not a usable access token.
Attempt = Callable[[httpx.AsyncClient, dict[str, str]], Any]


async def read_me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get(ME, headers=headers)


async def list_posts(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    # Anonymous callers may list posts; a token that fails must still be refused.
    return await client.get(POSTS, headers=headers)


async def create_post(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post(POSTS, json=NEW_POST, headers=headers)


async def change_me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.patch(ME, json={"bio": "taken over"}, headers=headers)


async def delete_me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.delete(ME, headers=headers)


def attempt_name(attempt: Attempt) -> str:
    return attempt.__name__


# A read that requires a caller, one that admits anonymous callers, and a write (which locks
# the caller): the three ways a token is taken. Every token goes through the same decoding.
ROUTES = pytest.mark.parametrize(
    "attempt", [read_me, list_posts, create_post], ids=["GET me", "GET posts", "POST posts"]
)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    code = response.json()["code"]
    assert code in {"invalid_token", "not_authenticated"}
    assert_problem(response, 401, code)


@pytest.fixture
async def ann(session: AsyncSession) -> User:
    return await make_user(session, username="ann", bio="ann's own bio")


@pytest.fixture
async def ann_tokens(client: httpx.AsyncClient, ann: User) -> dict[str, Any]:
    return await login(client, "ann")


MALFORMED = {
    "empty-after-scheme": "",
    "one-dot": "abc.def",
    "three-empty-parts": "..",
    "four-parts": "a.b.c.d",
    "not-base64": "!!!.???.***",
    "header-not-json": f"{segment(b'not json')}.{segment({'sub': '1'})}.sig",
    "header-a-list": f"{segment([])}.{segment({'sub': '1'})}.sig",
    "header-alg-a-list": f"{segment({'alg': ['HS256']})}.{segment({'sub': '1'})}.sig",
    "payload-not-json": f"{segment({'alg': 'HS256'})}.{segment(b'{')}.sig",
    "payload-a-number": f"{segment({'alg': 'HS256'})}.{segment(7)}.sig",
    "kid-path-traversal": f"{segment({'alg': 'HS256', 'kid': '../../etc/passwd'})}.e30.sig",
    "jku-elsewhere": f"{segment({'alg': 'RS256', 'jku': 'https://evil.example/k'})}.e30.sig",
    "inner-space": "abc def.ghi",
    "very-long": "a" * 4000 + "." + "b" * 4000 + "." + "c" * 100,
}


@ROUTES
@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_token_is_a_401_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    ann_tokens: dict[str, Any],
    attempt: Attempt,
    token: str,
) -> None:
    before = await snapshot(app.state.database)

    response = await attempt(client, {"Authorization": f"Bearer {token}"})

    assert_refused(response)
    assert await snapshot(app.state.database) == before


async def test_a_token_of_bytes_that_are_no_text_is_a_401(
    client: httpx.AsyncClient, ann_tokens: dict[str, Any]
) -> None:
    response = await client.get(ME, headers=[(b"Authorization", b"Bearer \xff\xfe.\x80.\x00")])

    assert_refused(response)


@pytest.mark.parametrize(
    "header",
    ["Token {t}", "JWT {t}", "Bearer", "Bearer    ", "Bearer{t}", "{t}", "Bearer: {t}"],
)
async def test_a_valid_token_under_another_scheme_is_a_401(
    client: httpx.AsyncClient, ann_tokens: dict[str, Any], header: str
) -> None:
    # "Basic" is tests/auth/test_router.py::test_request_with_a_non_bearer_scheme_is_401.
    value = header.format(t=ann_tokens["access_token"])

    response = await client.get(ME, headers={"Authorization": value})

    assert_refused(response)
    assert response.json()["code"] == "not_authenticated"


@ROUTES
@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", "", "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"]
)
async def test_a_token_whose_header_names_another_algorithm_is_a_401_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    ann_tokens: dict[str, Any],
    attempt: Attempt,
    alg: str,
) -> None:
    """Whatever `alg` the header names, only HS256 is checked: the header never picks the
    algorithm (no `none`, no asymmetric algorithm keyed with the shared secret)."""
    claims = claims_of(ann_tokens["access_token"])
    if alg.lower() in {"none", ""}:
        token = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims)}."
    else:
        token = hs256_signed({"alg": alg, "typ": "JWT"}, claims, key_of(settings))
    before = await snapshot(app.state.database)

    response = await attempt(client, bearer(token))

    assert_refused(response)
    assert await snapshot(app.state.database) == before


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


ODD_CLAIMS: dict[str, Callable[[dict[str, Any]], None]] = {
    "exp-past-any-date": lambda c: c.update(exp=10**20),
    "exp-text": lambda c: c.update(exp="tomorrow"),
    "exp-null": lambda c: c.update(exp=None),
    "iat-in-the-future": lambda c: c.update(iat=_now() + 3600),
    "iat-text": lambda c: c.update(iat="now"),
    "nbf-in-the-future": lambda c: c.update(nbf=_now() + 3600),
    "sub-zero": lambda c: c.update(sub="0"),
    "sub-negative": lambda c: c.update(sub="-1"),
    "sub-past-any-row-id": lambda c: c.update(sub="9" * 30),
    "sub-a-number": lambda c: c.update(sub=int(c["sub"])),
    "sub-a-float": lambda c: c.update(sub="1.0"),
    "sid-an-object": lambda c: c.update(sid={"$ne": ""}),
    "jti-a-list": lambda c: c.update(jti=[c["jti"]]),
    "type-a-list": lambda c: c.update(type=["access"]),
    "type-uppercase": lambda c: c.update(type="ACCESS"),
    "iss-a-list": lambda c: c.update(iss=[c["iss"]]),
}


@ROUTES
@pytest.mark.parametrize("change", ODD_CLAIMS.values(), ids=ODD_CLAIMS.keys())
async def test_a_token_signed_with_the_key_but_with_odd_claims_is_a_401_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    ann_tokens: dict[str, Any],
    attempt: Attempt,
    change: Callable[[dict[str, Any]], None],
) -> None:
    """Claims only the key's holder could sign, of types and values no issued token has: the
    decoding refuses them, and nothing reaches the database as a wrong type."""
    claims = claims_of(ann_tokens["access_token"])
    change(claims)
    token = hs256_signed({"alg": "HS256", "typ": "JWT"}, claims, key_of(settings))
    before = await snapshot(app.state.database)

    response = await attempt(client, bearer(token))

    assert_refused(response)
    assert await snapshot(app.state.database) == before


@pytest.mark.parametrize("path", [REFRESH, LOGOUT])
@pytest.mark.parametrize(
    "token", [t for name, t in MALFORMED.items() if name != "very-long"], ids=str
)
async def test_a_malformed_refresh_token_is_a_401_or_422_and_ends_no_login(
    app: FastAPI, client: httpx.AsyncClient, ann_tokens: dict[str, Any], path: str, token: str
) -> None:
    before = await snapshot(app.state.database)

    response = await client.post(path, json={"refresh_token": token})

    if token:
        assert_problem(response, 401, "invalid_token")
    else:
        assert_problem(response, 422, "validation_failed")
    assert await snapshot(app.state.database) == before
    assert (await client.get(ME, headers=bearer(ann_tokens["access_token"]))).status_code == 200


@pytest.mark.parametrize("parameter", ["access_token", "token", "jwt", "Authorization"])
async def test_a_token_in_the_query_string_is_ignored(
    app: FastAPI, client: httpx.AsyncClient, ann_tokens: dict[str, Any], parameter: str
) -> None:
    """Query strings end up in logs, proxies and browser history: a token there authenticates
    nothing."""
    token = ann_tokens["access_token"]
    before = await snapshot(app.state.database)

    read = await client.get(ME, params={parameter: token})
    write = await client.post(POSTS, params={parameter: token}, json=NEW_POST)
    listed = await client.get(POSTS, params={parameter: f"Bearer {token}"})

    assert_problem(read, 401, "not_authenticated")
    assert_problem(write, 401, "not_authenticated")
    # Served as to anyone: the token is not taken, not even to refuse it.
    assert listed.status_code == 200
    assert await snapshot(app.state.database) == before


async def test_a_token_in_a_cookie_or_another_header_is_ignored(
    app: FastAPI, client: httpx.AsyncClient, ann_tokens: dict[str, Any]
) -> None:
    token = ann_tokens["access_token"]
    before = await snapshot(app.state.database)
    carriers = [
        {"Cookie": f"access_token={token}"},
        {"X-Access-Token": token},
        {"X-Authorization": f"Bearer {token}"},
        {"Proxy-Authorization": f"Bearer {token}"},
    ]

    for headers in carriers:
        response = await client.post(POSTS, json=NEW_POST, headers=headers)
        assert_problem(response, 401, "not_authenticated")
    assert await snapshot(app.state.database) == before


@pytest.mark.parametrize("attempt", [create_post, change_me, delete_me], ids=attempt_name)
async def test_a_token_of_a_deactivated_user_writes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    ann: User,
    ann_tokens: dict[str, Any],
    attempt: Attempt,
) -> None:
    # Reads are tests/auth/test_router.py::test_tokens_of_a_user_deactivated_in_the_database_
    # are_401_at_once; a write must be refused before it does anything.
    await make_post(session, ann)
    await session.execute(update(User).where(User.id == ann.id).values(is_active=False))
    await session.commit()
    before = await snapshot(app.state.database)

    response = await attempt(client, bearer(ann_tokens["access_token"]))

    assert_problem(response, 401, "invalid_token")
    assert await snapshot(app.state.database) == before


@pytest.mark.parametrize("attempt", [read_me, create_post, change_me, delete_me], ids=attempt_name)
async def test_a_token_issued_before_a_password_change_on_another_login_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, ann: User, attempt: Attempt
) -> None:
    stolen = await login(client, "ann")
    own = await login(client, "ann")
    changed = await client.patch(
        ME,
        json={"password": "a brand new passphrase", "current_password": DEFAULT_PASSWORD},
        headers=bearer(own["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    before = await snapshot(app.state.database)

    response = await attempt(client, bearer(stolen["access_token"]))
    refreshed = await client.post(REFRESH, json={"refresh_token": stolen["refresh_token"]})

    assert_problem(response, 401, "invalid_token")
    assert_problem(refreshed, 401, "invalid_token")
    assert await snapshot(app.state.database) == before
