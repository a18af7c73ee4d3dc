"""The mail settings of app/core/config.py: what they default to, and what they refuse."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import MailBackend, Settings
from tests.quill_process import start_up

SECRET_KEY = "a-production-secret-key-0123456789-abcdefghij"
SMTP_PASSWORD = "smtp-password-hunter2"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings made here see only what each test passes (the suite's conftest sets a few)."""
    for name in (
        "ENVIRONMENT",
        "SECRET_KEY",
        "DATA_DIR",
        "DATABASE_URL",
        "AUTO_MIGRATE",
        "MAIL_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def production(**values: Any) -> Settings:
    return make_settings(ENVIRONMENT="production", SECRET_KEY=SECRET_KEY, **values)


def test_without_smtp_host_development_writes_mail_to_files_in_the_data_dir(
    tmp_path: Path,
) -> None:
    settings = make_settings(DATA_DIR=tmp_path / "data")

    assert settings.mail_backend is MailBackend.FILE
    assert settings.mail_file_dir == tmp_path / "data" / "mail"
    assert settings.MAIL_DISPATCHER_IN_APP is True
    assert (settings.MAIL_RETRY_BASE_SECONDS, settings.MAIL_RETRY_MAX_SECONDS) == (2, 600)
    assert settings.MAIL_MAX_ATTEMPTS == 10
    assert settings.MAIL_CLAIM_TIMEOUT_SECONDS <= 60
    assert (settings.VERIFY_EMAIL_PATH, settings.RESET_PASSWORD_PATH) == (
        "/verify-email",
        "/reset-password",
    )


def test_an_smtp_host_makes_smtp_the_backend_with_starttls_required_on_port_587() -> None:
    settings = make_settings(SMTP_HOST="smtp.example.com")

    assert settings.mail_backend is MailBackend.SMTP
    assert (settings.smtp_port, settings.smtp_starttls, settings.SMTP_TLS) == (587, True, False)


def test_smtp_tls_means_port_465_and_no_starttls() -> None:
    settings = make_settings(SMTP_HOST="smtp.example.com", SMTP_TLS=True)

    assert (settings.smtp_port, settings.smtp_starttls) == (465, False)


def test_smtp_tls_and_starttls_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="SMTP_TLS and SMTP_STARTTLS exclude each other"):
        make_settings(SMTP_HOST="smtp.example.com", SMTP_TLS=True, SMTP_STARTTLS=True)


def test_the_smtp_backend_without_an_smtp_host_is_refused() -> None:
    with pytest.raises(ValidationError, match="MAIL_BACKEND=smtp needs SMTP_HOST"):
        make_settings(MAIL_BACKEND="smtp")


def test_a_claim_that_could_end_during_its_send_is_refused() -> None:
    with pytest.raises(ValidationError, match="MAIL_CLAIM_TIMEOUT_SECONDS must be longer"):
        make_settings(SMTP_TIMEOUT_SECONDS=30, MAIL_CLAIM_TIMEOUT_SECONDS=30)


@pytest.mark.parametrize("seconds", [61, 0])
def test_a_claim_timeout_beyond_a_minute_or_of_nothing_is_refused(seconds: int) -> None:
    # A claim left by a killed process must expire within a minute.
    with pytest.raises(ValidationError, match="MAIL_CLAIM_TIMEOUT_SECONDS"):
        make_settings(MAIL_CLAIM_TIMEOUT_SECONDS=seconds, SMTP_TIMEOUT_SECONDS=0.5)


def test_a_retry_cap_below_the_first_retry_is_refused() -> None:
    with pytest.raises(ValidationError, match="MAIL_RETRY_MAX_SECONDS"):
        make_settings(MAIL_RETRY_BASE_SECONDS=10, MAIL_RETRY_MAX_SECONDS=5)


@pytest.mark.parametrize("sender", ["no-reply", "Quill <>", "@example.com", ""])
def test_a_mail_from_that_is_no_address_is_refused(sender: str) -> None:
    with pytest.raises(ValidationError, match="MAIL_FROM"):
        make_settings(MAIL_FROM=sender)


@pytest.mark.parametrize("name", ["VERIFY_EMAIL_PATH", "RESET_PASSWORD_PATH"])
def test_a_link_path_must_start_with_a_slash(name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        make_settings(**{name: "verify-email"})


def test_production_without_smtp_host_refuses_to_start_and_names_it() -> None:
    with pytest.raises(ValidationError, match="SMTP_HOST is not set"):
        production()


def test_production_writes_files_only_when_told_so_explicitly(tmp_path: Path) -> None:
    settings = production(MAIL_BACKEND="file", MAIL_FILE_DIR=tmp_path / "mail")

    assert settings.mail_backend is MailBackend.FILE
    assert settings.mail_file_dir == tmp_path / "mail"


def test_production_over_smtp_needs_a_mail_from_of_its_own() -> None:
    with pytest.raises(ValidationError, match="MAIL_FROM is not set"):
        production(SMTP_HOST="smtp.example.com")

    settings = production(SMTP_HOST="smtp.example.com", MAIL_FROM="Quill <quill@example.com>")
    assert settings.mail_backend is MailBackend.SMTP


def test_settings_never_show_the_smtp_password() -> None:
    settings = make_settings(
        SMTP_HOST="smtp.example.com", SMTP_USER="quill", SMTP_PASSWORD=SMTP_PASSWORD
    )

    for shown in (repr(settings), str(settings), str(settings.model_dump())):
        assert SMTP_PASSWORD not in shown
    assert settings.SMTP_PASSWORD.get_secret_value() == SMTP_PASSWORD


def test_an_invalid_setting_never_shows_the_smtp_password() -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(SMTP_PASSWORD=SMTP_PASSWORD, SMTP_PORT=0)

    for shown in (str(refused.value), repr(refused.value)):
        assert "SMTP_PORT" in shown
        assert SMTP_PASSWORD not in shown


def test_start_up_in_production_without_smtp_host_names_it(tmp_path: Path) -> None:
    # Only what start-up reads: the suite's own settings would change what the error shows.
    environment = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": SECRET_KEY,
        "DATA_DIR": str(tmp_path / "data"),
    }

    started = start_up(tmp_path, environment)

    assert started.returncode != 0
    assert "SMTP_HOST is not set" in started.stderr
    assert SECRET_KEY not in started.stderr + started.stdout
