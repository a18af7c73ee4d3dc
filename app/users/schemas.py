"""The wire format of users. No model here has a field that could carry a password hash."""

from datetime import datetime
from typing import Annotated, Self

from pydantic import MISSING, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.input import PASSWORD_MAX_LENGTH, EmailAddress, InputModel, NewPassword, Omittable
from app.core.text import NoNul
from app.models.user import (
    BIO_MAX_LENGTH,
    IMAGE_URL_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
    USERNAME_PATTERN,
)

Username = Annotated[
    str,
    StringConstraints(
        min_length=USERNAME_MIN_LENGTH, max_length=USERNAME_MAX_LENGTH, pattern=USERNAME_PATTERN
    ),
]
CurrentPassword = Annotated[
    str,
    StringConstraints(min_length=1, max_length=PASSWORD_MAX_LENGTH),
    Field(description="Required to change the password or the email."),
]
Bio = Annotated[str, StringConstraints(max_length=BIO_MAX_LENGTH), NoNul]
ImageUrl = Annotated[str, StringConstraints(max_length=IMAGE_URL_MAX_LENGTH), NoNul]


class UserCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"username": "ann", "email": "ann@example.com", "password": "a long passphrase"}
            ]
        }
    )

    username: Username
    email: EmailAddress
    password: NewPassword


class UserRead(BaseModel):
    """The account as its owner sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str
    bio: str | None
    image: str | None
    email_verified: bool
    is_superuser: bool
    created_at: datetime


class AdminUserRead(UserRead):
    """The account as an administrator sees it."""

    is_active: bool
    updated_at: datetime


class PublicProfile(BaseModel):
    """What anyone may see of a user (no email), and whether the caller follows them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    bio: str | None
    image: str | None
    created_at: datetime
    following: bool = Field(description="Whether the caller follows them; false when anonymous.")


class UserUpdate(InputModel):
    """Fields left out stay as they are; bio and image may be set to null to clear them."""

    # The schema says it too, so a client that follows it is never refused for it.
    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {"password": ["current_password"], "email": ["current_password"]},
            "examples": [{"bio": "I write about gardens."}],
        }
    )

    username: Omittable[Username] = MISSING
    email: Omittable[EmailAddress] = MISSING
    bio: Omittable[Bio | None] = MISSING
    image: Omittable[ImageUrl | None] = MISSING
    password: Omittable[NewPassword] = MISSING
    current_password: Omittable[CurrentPassword] = MISSING

    @model_validator(mode="after")
    def _require_current_password(self) -> Self:
        changes_secret = self.password is not MISSING or self.email is not MISSING
        if changes_secret and self.current_password is MISSING:
            raise ValueError("current_password is required to change the password or the email")
        return self


class AdminUserUpdate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"is_superuser": True}]})

    is_active: Omittable[bool] = MISSING
    is_superuser: Omittable[bool] = MISSING
