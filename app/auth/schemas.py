from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.input import (
    EMAIL_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    EmailAddress,
    InputModel,
    NewPassword,
)
from app.core.text import NoNul

# The token of a link, as its `?token=` carries it. Any text up to this length is taken, and
# one that is no token is a 400 (token_invalid), as an unknown one is.
LinkToken = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="The `token` of the link in the message, exactly as it stands there.",
    ),
]


class TokenPair(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshTokenIn(InputModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class PasswordLoginForm(InputModel):
    """The OAuth2 password grant. Bounded lengths: nobody makes us hash megabytes."""

    grant_type: Literal["password"] = "password"
    username: Annotated[str, NoNul] = Field(
        min_length=1, max_length=EMAIL_MAX_LENGTH, description="Username or email."
    )
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


class EmailVerificationConfirm(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"token": "Xq3ZlW0y5iQ2n8h4Jt7kP1sV6cR9bA0dE3fG5hK7mN2"}]}
    )

    token: LinkToken


class PasswordResetRequest(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ann@example.com"}]})

    email: EmailAddress


class PasswordResetConfirm(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "Xq3ZlW0y5iQ2n8h4Jt7kP1sV6cR9bA0dE3fG5hK7mN2",
                    "new_password": "a brand new passphrase",
                }
            ]
        }
    )

    token: LinkToken
    new_password: NewPassword


class MailRequestAccepted(BaseModel):
    """The answer to a request for a link: the same whatever was, or was not, sent."""

    detail: str


VERIFICATION_ACCEPTED = MailRequestAccepted(
    detail=(
        "A message with a verification link is on its way to the account's address, unless "
        "that address has been sent too many lately."
    )
)
PASSWORD_RESET_ACCEPTED = MailRequestAccepted(
    detail=(
        "If an active account has this address, a message with a reset link is on its way to "
        "it, unless that address has been sent too many lately."
    )
)
