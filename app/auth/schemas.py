from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.text import NoNul


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096)


class PasswordLoginForm(BaseModel):
    """The OAuth2 password grant. Bounded lengths: nobody makes us hash megabytes."""

    grant_type: Literal["password"] | None = None
    username: Annotated[str, NoNul] = Field(
        min_length=1, max_length=320, description="Username or email."
    )
    password: str = Field(min_length=1, max_length=128)
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None
