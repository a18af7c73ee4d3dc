from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.input import EMAIL_MAX_LENGTH, PASSWORD_MAX_LENGTH, InputModel
from app.core.text import NoNul


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
