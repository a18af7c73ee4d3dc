"""The Conduit wire format: envelopes (`{"user": ...}`), camelCase, `bio`/`image` null when unset,
timestamps in milliseconds with `Z`.

Input keeps Quill's limits (the same constants as /api/v1's schemas) in Conduit's words: text it
requires is "can't be blank" when empty or only white space, and says so in the schema as
`minLength: 1`. Unlike /api/v1's, unknown fields are ignored, not refused: RealWorld frontends
send back what they were given (a user's `token`, an article's `slug`), and the contract lets
them.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from app.comments.service import CommentView
from app.conduit.surface import BLANK
from app.core.ids import MAX_ROW_ID, CanonicalDecimal
from app.core.input import (
    EMAIL_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    Omittable,
    check_email_syntax,
)
from app.core.pagination import Page
from app.core.text import NO_NUL, NoNul, NotBlank, TextRule
from app.models import User
from app.models.comment import COMMENT_MAX_LENGTH
from app.models.post import (
    CONTENT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    SLUG_MAX_LENGTH,
    TITLE_MAX_LENGTH,
)
from app.models.tag import TAG_MAX_LENGTH, TAG_PATTERN, TAGS_PER_POST_MAX
from app.models.user import (
    BIO_MAX_LENGTH,
    IMAGE_URL_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
    USERNAME_PATTERN,
)
from app.posts.service import AuthorView, PostChanges, PostView
from app.users.service import ProfileView


def _refuse_blank(value: Any) -> Any:
    # Before the type's own checks: "" is Conduit's "can't be blank", not "too short".
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("blank", BLANK)
    return value


def _refuse_empty(value: Any) -> Any:
    # A password of spaces is a password; only an empty one is blank.
    if value == "":
        raise PydanticCustomError("blank", BLANK)
    return value


def _blank_as_null(value: str) -> str | None:
    # Clients clear a field with "" as often as with null: both leave it unset.
    return value if value.strip() else None


def _millisecond_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


NOT_BLANK = BeforeValidator(_refuse_blank)
EMPTY_REFUSED = BeforeValidator(_refuse_empty)
Timestamp = Annotated[
    datetime,
    PlainSerializer(_millisecond_timestamp, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-12-02T06:25:00.123Z"]}
    ),
]

# The refusal of blank text goes last: a before-validator, it runs first wherever it stands, and
# before it the constraints apply to the text itself.
Username = Annotated[
    str,
    StringConstraints(
        min_length=USERNAME_MIN_LENGTH, max_length=USERNAME_MAX_LENGTH, pattern=USERNAME_PATTERN
    ),
    NOT_BLANK,
]
Email = Annotated[
    str,
    StringConstraints(min_length=1, max_length=EMAIL_MAX_LENGTH),
    Field(json_schema_extra={"format": "email"}),
    AfterValidator(check_email_syntax),
    NOT_BLANK,
]
# Whatever /api/v1 would take to sign in: the account may have been made there.
SignInEmail = Annotated[
    str, StringConstraints(min_length=1, max_length=EMAIL_MAX_LENGTH), NotBlank, NOT_BLANK
]
SignInPassword = Annotated[
    str, StringConstraints(min_length=1, max_length=PASSWORD_MAX_LENGTH), EMPTY_REFUSED
]
NewPassword = Annotated[
    str, StringConstraints(min_length=8, max_length=PASSWORD_MAX_LENGTH), EMPTY_REFUSED
]
Bio = Annotated[
    str,
    StringConstraints(max_length=BIO_MAX_LENGTH),
    NoNul,
    AfterValidator(_blank_as_null),
    Field(description='"" is taken as null.'),
]
ImageUrl = Annotated[
    str,
    StringConstraints(max_length=IMAGE_URL_MAX_LENGTH),
    NoNul,
    AfterValidator(_blank_as_null),
    Field(description='"" is taken as null.'),
]


class ConduitInput(BaseModel):
    """A Conduit request body: no type is coerced, and unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)


# --- Users -------------------------------------------------------------------------------------


class ConduitLoginUser(ConduitInput):
    email: SignInEmail
    password: SignInPassword


class ConduitLoginRequest(ConduitInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"user": {"email": "jake@example.com", "password": "jakejake"}}]
        }
    )

    user: ConduitLoginUser


class ConduitNewUser(ConduitInput):
    username: Username
    email: Email
    password: NewPassword


class ConduitNewUserRequest(ConduitInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user": {
                        "username": "jake",
                        "email": "jake@example.com",
                        "password": "jakejake",
                    }
                }
            ]
        }
    )

    user: ConduitNewUser


class ConduitUserChanges(ConduitInput):
    """Fields left out stay as they are; bio and image may be null (or "") to clear them."""

    email: Omittable[Email] = MISSING
    username: Omittable[Username] = MISSING
    password: Omittable[NewPassword] = MISSING
    bio: Omittable[Bio | None] = MISSING
    image: Omittable[ImageUrl | None] = MISSING


class ConduitUserUpdateRequest(ConduitInput):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user": {"bio": "I like to skateboard"}}]}
    )

    user: ConduitUserChanges


class ConduitUser(BaseModel):
    email: str
    token: str
    username: str
    bio: str | None
    image: str | None


class ConduitUserResponse(BaseModel):
    user: ConduitUser

    @classmethod
    def of(cls, user: User, token: str) -> "ConduitUserResponse":
        return cls(
            user=ConduitUser(
                email=user.email,
                token=token,
                username=user.username,
                bio=user.bio,
                image=user.image,
            )
        )


# --- Profiles, articles, comments, tags --------------------------------------------------------


class ConduitOutput(BaseModel):
    """Conduit's answers are camelCase: `tag_list` is sent as `tagList`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ConduitProfile(ConduitOutput):
    username: str
    bio: str | None
    image: str | None
    following: bool = Field(description="Whether the caller follows them; false when anonymous.")

    @classmethod
    def of(cls, author: AuthorView | ProfileView) -> "ConduitProfile":
        return cls(
            username=author.username, bio=author.bio, image=author.image, following=author.following
        )


class ConduitProfileResponse(ConduitOutput):
    profile: ConduitProfile


class ConduitArticleSummary(ConduitOutput):
    """An article in a list: everything but its body."""

    slug: str
    title: str
    description: str
    tag_list: list[str]
    created_at: Timestamp
    updated_at: Timestamp
    favorited: bool = Field(description="Whether the caller favorited it; false when anonymous.")
    favorites_count: int
    author: ConduitProfile

    @classmethod
    def fields_of(cls, post: PostView) -> dict[str, Any]:
        return {
            "slug": post.slug,
            "title": post.title,
            "description": post.description,
            "tag_list": list(post.tags),
            "created_at": post.created_at,
            "updated_at": post.updated_at,
            "favorited": post.favorited,
            "favorites_count": post.favorites_count,
            "author": ConduitProfile.of(post.author),
        }


class ConduitArticle(ConduitArticleSummary):
    body: str


class ConduitArticleResponse(ConduitOutput):
    article: ConduitArticle

    @classmethod
    def of(cls, post: PostView) -> "ConduitArticleResponse":
        return cls(
            article=ConduitArticle(**ConduitArticleSummary.fields_of(post), body=post.content)
        )


class ConduitArticlesResponse(ConduitOutput):
    articles: list[ConduitArticleSummary]
    articles_count: int = Field(description="How many articles the whole list has.")

    @classmethod
    def of(cls, page: Page[PostView]) -> "ConduitArticlesResponse":
        return cls(
            articles=[
                ConduitArticleSummary(**ConduitArticleSummary.fields_of(post))
                for post in page.items
            ],
            articles_count=page.total,
        )


class ConduitComment(ConduitOutput):
    id: int
    created_at: Timestamp
    updated_at: Timestamp
    body: str
    author: ConduitProfile

    @classmethod
    def of(cls, comment: CommentView) -> "ConduitComment":
        return cls(
            id=comment.id,
            created_at=comment.created_at,
            updated_at=comment.updated_at,
            body=comment.body,
            author=ConduitProfile.of(comment.author),
        )


class ConduitCommentResponse(ConduitOutput):
    comment: ConduitComment


class ConduitCommentsResponse(ConduitOutput):
    comments: list[ConduitComment]


class ConduitTagsResponse(ConduitOutput):
    tags: list[str]


# Text an article requires: "can't be blank" when empty or white space only, no NUL.
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TITLE_MAX_LENGTH),
    NotBlank,
    AfterValidator(str.strip),
    NOT_BLANK,
]
# Required, but any text will do, as /api/v1's: only an empty one is blank. Its pattern says
# "at least one character" itself: a minLength beside a pattern that allows "" makes examples
# slow to generate (most are thrown away).
NOT_EMPTY_NO_NUL = r"^[^\x00]+$"
Description = Annotated[
    str,
    StringConstraints(max_length=DESCRIPTION_MAX_LENGTH),
    TextRule(NOT_EMPTY_NO_NUL, "must not contain the NUL character"),
    EMPTY_REFUSED,
]
ArticleBody = Annotated[
    str, StringConstraints(min_length=1, max_length=CONTENT_MAX_LENGTH), NotBlank, NOT_BLANK
]


def _without_blank_tags(tags: list[str]) -> list[str]:
    # Frontends split what was typed on commas and send what is left, "" included.
    return [tag for tag in tags if tag.strip()]


# No control character (TAG_PATTERN); blank tags are dropped, not refused.
TagName = Annotated[
    str,
    StringConstraints(max_length=TAG_MAX_LENGTH),
    TextRule(TAG_PATTERN, "must contain no control character"),
]
TagList = Annotated[
    list[TagName],
    Field(
        max_length=TAGS_PER_POST_MAX,
        description="In the order they are shown; [] has none. Blank tags are left out.",
    ),
    AfterValidator(_without_blank_tags),
]


class ConduitArticleInput(ConduitInput):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ConduitNewArticle(ConduitArticleInput):
    title: Title
    description: Description
    body: ArticleBody
    tag_list: TagList = Field(default_factory=list)


class ConduitNewArticleRequest(ConduitInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "article": {
                        "title": "How to train your dragon",
                        "description": "Ever wonder how?",
                        "body": "You have to believe",
                        "tagList": ["dragons", "training"],
                    }
                }
            ]
        }
    )

    article: ConduitNewArticle


class ConduitArticleChanges(ConduitArticleInput):
    """Fields left out stay as they are; none may be null. `tagList: []` removes every tag. A
    new title gives the article a new slug."""

    title: Omittable[Title] = MISSING
    description: Omittable[Description] = MISSING
    body: Omittable[ArticleBody] = MISSING
    tag_list: Omittable[TagList] = MISSING

    def changes(self) -> PostChanges:
        def given(value: Any) -> Any:
            return None if value is MISSING else value

        return PostChanges(
            title=given(self.title),
            description=given(self.description),
            content=given(self.body),
            tags=given(self.tag_list),
        )


class ConduitArticleUpdateRequest(ConduitInput):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"article": {"title": "Did you train your dragon?"}}]}
    )

    article: ConduitArticleChanges


class ConduitNewComment(ConduitInput):
    body: Annotated[
        str, StringConstraints(min_length=1, max_length=COMMENT_MAX_LENGTH), NotBlank, NOT_BLANK
    ]


class ConduitNewCommentRequest(ConduitInput):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"comment": {"body": "His name was my name too."}}]}
    )

    comment: ConduitNewComment


# Path and query values: text of any kind names nothing when it names nothing (404, or an empty
# list), but PostgreSQL cannot even compare text with a NUL in it.
SlugPath = Annotated[
    str,
    Path(
        min_length=1, max_length=SLUG_MAX_LENGTH, pattern=NO_NUL, description="The article's slug."
    ),
]
UsernamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=USERNAME_MAX_LENGTH,
        pattern=NO_NUL,
        description="The user's username, in any case.",
    ),
]
TagQuery = Annotated[
    str | None,
    Query(max_length=TAG_MAX_LENGTH, pattern=NO_NUL, description="Only articles with this tag."),
]
AuthorQuery = Annotated[
    str | None,
    Query(
        max_length=USERNAME_MAX_LENGTH,
        pattern=NO_NUL,
        description="Only this user's articles (a username, any case).",
    ),
]
FavoritedQuery = Annotated[
    str | None,
    Query(
        max_length=USERNAME_MAX_LENGTH,
        pattern=NO_NUL,
        description="Only articles this user (a username, any case) favorited.",
    ),
]
CommentIdPath = Annotated[
    int,
    Path(alias="id", ge=1, le=MAX_ROW_ID, description="The comment's id."),
    CanonicalDecimal,
]
