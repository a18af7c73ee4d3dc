"""What every write schema shares: strict types, no unknown fields, fields that may be left out
but not set to null, and the syntax of an email address."""

import re
from typing import Annotated, TypeVar, Union

from pydantic import MISSING, AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

# A field that may be left out, and then stays as it is; null is refused unless T admits it.
# OpenAPI shows it as T, not required, not nullable: exactly what the API accepts.
Omittable = Union[T, MISSING]  # noqa: UP007 - `|` cannot combine a TypeVar with a sentinel here


class InputModel(BaseModel):
    """A request body: unknown fields are refused, and no type is coerced ("yes" is no boolean)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# Long enough for any passphrase, short enough that nobody makes us hash megabytes.
PASSWORD_MAX_LENGTH = 128
NewPassword = Annotated[str, StringConstraints(min_length=8, max_length=PASSWORD_MAX_LENGTH)]

EMAIL_MAX_LENGTH = 320
# Syntax only, as `format: email` promises: a dot-atom local part, and a domain of at least two
# labels. Whether the domain receives mail (or is special-use, like `.test`) is not our business.
_LOCAL_PART = r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_EMAIL = re.compile(rf"(?P<local>{_LOCAL_PART})@(?P<domain>{_LABEL}(?:\.{_LABEL})+)")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_email_syntax(value: str) -> str:
    match = _EMAIL.fullmatch(value)
    if match is None or len(match["local"]) > 64:
        raise ValueError("must be an email address, such as ann@example.com")
    # ASCII letters only: lowering "İ" makes two characters, and the length was checked already.
    return value.translate(_ASCII_LOWER)


# Stored with ASCII letters lowercased, so one address is one account whatever its case.
EmailAddress = Annotated[
    str,
    Field(max_length=EMAIL_MAX_LENGTH, json_schema_extra={"format": "email"}),
    AfterValidator(check_email_syntax),
]
