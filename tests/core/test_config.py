import secrets
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from app.core.config import SECRET_KEY_FILE_NAME, Settings
from app.core.db import Database
from app.main import create_app
from tests.conftest import Serve
from tests.factories import auth_headers, make_user
from tests.helpers import open_session
from tests.quill_process import start_up

# 16 characters of two bytes each: 32 bytes, every character different.
TWO_BYTE_KEY = "ĀāĂăĄąĆćĈĉĊċČčĎď"
# Ten different whitespace characters: variety alone does not make a key.
UNICODE_WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u2000\u2001\u3000"
DATABASE_PASSWORD = "db-password-hunter2"
DATABASE_URL_WITH_PASSWORD = f"postgresql+asyncpg://quill:{DATABASE_PASSWORD}@db.example/quill"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings made here see only what each test passes (the suite's conftest sets a few)."""
    for name in ("ENVIRONMENT", "SECRET_KEY", "DATA_DIR", "DATABASE_URL", "AUTO_MIGRATE"):
        monkeypatch.delenv(name, raising=False)
    # Production refuses to start without SMTP_HOST (tests/core/test_config_mail.py); these tests
    # are about the other settings.
    monkeypatch.setenv("MAIL_BACKEND", "file")


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_production_without_a_secret_key_refuses_to_start_and_names_it() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make_settings(ENVIRONMENT="production")


@pytest.mark.parametrize("secret_key", ["0123456789abcdefghijklmnopqrstu", TWO_BYTE_KEY[:-1] + "k"])
def test_production_refuses_a_secret_key_shorter_than_32_bytes(secret_key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is too short"):
        make_settings(ENVIRONMENT="production", SECRET_KEY=secret_key)


@pytest.mark.parametrize("secret_key", ["0123456789abcdefghijklmnopqrstuv", TWO_BYTE_KEY])
def test_production_accepts_a_varied_secret_key_of_32_bytes(secret_key: str) -> None:
    settings = make_settings(ENVIRONMENT="production", SECRET_KEY=secret_key)

    kept = settings.with_secret_key().SECRET_KEY.get_secret_value()
    assert kept == secret_key


@pytest.mark.parametrize(
    ("secret_key", "problem"),
    [
        pytest.param(" " * 32, "is only whitespace", id="spaces"),
        pytest.param(UNICODE_WHITESPACE * 3, "is only whitespace", id="whitespace"),
        pytest.param("k" * 32, "repeats one character", id="one-character"),
        pytest.param("é" * 16, "repeats one character", id="one-two-byte-character"),
        pytest.param("ab" * 16, "has fewer than 10 distinct characters", id="two-characters"),
        pytest.param("changeme" * 4, "has fewer than 10 distinct characters", id="placeholder"),
        pytest.param(
            "123456789" * 4, "has fewer than 10 distinct characters", id="nine-characters"
        ),
    ],
)
def test_production_refuses_a_secret_key_with_too_little_variety(
    secret_key: str, problem: str
) -> None:
    with pytest.raises(ValidationError, match=f"SECRET_KEY {problem}"):
        make_settings(ENVIRONMENT="production", SECRET_KEY=secret_key)


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: secrets.token_urlsafe(32), id="token_urlsafe-32"),
        pytest.param(lambda: secrets.token_urlsafe(48), id="token_urlsafe-48"),
        pytest.param(lambda: secrets.token_hex(32), id="token_hex-32"),
    ],
)
def test_production_accepts_every_generated_secret_key(make_key: Callable[[], str]) -> None:
    for _ in range(100):
        key = make_key()
        settings = make_settings(ENVIRONMENT="production", SECRET_KEY=key)
        assert settings.SECRET_KEY.get_secret_value() == key


@pytest.mark.parametrize(
    ("secret_key", "part"),
    [
        pytest.param("short-SEKRIT-key", "SEKRIT", id="too-short"),
        pytest.param("SEKRIT" * 6, "SEKRIT", id="too-little-variety"),
        pytest.param("Q" * 40, "QQQQ", id="one-character"),
    ],
)
def test_a_refused_secret_key_never_appears_in_the_error(secret_key: str, part: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(
            ENVIRONMENT="production",
            SECRET_KEY=secret_key,
            DATABASE_URL=DATABASE_URL_WITH_PASSWORD,
        )

    for shown in (str(refused.value), repr(refused.value)):
        assert "SECRET_KEY" in shown
        assert "input_value" not in shown
        assert part not in shown
        assert DATABASE_PASSWORD not in shown


def test_an_invalid_setting_never_shows_the_secret_key_or_the_database_password() -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(
            SECRET_KEY="SEKRIT-0123456789-abcdefghijklmnop",
            DATABASE_URL=DATABASE_URL_WITH_PASSWORD,
            DB_POOL_SIZE=0,
        )

    for shown in (str(refused.value), repr(refused.value)):
        assert "DB_POOL_SIZE" in shown
        assert "SEKRIT" not in shown
        assert DATABASE_PASSWORD not in shown


def test_settings_never_show_the_secret_key_or_the_database_password() -> None:
    secret_key = secrets.token_urlsafe(48)
    settings = make_settings(
        ENVIRONMENT="production", SECRET_KEY=secret_key, DATABASE_URL=DATABASE_URL_WITH_PASSWORD
    )

    for shown in (repr(settings), str(settings)):
        assert secret_key not in shown
        assert DATABASE_PASSWORD not in shown
    for exported in (str(settings.model_dump()), settings.model_dump_json()):
        assert secret_key not in exported
    assert settings.SECRET_KEY.get_secret_value() == secret_key
    assert settings.database_url == DATABASE_URL_WITH_PASSWORD


@pytest.mark.parametrize(
    ("secret_key", "problem"),
    [
        pytest.param("short-SEKRIT-key", "is too short", id="too-short"),
        pytest.param(
            "SEKRIT" * 6, "has fewer than 10 distinct characters", id="too-little-variety"
        ),
    ],
)
def test_start_up_with_a_refused_secret_key_names_it_and_prints_neither_secret(
    tmp_path: Path, secret_key: str, problem: str
) -> None:
    # Only what start-up reads: the suite's own settings would change what the error shows.
    environment = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secret_key,
        "DATABASE_URL": DATABASE_URL_WITH_PASSWORD,
        "DATA_DIR": str(tmp_path / "data"),
    }

    started = start_up(tmp_path, environment)

    assert started.returncode != 0
    assert f"SECRET_KEY {problem}" in started.stderr
    assert "SEKRIT" not in started.stderr + started.stdout
    assert DATABASE_PASSWORD not in started.stderr + started.stdout


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

    first = settings.with_secret_key().SECRET_KEY.get_secret_value()
    again = make_settings(ENVIRONMENT="development", DATA_DIR=data_dir).with_secret_key()
    second = again.SECRET_KEY.get_secret_value()

    key_file = data_dir / SECRET_KEY_FILE_NAME
    assert len(first.encode()) >= 32
    assert second == first
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert list(data_dir.iterdir()) == [key_file]


def test_another_data_dir_generates_another_secret_key(tmp_path: Path) -> None:
    one = make_settings(DATA_DIR=tmp_path / "one").with_secret_key().SECRET_KEY
    other = make_settings(DATA_DIR=tmp_path / "other").with_secret_key().SECRET_KEY

    assert one.get_secret_value() != other.get_secret_value()


def test_a_given_secret_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = make_settings(SECRET_KEY="given-secret", DATA_DIR=tmp_path / "data")

    assert settings.with_secret_key().SECRET_KEY.get_secret_value() == "given-secret"
    assert not (tmp_path / "data").exists()


def test_workers_starting_together_agree_on_one_secret_key(tmp_path: Path) -> None:
    settings = make_settings(DATA_DIR=tmp_path / "data")
    workers = 8
    barrier = threading.Barrier(workers)

    def start_worker(_: int) -> str:
        barrier.wait()
        return settings.with_secret_key().SECRET_KEY.get_secret_value()

    with ThreadPoolExecutor(workers) as pool:
        keys = set(pool.map(start_worker, range(workers)))

    assert len(keys) == 1
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / SECRET_KEY_FILE_NAME]


async def test_app_instances_sharing_a_data_dir_accept_each_others_tokens(
    settings: Settings, tmp_path: Path, serve: Serve
) -> None:
    no_key = SecretStr("")
    shared = settings.model_copy(update={"SECRET_KEY": no_key, "DATA_DIR": tmp_path / "shared"})
    elsewhere = settings.model_copy(
        update={"SECRET_KEY": no_key, "DATA_DIR": tmp_path / "elsewhere"}
    )
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


def test_mailed_links_work_48_hours_and_1_hour_by_default() -> None:
    settings = make_settings()

    assert settings.VERIFY_TOKEN_TTL_SECONDS == 48 * 3600
    assert settings.RESET_TOKEN_TTL_SECONDS == 3600


@pytest.mark.parametrize(
    ("name", "seconds"),
    [("VERIFY_TOKEN_TTL_SECONDS", 3599), ("RESET_TOKEN_TTL_SECONDS", 59)],
)
def test_a_mailed_link_lives_at_least_the_unit_its_message_counts_in(
    name: str, seconds: int
) -> None:
    # The messages say "within N hours" and "within N minutes": never "within 0".
    with pytest.raises(ValidationError, match=name):
        make_settings(**{name: seconds})


def test_list_settings_are_read_from_the_environment_as_commas_or_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", "api.example.com, *.example.org")
    monkeypatch.setenv("CORS_ORIGINS", '["https://app.example.com"]')

    settings = make_settings()

    assert settings.ALLOWED_HOSTS == ["api.example.com", "*.example.org"]
    assert settings.allowed_hosts == ["api.example.com", "*.example.org"]
    assert settings.CORS_ORIGINS == ["https://app.example.com"]


@pytest.mark.parametrize(
    ("origin", "as_browsers_send_it"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("*", "*"),
    ],
)
def test_cors_origins_are_kept_as_browsers_send_them(origin: str, as_browsers_send_it: str) -> None:
    origins = make_settings(CORS_ORIGINS=[origin]).CORS_ORIGINS

    assert origins == [as_browsers_send_it]


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com/",  # a path, which no Origin header has
        "app.example.com",
        "null",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com:99999",
    ],
)
def test_an_origin_no_browser_sends_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        make_settings(CORS_ORIGINS=[origin])


def test_development_lets_the_local_frontend_dev_servers_read_until_origins_are_set() -> None:
    development = make_settings(ENVIRONMENT="development")
    chosen = make_settings(ENVIRONMENT="development", CORS_ORIGINS=["https://app.example.com"])
    none = make_settings(ENVIRONMENT="development", CORS_ORIGINS=[])

    assert {"http://localhost:3000", "http://127.0.0.1:4100", "http://localhost:5173"} <= set(
        development.cors_origins
    )
    assert chosen.cors_origins == ["https://app.example.com"]
    assert none.cors_origins == []


@pytest.mark.parametrize("environment", ["production", "test"])
def test_elsewhere_no_origin_may_read_until_origins_are_set(environment: str) -> None:
    settings = make_settings(
        ENVIRONMENT=environment, SECRET_KEY=secrets.token_urlsafe(48), MAIL_BACKEND="file"
    )

    assert settings.cors_origins == []


def test_any_origin_is_listed_alone() -> None:
    with pytest.raises(ValidationError, match="CORS_ORIGINS: '\\*' allows every origin"):
        make_settings(CORS_ORIGINS=["*", "https://app.example.com"])


@pytest.mark.parametrize(
    "pattern", ["http://api.example.com", "api.example.com:443", "*example.com", "a b"]
)
def test_allowed_hosts_are_host_names_or_wildcards(pattern: str) -> None:
    with pytest.raises(ValidationError, match="is not a host name"):
        make_settings(ALLOWED_HOSTS=[pattern])


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://api.example.com/", "https://api.example.com"),
        ("https://example.com/quill", "https://example.com/quill"),
        ("", ""),
    ],
)
def test_the_public_base_url_is_kept_without_a_final_slash(url: str, kept: str) -> None:
    public_base_url = make_settings(PUBLIC_BASE_URL=url).PUBLIC_BASE_URL

    assert public_base_url == kept


@pytest.mark.parametrize(
    "url", ["api.example.com", "https://api.example.com?x=1", "https://api.example.com/#top"]
)
def test_a_public_base_url_that_is_no_base_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="is not an http\\(s\\) URL"):
        make_settings(PUBLIC_BASE_URL=url)


def test_development_lets_local_frontends_call_until_cors_origins_is_set() -> None:
    development = make_settings(ENVIRONMENT="development")
    listed = make_settings(ENVIRONMENT="development", CORS_ORIGINS=["https://app.example.com"])
    none = make_settings(ENVIRONMENT="development", CORS_ORIGINS=[])
    test = make_settings(ENVIRONMENT="test")

    assert "http://localhost:4200" in development.cors_origins
    assert "http://127.0.0.1:3000" in development.cors_origins
    assert listed.cors_origins == ["https://app.example.com"]
    assert none.cors_origins == []
    assert test.cors_origins == []
