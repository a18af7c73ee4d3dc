from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from app.core.input import InputModel
from app.core.text import NotBlank
from app.models.comment import COMMENT_MAX_LENGTH

Body = Annotated[str, StringConstraints(min_length=1, max_length=COMMENT_MAX_LENGTH), NotBlank]


class CommentAuthor(BaseModel):
    """The comment's author's public profile, and whether the caller follows them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    bio: str | None
    image: str | None
    following: bool


class CommentCreate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"body": "Thank you!"}]})

    body: Body


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    post_id: int
    body: str
    author: CommentAuthor
    created_at: datetime
    updated_at: datetime
