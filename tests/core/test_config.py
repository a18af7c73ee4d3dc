import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import SECRET_KEY_FILE_NAME, Settings
from app.core.db import Database
from app.main import create_app
from tests.core.conftest import Serve
from tests.factories import auth_headers, make_user
from tests.helpers import open_session


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings made here see only what each test passes (the suite's conftest sets a few)."""
    for name in ("ENVIRONMENT", "SECRET_KEY", "DATA_DIR", "DATABASE_URL", "AUTO_MIGRATE"):
        monkeypatch.delenv(name, raising=False)


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_production_without_a_secret_key_refuses_to_start_and_names_it() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make_settings(ENVIRONMENT="production")


@pytest.mark.parametrize("secret_key", ["k" * 31, "é" * 15 + "k"])
def test_production_refuses_a_secret_key_shorter_than_32_bytes(secret_key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make_settings(ENVIRONMENT="production", SECRET_KEY=secret_key)


@pytest.mark.parametrize("secret_key", ["k" * 32, "é" * 16])
def test_production_accepts_a_secret_key_of_32_bytes(secret_key: str) -> None:
    settings = make_settings(ENVIRONMENT="production", SECRET_KEY=secret_key)

    kept = settings.with_secret_key().SECRET_KEY
    assert kept == secret_key


def test_production_reads_the_secret_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "too-short")

    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make_settings()


def test_development_without_a_secret_key_generates_one_kept_in_the_data_dir(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    settings = make_settings(ENVIRONMENT="development", DATA_DIR=data_dir)

    first = settings.with_secret_key().SECRET_KEY
    again = make_settings(ENVIRONMENT="development", DATA_DIR=data_dir).with_secret_key()
    second = again.SECRET_KEY

    key_file = data_dir / SECRET_KEY_FILE_NAME
    assert len(first.encode()) >= 32
    assert second == first
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert list(data_dir.iterdir()) == [key_file]


def test_another_data_dir_generates_another_secret_key(tmp_path: Path) -> None:
    one = make_settings(DATA_DIR=tmp_path / "one").with_secret_key().SECRET_KEY
    other = make_settings(DATA_DIR=tmp_path / "other").with_secret_key().SECRET_KEY

    assert one != other


def test_a_given_secret_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = make_settings(SECRET_KEY="given-secret", DATA_DIR=tmp_path / "data")

    assert settings.with_secret_key().SECRET_KEY == "given-secret"
    assert not (tmp_path / "data").exists()


def test_workers_starting_together_agree_on_one_secret_key(tmp_path: Path) -> None:
    settings = make_settings(DATA_DIR=tmp_path / "data")
    workers = 8
    barrier = threading.Barrier(workers)

    def start_worker(_: int) -> str:
        barrier.wait()
        return settings.with_secret_key().SECRET_KEY

    with ThreadPoolExecutor(workers) as pool:
        keys = set(pool.map(start_worker, range(workers)))

    assert len(keys) == 1
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / SECRET_KEY_FILE_NAME]


async def test_app_instances_sharing_a_data_dir_accept_each_others_tokens(
    settings: Settings, tmp_path: Path, serve: Serve
) -> None:
    shared = settings.model_copy(update={"SECRET_KEY": "", "DATA_DIR": tmp_path / "shared"})
    elsewhere = settings.model_copy(update={"SECRET_KEY": "", "DATA_DIR": tmp_path / "elsewhere"})
    first, second, stranger = create_app(shared), create_app(shared), create_app(elsewhere)

    async with serve(first) as first_client:
        database: Database = first.state.database
        async with open_session(database) as session:
            user = await make_user(session, username="ann")
        headers = await auth_headers(first_client, user)
    async with serve(second) as second_client:
        accepted = await second_client.get("/api/v1/users/me", headers=headers)
    async with serve(stranger) as stranger_client:
        refused = await stranger_client.get("/api/v1/users/me", headers=headers)

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["username"] == "ann"
    assert refused.status_code == 401, refused.text


def test_embedded_sqlite_default_lives_in_the_data_dir_and_migrates_on_start(
    tmp_path: Path,
) -> None:
    settings = make_settings(DATABASE_URL="", DATA_DIR=tmp_path / "data")

    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'quill.db'}"
    assert settings.is_sqlite
    assert settings.auto_migrate is True


def test_postgresql_does_not_migrate_on_start_by_default() -> None:
    settings = make_settings(DATABASE_URL="postgresql+asyncpg://quill@db.example/quill")

    assert not settings.is_sqlite
    assert settings.auto_migrate is False


@pytest.mark.parametrize(
    ("database_url", "auto_migrate"),
    [("", False), ("postgresql+asyncpg://quill@db.example/quill", True)],
)
def test_auto_migrate_set_explicitly_wins_over_the_default(
    database_url: str, auto_migrate: bool
) -> None:
    settings = make_settings(DATABASE_URL=database_url, AUTO_MIGRATE=auto_migrate)

    assert settings.auto_migrate is auto_migrate


def test_token_lifetimes_default_to_15_minutes_and_30_days() -> None:
    settings = make_settings()

    assert settings.ACCESS_TOKEN_TTL_SECONDS == 900
    assert settings.REFRESH_TOKEN_TTL_SECONDS == 30 * 24 * 3600
