"""Attacks on signing in and on accounts (OWASP API2:2023 Broken Authentication, ASVS V6): no
answer tells whether an account exists, passwords are taken as their owners type them, and no
request makes the server hash more than a password's worth.

Already covered, and not repeated here:
- the same 401 body for a wrong password, an unknown and an inactive user: tests/auth/test_
  router.py::test_wrong_password_unknown_user_and_inactive_user_get_the_same_401; one argon2
  verification per attempt, against a dummy hash for an unknown user: ::test_every_login_
  attempt_verifies_exactly_one_password;
- the same 202 for a reset of any address: tests/auth/test_password_reset.py::test_a_request_is_
  answered_alike_for_any_address_and_mails_only_an_active_account;
- 409 for a taken name or address (the documented trade-off; sign-ups are limited per address):
  tests/users/test_router.py::test_register_rejects_a_taken_username_or_email_case_
  insensitively, tests/auth/test_rate_limits.py::test_sign_ups_are_limited_per_address;
- 8 and 128 characters taken, 7 and 129 refused: tests/users/test_router.py::test_register_
  accepts_edge_values and ::test_register_rejects_invalid_input_without_echoing_it_or_creating_
  a_user;
- guessing limited per account and per address, and X-Forwarded-For from an untrusted peer
  changing nothing: tests/auth/test_rate_limits.py (test_failed_sign_ins_spend_the_account_and_
  then_even_the_right_password_is_refused, test_every_sign_in_attempt_spends_its_address,
  test_x_forwarded_for_from_an_untrusted_peer_cannot_escape_the_address_limit).
"""

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import account_tokens
from app.auth.dependencies import RESET_REQUEST_FLOOR_SECONDS
from app.core.config import Settings
from app.core.passwords import COMMON_PASSWORDS_FILE
from app.core.security import PasswordHasher
from app.main import create_app
from app.models import AccountToken, AccountTokenPurpose, User
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_user
from tests.helpers import assert_problem, open_session, snapshot

TOKEN = "/api/v1/auth/token"
USERS = "/api/v1/users/"
ME = "/api/v1/users/me"
RESET_REQUEST = "/api/v1/auth/password-reset/request"
RESET_CONFIRM = "/api/v1/auth/password-reset/confirm"
A_MEGABYTE = 1_000_000


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 hash or verification any hasher computes from now on, by name."""
    runs: list[str] = []
    hash_, verify_and_update = PasswordHash.hash, PasswordHash.verify_and_update

    def counting_hash(self: PasswordHash, password: str | bytes, **kwargs: Any) -> str:
        runs.append("hash")
        return hash_(self, password, **kwargs)

    def counting_verify(
        self: PasswordHash, password: str | bytes, hash: str | bytes
    ) -> tuple[bool, str | None]:
        runs.append("verify")
        return verify_and_update(self, password, hash)

    monkeypatch.setattr(PasswordHash, "hash", counting_hash)
    monkeypatch.setattr(PasswordHash, "verify_and_update", counting_verify)
    return runs


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, data={"username": username, "password": password})


async def sign_up(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        USERS, json={"username": username, "email": f"{username}@example.com", "password": password}
    )


async def reset_token_of(app: FastAPI, user: User) -> str:
    """A reset link's token for `user`, as the mail would carry it."""
    async with open_session(app.state.database) as session:
        token = await account_tokens.issue(
            session,
            user,
            AccountTokenPurpose.RESET_PASSWORD,
            email=user.email,
            ttl=timedelta(hours=1),
        )
        await session.commit()
    return token


# --- Enumeration -------------------------------------------------------------------------------


def without_varying_headers(response: httpx.Response) -> dict[str, str]:
    """The headers, but those that differ from any request to the next (id, date, counts)."""
    varying = {"x-request-id", "x-process-time", "date", "ratelimit-remaining", "ratelimit-reset"}
    return {name: value for name, value in response.headers.items() if name not in varying}


async def test_failed_sign_ins_answer_alike_down_to_the_headers(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    await make_user(session, username="ivy", is_active=False)

    answers = [
        await sign_in(client, "ann", "not the password"),
        await sign_in(client, "nobody", DEFAULT_PASSWORD),
        await sign_in(client, "ann@example.com", "not the password"),
        await sign_in(client, "nobody@example.com", DEFAULT_PASSWORD),
        await sign_in(client, "ivy", DEFAULT_PASSWORD),
    ]

    for answer in answers:
        assert_problem(answer, 401, "invalid_credentials")
    bodies = {answer.text.replace(answer.headers["X-Request-ID"], "") for answer in answers}
    assert len(bodies) == 1
    assert [without_varying_headers(answer) for answer in answers] == [
        without_varying_headers(answers[0])
    ] * len(answers)


async def test_reset_requests_answer_alike_down_to_the_headers(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    await make_user(session, username="ivy", is_active=False)

    answers = [
        await client.post(RESET_REQUEST, json={"email": email})
        for email in ("ann@example.com", "nobody@example.com", "ivy@example.com")
    ]

    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert len({answer.content for answer in answers}) == 1
    assert [without_varying_headers(answer) for answer in answers] == [
        without_varying_headers(answers[0])
    ] * len(answers)


@pytest.fixture
def timed_app(settings: Settings) -> FastAPI:
    """Real argon2 costs (the defaults), so that one verification stands out of the noise of a
    request; no rate limits and no dispatcher, so that every try does the same work."""
    defaults = Settings.model_fields
    return create_app(
        settings.model_copy(
            update={
                "PASSWORD_HASH_TIME_COST": defaults["PASSWORD_HASH_TIME_COST"].default,
                "PASSWORD_HASH_MEMORY_COST_KIB": defaults["PASSWORD_HASH_MEMORY_COST_KIB"].default,
                "PASSWORD_HASH_PARALLELISM": defaults["PASSWORD_HASH_PARALLELISM"].default,
                "RATE_LIMIT_ENABLED": False,
                "MAIL_DISPATCHER_IN_APP": False,
            }
        )
    )


async def sign_up_ann_and_inactive_ivy(app: FastAPI, client: httpx.AsyncClient) -> None:
    # Through the app: hashed with its parameters, so that no sign-in rehashes.
    for username in ("ann", "ivy"):
        assert (await sign_up(client, username, DEFAULT_PASSWORD)).status_code == 201
    async with open_session(app.state.database) as session:
        ivy = await session.scalar(select(User).where(User.username == "ivy"))
        assert ivy is not None
        ivy.is_active = False
        await session.commit()


@dataclass(frozen=True)
class Timings:
    """Each kind of try's median time, and its median offset from the other kinds of its round.
    Load comes and goes over a run; an offset within a round cancels it, so a leak (one kind
    steadily slower or faster) stands out of far less noise than in the medians alone."""

    medians: dict[str, float]
    offsets: dict[str, float]

    def spread(self, *kinds: str) -> float:
        return max(self.offsets[kind] for kind in kinds) - min(self.offsets[k] for k in kinds)


async def timed_rounds(
    tries: dict[str, Callable[[], Awaitable[object]]], *, rounds: int = 15
) -> Timings:
    """The kinds take turns in every round, in a rotating order, so that none always goes first."""
    kinds = list(tries)
    times: list[dict[str, float]] = []
    for round_number in range(rounds):
        shift = round_number % len(kinds)
        this_round = {}
        for kind in kinds[shift:] + kinds[:shift]:
            start = time.perf_counter()
            result = await tries[kind]()
            this_round[kind] = time.perf_counter() - start
            if isinstance(result, httpx.Response):
                assert result.status_code in {202, 401}, result.text
        times.append(this_round)
    return Timings(
        medians={kind: statistics.median(r[kind] for r in times) for kind in kinds},
        offsets={
            kind: statistics.median(r[kind] - statistics.median(r.values()) for r in times)
            for kind in kinds
        },
    )


async def test_a_failed_sign_in_takes_as_long_whether_or_not_the_account_exists(
    timed_app: FastAPI, serve: Serve
) -> None:
    """A leak would be an unknown user answered without a verification: a whole verification
    faster. One is timed in every round too, under the same load as the sign-ins: each sign-in
    takes at least half of one, and their offsets differ by far less than half of one."""
    async with serve(timed_app) as client:
        await sign_up_ann_and_inactive_ivy(timed_app, client)
        hasher: PasswordHasher = timed_app.state.password_hasher
        real_hash = await hasher.hash(DEFAULT_PASSWORD)

        timings = await timed_rounds(
            {
                "wrong password": lambda: sign_in(client, "ann", "not the password"),
                "unknown user": lambda: sign_in(client, "nobody", "not the password"),
                "inactive user": lambda: sign_in(client, "ivy", DEFAULT_PASSWORD),
                "verification": lambda: hasher.verify("not the password", real_hash),
            }
        )

    sign_ins = ("wrong password", "unknown user", "inactive user")
    verification = timings.medians["verification"]
    assert min(timings.medians[kind] for kind in sign_ins) >= verification / 2, timings
    assert timings.spread(*sign_ins) < verification / 2, timings


# A known address writes the link and the queued message: 5-15 ms more than an unknown one on
# PostgreSQL without the floor (measured, offsets within a round; 0-2 ms with it, under load).
RESET_LEAK_SECONDS = 0.005


async def test_a_reset_request_takes_as_long_whether_or_not_the_account_exists(
    timed_app: FastAPI, serve: Serve
) -> None:
    """A known address costs a few rows more, never a hash or a mail sent while the client
    waits, and the floor hides those rows."""
    async with serve(timed_app) as client:
        await sign_up_ann_and_inactive_ivy(timed_app, client)

        timings = await timed_rounds(
            {
                email: partial(client.post, RESET_REQUEST, json={"email": email})
                for email in ("ann@example.com", "nobody@example.com", "ivy@example.com")
            }
        )

    assert timings.spread(*timings.offsets) < RESET_LEAK_SECONDS, timings


async def test_a_reset_request_is_answered_no_sooner_than_the_floor_after_its_commit(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, email="ann@example.com")
    times = {}
    for email in ("ann@example.com", "nobody@example.com"):
        start = time.perf_counter()
        response = await client.post(RESET_REQUEST, json={"email": email})
        times[email] = time.perf_counter() - start
        assert response.status_code == 202

    assert min(times.values()) >= RESET_REQUEST_FLOOR_SECONDS
    # The link was committed before the answer left: the floor waits after the commit.
    assert await session.scalar(select(func.count()).select_from(AccountToken)) == 1


# --- Passwords as they are typed ---------------------------------------------------------------

LONG_ASCII = "a passphrase longer than bcrypt's seventy-two bytes, every byte of it counts!"
MULTI_BYTE = ("pässwörd ключ 密码 🔑" * 8)[:128]


@pytest.mark.parametrize(
    "password",
    [LONG_ASCII, MULTI_BYTE, "🔑" * 128, "\u00e9" * 8],
    ids=["over-72-bytes", "mixed-scripts-128-chars", "128-emoji-512-bytes", "8-two-byte-chars"],
)
async def test_a_long_or_multi_byte_password_works_whole(
    client: httpx.AsyncClient, session: AsyncSession, password: str
) -> None:
    assert len(password.encode()) > len(password) or len(password.encode()) > 72

    created = await sign_up(client, "ann", password)

    assert created.status_code == 201, created.text
    assert (await sign_in(client, "ann", password)).status_code == 200
    # Nothing is cut off: the password without its last character is another password.
    assert_problem(await sign_in(client, "ann", password[:-1]), 401, "invalid_credentials")
    if len(password.encode()) > 72:
        first_72_bytes = password.encode()[:72].decode(errors="ignore")
        assert_problem(await sign_in(client, "ann", first_72_bytes), 401, "invalid_credentials")


async def test_a_multi_byte_password_can_be_set_and_then_signs_in(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    headers = await auth_headers(client, user)

    changed = await client.patch(
        ME, json={"password": MULTI_BYTE, "current_password": DEFAULT_PASSWORD}, headers=headers
    )

    assert changed.status_code == 200, changed.text
    assert (await sign_in(client, "ann", MULTI_BYTE)).status_code == 200
    assert_problem(await sign_in(client, "ann", DEFAULT_PASSWORD), 401, "invalid_credentials")


# --- A megabyte password -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [A_MEGABYTE, 4 * A_MEGABYTE], ids=["1-MB", "4-MB"])
@pytest.mark.parametrize("route", ["sign-in", "sign-up", "change", "current", "reset"])
async def test_a_megabyte_password_is_refused_before_any_hashing(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    argon2_runs: list[str],
    route: str,
    size: int,
) -> None:
    user = await make_user(session, username="ann")
    headers = await auth_headers(client, user)
    token = await reset_token_of(app, user)
    huge = "p" * size
    before = await snapshot(app.state.database)
    argon2_runs.clear()

    if route == "sign-in":
        response = await sign_in(client, "ann", huge)
    elif route == "sign-up":
        response = await sign_up(client, "bob", huge)
    elif route == "change":
        body = {"password": huge, "current_password": DEFAULT_PASSWORD}
        response = await client.patch(ME, json=body, headers=headers)
    elif route == "current":
        body = {"password": "a brand new passphrase", "current_password": huge}
        response = await client.patch(ME, json=body, headers=headers)
    else:
        response = await client.post(RESET_CONFIRM, json={"token": token, "new_password": huge})

    # Over the body limit it is a 413; under it, longer than any password may be: a 422.
    expected = (413, "payload_too_large") if size > 1024 * 1024 else (422, "validation_failed")
    assert_problem(response, *expected)
    assert huge[:200] not in response.text
    assert argon2_runs == []
    assert await snapshot(app.state.database) == before


# --- The common-password list, opt-in ----------------------------------------------------------


def test_the_common_password_list_is_off_by_default_and_holds_only_allowed_lengths() -> None:
    assert Settings.model_fields["PASSWORD_REJECT_COMMON"].default is False
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    passwords = [line for line in lines if line and not line.startswith("#")]
    assert passwords
    assert all(8 <= len(password) <= 128 for password in passwords)
    assert len(set(passwords)) == len(passwords)


async def test_by_default_a_common_password_is_taken(client: httpx.AsyncClient) -> None:
    response = await sign_up(client, "ann", "password123")

    assert response.status_code == 201, response.text
    assert (await sign_in(client, "ann", "password123")).status_code == 200


@pytest.fixture
def strict_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"PASSWORD_REJECT_COMMON": True}))


@pytest.mark.parametrize("password", ["password123", "PassWord123", "Correct Horse Battery Staple"])
async def test_with_the_list_on_a_common_password_is_refused_at_sign_up_before_hashing(
    strict_app: FastAPI, serve: Serve, argon2_runs: list[str], password: str
) -> None:
    async with serve(strict_app) as client:
        before = await snapshot(strict_app.state.database)

        response = await sign_up(client, "ann", password)

        assert_problem(response, 422, "password_too_common")
        assert password not in response.text
        assert argon2_runs == []
        assert await snapshot(strict_app.state.database) == before
        uncommon = await sign_up(client, "ann", "a rather less common passphrase")
        assert uncommon.status_code == 201, uncommon.text


async def test_with_the_list_on_a_common_new_password_is_refused_by_a_change_and_a_reset(
    strict_app: FastAPI, serve: Serve, argon2_runs: list[str]
) -> None:
    app = strict_app
    async with serve(app) as client:
        async with open_session(app.state.database) as session:
            user = await make_user(session, username="ann", password="an uncommon passphrase")
        headers = await auth_headers(client, user, "an uncommon passphrase")
        token = await reset_token_of(app, user)
        before = await snapshot(app.state.database)
        argon2_runs.clear()

        changed = await client.patch(
            ME,
            json={"password": "qwertyuiop", "current_password": "an uncommon passphrase"},
            headers=headers,
        )
        reset = await client.post(RESET_CONFIRM, json={"token": token, "new_password": "iloveyou1"})

        assert_problem(changed, 422, "password_too_common")
        assert_problem(reset, 422, "password_too_common")
        assert argon2_runs == []
        assert await snapshot(app.state.database) == before
        # The link was not spent: it still sets an uncommon password.
        done = await client.post(
            RESET_CONFIRM, json={"token": token, "new_password": "another uncommon passphrase"}
        )
        assert done.status_code == 204, done.text
        assert (await sign_in(client, "ann", "another uncommon passphrase")).status_code == 200


# --- Headers that claim another client address -------------------------------------------------

SPOOFED_ADDRESS_HEADERS = ["X-Forwarded-For", "X-Real-IP", "True-Client-IP", "CF-Connecting-IP"]


async def test_headers_naming_another_client_address_escape_no_limit(
    settings: Settings, serve: Serve
) -> None:
    """The app counts the address the server reports; only uvicorn, for a trusted proxy, may
    take it from X-Forwarded-For (tests/auth/test_rate_limits.py::test_x_forwarded_for_from_an_
    untrusted_peer_cannot_escape_the_address_limit). No header reaches a limit's key."""
    app = create_app(
        settings.model_copy(
            update={
                "RATE_LIMIT_LOGIN_ADDRESS": "2/minute",
                "RATE_LIMIT_REGISTER_ADDRESS": "2/hour",
                "RATE_LIMIT_MAIL_CLIENT": "2/hour",
            }
        )
    )

    def spoofing(n: int) -> dict[str, str]:
        address = f"198.51.100.{n}"
        return {
            **dict.fromkeys(SPOOFED_ADDRESS_HEADERS, address),
            "Forwarded": f"for={address}",
        }

    async with serve(app) as client:
        sign_ins = [
            await client.post(
                TOKEN, data={"username": f"nobody{n}", "password": "guess"}, headers=spoofing(n)
            )
            for n in range(3)
        ]
        sign_ups = [
            await client.post(
                USERS,
                json={"username": f"new{n}", "email": f"new{n}@example.com", "password": "a" * 8},
                headers=spoofing(n),
            )
            for n in range(3)
        ]
        resets = [
            await client.post(
                RESET_REQUEST, json={"email": f"new{n}@example.com"}, headers=spoofing(n)
            )
            for n in range(3)
        ]

    assert [response.status_code for response in sign_ins] == [401, 401, 429]
    assert [response.status_code for response in sign_ups] == [201, 201, 429]
    # Over the mail limit the answer is the same 202; its own RateLimit headers say it is spent.
    assert [response.status_code for response in resets] == [202, 202, 202]
    assert [response.headers["RateLimit-Remaining"] for response in resets] == ["1", "0", "0"]
