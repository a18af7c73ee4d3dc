from datetime import datetime
from typing import Annotated

from pydantic import MISSING, AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.core.input import InputModel, Omittable
from app.core.text import NotBlank
from app.models.post import CONTENT_MAX_LENGTH, TITLE_MAX_LENGTH

# Stored without the white space around it; its length counts as sent, as the schema says.
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TITLE_MAX_LENGTH),
    NotBlank,
    AfterValidator(str.strip),
]
Content = Annotated[str, StringConstraints(min_length=1, max_length=CONTENT_MAX_LENGTH), NotBlank]


class PostCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"title": "Planting garlic", "content": "In October."}]}
    )

    title: Title
    content: Content


class PostUpdate(InputModel):
    """Fields left out stay as they are; neither may be set to null."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"title": "Planting garlic late"}]})

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
