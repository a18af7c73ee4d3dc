from datetime import datetime
from typing import Annotated

from pydantic import MISSING, AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.core.input import InputModel, Omittable
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


class PostCreate(InputModel):
    title: Title
    content: Content


class PostUpdate(InputModel):
    """Fields left out stay as they are; neither may be set to null."""

    title: Omittable[Title] = MISSING
    content: Omittable[Content] = MISSING


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
