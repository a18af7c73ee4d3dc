"""What a new password must be beyond its length (the schemas bound that to 8-128 characters):
with PASSWORD_REJECT_COMMON, none of the common passwords listed in common_passwords.txt.

Checked before any hashing: a refused password costs no argon2 run.
"""

from pathlib import Path

from app.core.config import Settings
from app.core.errors import PasswordTooCommon

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


class PasswordPolicy:
    def __init__(self, settings: Settings) -> None:
        self._common = (
            _read_list(COMMON_PASSWORDS_FILE) if settings.PASSWORD_REJECT_COMMON else None
        )

    def check_new(self, password: str, *, field: str) -> None:
        """PasswordTooCommon (422, naming `field`) for a password the policy refuses."""
        if self._common is not None and password.casefold() in self._common:
            raise PasswordTooCommon(field=field)


def _read_list(path: Path) -> frozenset[str]:
    """One password a line; blank lines and lines starting with # are no passwords."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(line.casefold() for line in lines if line and not line.startswith("#"))
