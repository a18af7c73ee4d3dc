"""What a queued message takes from the settings: its Message-ID and its links."""

from urllib.parse import parse_qs, urlsplit

from app.core.config import Settings
from app.mail.composer import MailComposer

# Not URL-safe on purpose: the link must still carry exactly this.
TOKEN = "a+b/c=d&e f"


def test_links_lead_to_the_frontend_pages_and_carry_exactly_the_token(settings: Settings) -> None:
    composer = MailComposer(
        settings.model_copy(
            update={
                "FRONTEND_URL": "https://quill.example/app/",
                "VERIFY_EMAIL_PATH": "/confirm",
                "RESET_PASSWORD_PATH": "/new-password",
            }
        )
    )

    verify = urlsplit(composer.verify_email_link(TOKEN))
    reset = urlsplit(composer.reset_password_link(TOKEN))

    assert (verify.scheme, verify.netloc, verify.path) == ("https", "quill.example", "/app/confirm")
    assert reset.path == "/app/new-password"
    assert parse_qs(verify.query) == {"token": [TOKEN]}
    assert parse_qs(reset.query) == {"token": [TOKEN]}


def test_the_default_links_are_the_frontend_url_with_verify_email_and_reset_password(
    settings: Settings,
) -> None:
    composer = MailComposer(settings.model_copy(update={"FRONTEND_URL": "https://quill.example"}))

    assert composer.verify_email_link("abc") == "https://quill.example/verify-email?token=abc"
    assert composer.reset_password_link("abc") == "https://quill.example/reset-password?token=abc"


def test_message_ids_are_new_each_time_and_on_the_senders_domain(settings: Settings) -> None:
    composer = MailComposer(settings.model_copy(update={"MAIL_FROM": "Quill <q@mail.example>"}))

    ids = {composer.new_message_id() for _ in range(1000)}

    assert len(ids) == 1000
    assert all(id_.startswith("<") and id_.endswith("@mail.example>") for id_ in ids)
