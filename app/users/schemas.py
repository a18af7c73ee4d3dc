"""The wire format of users. No model here has a field that could carry a password hash."""

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.core.text import NoNul
from app.models.user import USERNAME_MAX_LENGTH

Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=USERNAME_MAX_LENGTH, pattern=r"^[A-Za-z0-9_.\-]+$"),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(str.lower)]
Bio = Annotated[str, StringConstraints(max_length=2000), NoNul]
ImageUrl = Annotated[str, StringConstraints(max_length=2048), NoNul]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    email: Email
    password: Password


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
    """What anyone may see of a user: no email."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    bio: str | None
    image: str | None
    created_at: datetime


_NOT_NULLABLE = ("username", "email", "password", "current_password")


class UserUpdate(BaseModel):
    """Fields left out stay as they are; bio and image may be set to null to clear them."""

    model_config = ConfigDict(extra="forbid")

    username: Username | None = None
    email: Email | None = None
    bio: Bio | None = None
    image: ImageUrl | None = None
    password: Password | None = None
    current_password: str | None = Field(
        default=None,
        max_length=128,
        description="Required to change the password or the email.",
    )

    @field_validator(*_NOT_NULLABLE, mode="before")
    @classmethod
    def _reject_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value

    @model_validator(mode="after")
    def _require_current_password(self) -> Self:
        if (self.password is not None or self.email is not None) and not self.current_password:
            raise ValueError("current_password is required to change the password or the email")
        return self


class AdminUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_active: bool | None = None
    is_superuser: bool | None = None

    @field_validator("is_active", "is_superuser", mode="before")
    @classmethod
    def _reject_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value
