"""How messages leave: .eml files in development, SMTP with TLS, STARTTLS and a login, bounded
by a timeout. Each through the app's dispatcher and, for SMTP, a real server."""

import asyncio
import os
import shutil
import ssl
import stat
import subprocess
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from app.models import OutboxStatus
from tests.conftest import Serve
from tests.helpers import capture_logs
from tests.mail.conftest import database_of, eventually, outbox_row, queue_committed, smtp_settings
from tests.mail.smtp_server import SmtpServer, password_authenticator

SMTP_USER, SMTP_PASSWORD = "quill", "smtp-password-hunter2"


def read_eml(path: Path) -> tuple[list[Path], int, bytes]:
    """What its folder holds, its mode and its content."""
    return list(path.parent.iterdir()), path.stat().st_mode, path.read_bytes()


async def test_without_smtp_the_message_is_a_readable_eml_file_whose_path_is_logged(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)  # the test settings name no SMTP server: the file backend

    with capture_logs() as logs:
        async with serve(app):
            queued = await queue_committed(database_of(app), settings, note="see the link")
            await eventually(
                lambda: outbox_row(database_of(app), queued.id),
                lambda row: row.status is OutboxStatus.SENT,
            )

    [written] = [entry for entry in logs if entry["event"] == "mail.written"]
    path = Path(written["path"])
    folder, mode, content = await asyncio.to_thread(read_eml, path)
    assert path.parent == settings.DATA_DIR / "mail"
    assert folder == [path]
    assert stat.S_IMODE(mode) == 0o600
    message = BytesParser(policy=policy.default).parsebytes(content)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == queued.message_id
    assert message["To"] == "ann@example.com"
    assert message["From"] == settings.MAIL_FROM
    assert message["Subject"] == "Quill test message"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "see the link" in text.get_content()
    assert "<p>see the link</p>" in html.get_content()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is needed for the TLS tests")
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments
        [  # noqa: S607 - the system's openssl, found above
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The server's TLS context; the client trusts its certificate as a CA (SSL_CERT_FILE)."""
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def starttls_server(trusted: ssl.SSLContext) -> Iterator[SmtpServer]:
    """A server that takes nothing before STARTTLS, and nothing without a login."""
    server = SmtpServer(
        tls_context=trusted,
        require_starttls=True,
        auth_required=True,
        authenticator=password_authenticator(SMTP_USER, SMTP_PASSWORD),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def starttls_settings(settings: Settings, server: SmtpServer, password: str) -> Settings:
    return smtp_settings(
        settings,
        server,
        SMTP_STARTTLS=None,  # the default: required
        SMTP_USER=SMTP_USER,
        SMTP_PASSWORD=SecretStr(password),
    )


async def test_mail_goes_over_starttls_with_the_login_of_the_settings(
    settings: Settings, starttls_server: SmtpServer, serve: Serve
) -> None:
    app = create_app(starttls_settings(settings, starttls_server, SMTP_PASSWORD))

    async with serve(app):
        queued = await queue_committed(database_of(app), settings)
        [mail] = await starttls_server.wait_for(1)

    assert mail.message_id == queued.message_id
    assert mail.login == SMTP_USER


async def test_a_refused_login_is_retried_and_its_password_is_never_logged_or_stored(
    settings: Settings, starttls_server: SmtpServer, serve: Serve
) -> None:
    wrong = "wrong-password-hunter3"
    app = create_app(starttls_settings(settings, starttls_server, wrong))

    with capture_logs() as logs:
        async with serve(app):
            queued = await queue_committed(database_of(app), settings)
            row = await eventually(
                lambda: outbox_row(database_of(app), queued.id), lambda row: row.attempts >= 2
            )

    assert row.status is OutboxStatus.PENDING
    assert row.last_error == "SMTPAuthenticationError 535"
    assert starttls_server.received == []
    assert any(entry["event"] == "mail.retry" for entry in logs)
    assert wrong not in repr(logs)
    assert wrong not in repr(app.state.settings)


async def test_mail_goes_over_tls_from_the_first_byte_with_smtp_tls(
    settings: Settings, trusted: ssl.SSLContext, serve: Serve
) -> None:
    server = SmtpServer()
    server.start(implicit_tls=trusted)
    try:
        app = create_app(smtp_settings(settings, server, SMTP_TLS=True, SMTP_STARTTLS=None))
        async with serve(app):
            queued = await queue_committed(database_of(app), settings)
            [mail] = await server.wait_for(1)
    finally:
        server.stop()

    assert mail.message_id == queued.message_id


async def test_by_default_nothing_is_sent_to_a_server_that_offers_no_starttls(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    # Links must not cross the network in clear: STARTTLS is required unless switched off.
    app = create_app(smtp_settings(settings, smtp_server, SMTP_STARTTLS=None))

    async with serve(app):
        queued = await queue_committed(database_of(app), settings)
        row = await eventually(
            lambda: outbox_row(database_of(app), queued.id), lambda row: row.attempts >= 2
        )

    assert row.status is OutboxStatus.PENDING
    assert row.last_error == "SMTPException"
    assert smtp_server.received == []


async def test_a_server_that_hangs_times_out_and_the_retry_keeps_the_message_id(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    smtp_server.behaviour.answering.clear()
    app = create_app(
        smtp_settings(
            settings,
            smtp_server,
            SMTP_TIMEOUT_SECONDS=0.5,
            MAIL_CLAIM_TIMEOUT_SECONDS=1.0,
            MAIL_MAX_ATTEMPTS=100,
        )
    )

    async with serve(app):
        queued = await queue_committed(database_of(app), settings)
        timed_out = await eventually(
            lambda: outbox_row(database_of(app), queued.id), lambda row: row.attempts >= 2
        )
        # The server took the message each time and answered too late: the sender cannot know.
        smtp_server.behaviour.answering.set()
        await eventually(
            lambda: outbox_row(database_of(app), queued.id),
            lambda row: row.status is OutboxStatus.SENT,
        )

    assert timed_out.last_error in {"TimeoutError", "SMTPReadTimeoutError"}
    received = smtp_server.received
    assert len(received) >= 2
    assert {mail.message_id for mail in received} == {queued.message_id}
