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
from pydantic_core import PydanticCustomError

from app.conduit.surface import BLANK
from app.core.input import (
    EMAIL_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    Omittable,
    check_email_syntax,
)
from app.core.text import NoNul
from app.models import User
from app.models.user import (
    BIO_MAX_LENGTH,
    IMAGE_URL_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
    USERNAME_PATTERN,
)


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
    str, StringConstraints(min_length=1, max_length=EMAIL_MAX_LENGTH), NoNul, NOT_BLANK
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
