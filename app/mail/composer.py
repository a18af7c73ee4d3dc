"""What a queued message needs from the settings: its templates, its Message-ID, the links to the
frontend it carries."""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parseaddr
from urllib.parse import urlencode

from app.core.config import Settings
from app.mail.rendering import MailTemplates, RenderedMail, repository_templates


class MailComposer:
    """Made once per app, at start-up."""

    def __init__(self, settings: Settings, templates: MailTemplates | None = None) -> None:
        self._templates = templates or repository_templates()
        _name, sender = parseaddr(settings.MAIL_FROM)
        self._message_id_domain = sender.rpartition("@")[2]
        self._frontend_url = settings.FRONTEND_URL.rstrip("/")
        self._verify_email_path = settings.VERIFY_EMAIL_PATH
        self._reset_password_path = settings.RESET_PASSWORD_PATH

    def render(self, template: str, context: Mapping[str, object]) -> RenderedMail:
        return self._templates.render(template, context)

    def new_message_id(self) -> str:
        """A Message-ID no other message has: the time, for the eye, and 128 random bits."""
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        return f"<{stamp}.{uuid.uuid4().hex}@{self._message_id_domain}>"

    def verify_email_link(self, token: str) -> str:
        return self._frontend_link(self._verify_email_path, token)

    def reset_password_link(self, token: str) -> str:
        return self._frontend_link(self._reset_password_path, token)

    def _frontend_link(self, path: str, token: str) -> str:
        return f"{self._frontend_url}{path}?{urlencode({'token': token})}"
