from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

from app.core.text import NoNul
from app.models.post import CONTENT_MAX_LENGTH, TITLE_MAX_LENGTH


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than white space")
    return value


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH),
    NoNul,
]
Content = Annotated[
    str,
    StringConstraints(min_length=1, max_length=CONTENT_MAX_LENGTH),
    AfterValidator(_not_blank),
    NoNul,
]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: Content


class PostUpdate(BaseModel):
    """Fields left out stay as they are; neither may be set to null."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    content: Content | None = None

    @field_validator("title", "content", mode="before")
    @classmethod
    def _reject_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value


class AuthorSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    content: str
    author: AuthorSummary
    created_at: datetime
    updated_at: datetime
