from datetime import datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import MISSING, AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.input import InputModel, Omittable
from app.core.text import NOT_BLANK_NO_CONTROL, NoNul, NotBlank, TextRule
from app.models.post import (
    CONTENT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    SLUG_MAX_LENGTH,
    TITLE_MAX_LENGTH,
)
from app.models.tag import TAG_MAX_LENGTH, TAGS_PER_POST_MAX
from app.models.user import USERNAME_MAX_LENGTH, USERNAME_PATTERN
from app.posts.service import PostChanges

# Stored without the white space around it; its length counts as sent, as the schema says.
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TITLE_MAX_LENGTH),
    NotBlank,
    AfterValidator(str.strip),
]
Content = Annotated[str, StringConstraints(min_length=1, max_length=CONTENT_MAX_LENGTH), NotBlank]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX_LENGTH), NoNul]
# Stored stripped; the service drops repeats, keeping the first.
TagName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TAG_MAX_LENGTH),
    TextRule(NOT_BLANK_NO_CONTROL, "must contain more than white space, and no control character"),
]
Tags = Annotated[
    list[TagName],
    Field(max_length=TAGS_PER_POST_MAX, description="In the order they are shown."),
]


class PostCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"title": "Planting garlic", "content": "In October.", "tags": ["garden"]}]
        }
    )

    title: Title
    content: Content
    description: Description = ""
    tags: Tags = Field(default_factory=list)


class PostUpdate(InputModel):
    """Fields left out stay as they are; none may be set to null. `tags: []` removes them all."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"title": "Planting garlic late"}]})

    title: Omittable[Title] = MISSING
    description: Omittable[Description] = MISSING
    content: Omittable[Content] = MISSING
    tags: Omittable[Tags] = MISSING

    def changes(self) -> PostChanges:
        return PostChanges(**self.model_dump(exclude_unset=True))


class AuthorSummary(BaseModel):
    """The author's public profile, and whether the caller follows them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    bio: str | None
    image: str | None
    following: bool


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    title: str
    description: str
    content: str
    tags: list[str]
    author: AuthorSummary
    favorites_count: int
    favorited: bool = Field(description="Whether the caller favorited it; false when anonymous.")
    created_at: datetime
    updated_at: datetime


# What slugs are made of (app/posts/slugs.py); anything else names no post.
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SlugPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=SLUG_MAX_LENGTH,
        pattern=SLUG_PATTERN,
        description="The post's slug, as its `slug` says.",
    ),
]
TagQuery = Annotated[TagName | None, Query(description="Only posts with this tag.")]
FavoritedByQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=USERNAME_MAX_LENGTH,
        pattern=USERNAME_PATTERN,
        description="Only posts this user (a username, any case) favorited.",
    ),
]


class TagList(BaseModel):
    tags: list[str]
