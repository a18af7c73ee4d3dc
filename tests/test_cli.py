"""The management command: `python -m app.cli create-superuser`."""

import asyncio
import getpass
import io
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app import cli
from app.core.config import Settings
from tests.factories import bearer, login, make_user
from tests.helpers import usernames

PASSWORD = "a superuser passphrase"
CREATE_ROOT = [
    "create-superuser",
    "--username",
    "root",
    "--email",
    "root@example.com",
    "--password-stdin",
]


async def create_superuser(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    *,
    username: str = "root",
    email: str = "root@example.com",
    password: str = PASSWORD,
) -> int:
    """Run the command as from a shell, the password piped in.

    main() calls asyncio.run, which cannot run inside the test's event loop: it runs in a thread.
    """
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{password}\n"))
    argv = ["create-superuser", "--username", username, "--email", email, "--password-stdin"]
    return await asyncio.to_thread(cli.main, argv)


def fresh_sqlite_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an empty SQLite file of the test's own, not the migrated test database."""
    return Settings(
        ENVIRONMENT="test",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}",
        DATA_DIR=tmp_path / "data",
        SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
        **overrides,
    )


async def test_create_superuser_makes_an_administrator_who_can_sign_in_and_list_users(
    client: httpx.AsyncClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exit_code = await create_superuser(monkeypatch, settings, email="Root@Example.COM")

    assert exit_code == 0
    assert "Created superuser 'root'" in capsys.readouterr().out
    tokens = await login(client, "root", PASSWORD)
    response = await client.get("/api/v1/users/", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    account = body["items"][0]
    assert (account["username"], account["email"]) == ("root", "root@example.com")
    assert (account["is_superuser"], account["is_active"]) == (True, True)


async def test_create_superuser_refuses_a_taken_username(
    app: FastAPI,
    session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await make_user(session, username="root", email="first@example.com")

    exit_code = await create_superuser(monkeypatch, settings, username="ROOT")

    assert exit_code != 0
    assert "username is taken" in capsys.readouterr().err
    assert await usernames(app.state.database) == ["root"]


async def test_create_superuser_refuses_a_taken_email(
    app: FastAPI,
    session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await make_user(session, username="first", email="root@example.com")

    exit_code = await create_superuser(monkeypatch, settings, email="ROOT@example.com")

    assert exit_code != 0
    assert "email address is already registered" in capsys.readouterr().err
    assert await usernames(app.state.database) == ["first"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        pytest.param({"email": "not-an-email"}, "email", id="email-no-at"),
        pytest.param({"email": "root@localhost"}, "email", id="email-no-dot"),
        pytest.param({"username": "r"}, "username", id="username-too-short"),
        pytest.param({"password": "S3cr#t7"}, "password", id="password-too-short"),
    ],
)
async def test_create_superuser_refuses_invalid_input_without_echoing_the_password(
    app: FastAPI,
    session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: dict[str, str],
    field: str,
) -> None:
    exit_code = await create_superuser(monkeypatch, settings, **arguments)

    assert exit_code != 0
    output = capsys.readouterr()
    assert output.err.startswith("Not created:")
    assert field in output.err
    assert arguments.get("password", PASSWORD) not in output.out + output.err
    assert await usernames(app.state.database) == []


def test_create_superuser_refuses_an_unmigrated_database_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = fresh_sqlite_settings(tmp_path, AUTO_MIGRATE=False)
    monkeypatch.setattr(cli, "get_settings", lambda: empty)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))

    exit_code = cli.main(CREATE_ROOT)

    assert exit_code != 0
    output = capsys.readouterr()
    assert output.err.startswith("Not created:")
    assert "alembic upgrade head" in output.err


def test_create_superuser_reports_an_unreachable_database_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A folder where the database file should be: SQLite cannot open it.
    unreachable = fresh_sqlite_settings(tmp_path, AUTO_MIGRATE=False).model_copy(
        update={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}"}
    )
    monkeypatch.setattr(cli, "get_settings", lambda: unreachable)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    threads_before = set(threading.enumerate())

    exit_code = cli.main(CREATE_ROOT)

    assert exit_code == 1
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.startswith("Not created: the database is unavailable")
    assert "Traceback" not in output.err
    # The failed connection's worker thread has stopped before the event loop closed: one still
    # running would report into a closed loop, and print a traceback after the message.
    assert set(threading.enumerate()) <= threads_before


def test_create_superuser_migrates_an_empty_sqlite_database_outside_any_event_loop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fresh = fresh_sqlite_settings(tmp_path)
    assert fresh.auto_migrate
    monkeypatch.setattr(cli, "get_settings", lambda: fresh)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))

    exit_code = cli.main(CREATE_ROOT)

    assert exit_code == 0
    assert "Created superuser 'root'" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "fresh.db") as connection:
        rows = connection.execute("SELECT username, is_superuser FROM users").fetchall()
    assert rows == [("root", 1)]


def test_create_superuser_stops_when_the_typed_passwords_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(["first passphrase", "second passphrase"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))

    with pytest.raises(SystemExit, match="do not match"):
        cli.main(["create-superuser", "--username", "root", "--email", "root@example.com"])
