"""Rules for text input, each one pattern that both checks the value and documents it.

The pattern is what OpenAPI publishes, so a client (or a fuzzer) that follows the schema is never
refused. Character classes are spelled out: Python's `re`, pydantic's Rust regex and JavaScript
read `\\s` differently, and the published pattern must mean the same thing everywhere.
"""

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

# What str.isspace() calls white space, which is what str.strip() removes; the part of it that is
# not a control character (C0 or DEL).
_PRINTABLE_WHITE_SPACE = r" \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WHITE_SPACE = rf"\t\n\x0b\x0c\r\x1c-\x1f{_PRINTABLE_WHITE_SPACE}"
_CONTROL = r"\x00-\x1f\x7f"

# PostgreSQL text cannot hold U+0000 (storing it fails as a server error), while SQLite keeps
# it: refusing it as input gives one answer, a 422, on both.
NO_NUL = r"^[^\x00]*$"
# White space, then something else, then anything but NUL: each character has one place to go, so
# a long text that fails is refused in linear time (`[^\x00]*` first would backtrack: quadratic).
NOT_BLANK_NO_NUL = rf"^[{_WHITE_SPACE}]*[^\x00{_WHITE_SPACE}][^\x00]*$"
# The same shape, with no control character anywhere. One pattern, since a schema publishes one:
# two rules on one value would publish only the last, and a client would be refused for the other.
NOT_BLANK_NO_CONTROL = rf"^[{_PRINTABLE_WHITE_SPACE}]*[^{_CONTROL}{_WHITE_SPACE}][^{_CONTROL}]*$"


@dataclass(frozen=True, slots=True)
class TextRule:
    """`Annotated[str, TextRule(pattern, message)]`: refuses text the pattern does not match, with
    a message a person can read, and publishes the pattern in the schema."""

    pattern: str
    message: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        matches = re.compile(self.pattern).search

        def check(value: str) -> str:
            if matches(value) is None:
                raise ValueError(self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


NoNul = TextRule(NO_NUL, "must not contain the NUL character")
NotBlank = TextRule(NOT_BLANK_NO_NUL, "must contain more than white space, and no NUL character")
