"""Conditional requests (RFC 9110, 13.1): strong entity tags and `If-Match`.

A write sent with `If-Match` happens only if the resource is still at a version the client
names, so two clients editing one resource cannot overwrite each other unseen (412 instead).
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

IF_MATCH_DESCRIPTION = (
    "The ETag of the version this edit is based on (from any GET of it): the edit is refused "
    "with 412 if the resource has changed since. `*` matches any version."
)


def strong_entity_tag(version: str) -> str:
    """The ETag header value of a version: `"<version>"`."""
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """What `If-Match` accepts: any version (`*`), or the strong tags it lists."""

    any_version: bool
    versions: frozenset[str]

    def accepts(self, version: str) -> bool:
        return self.any_version or version in self.versions


def parse_if_match(value: str) -> IfMatch:
    """`*`, or a list of entity tags. Weak tags (`W/"..."`) never match: If-Match compares
    strongly; anything else unquoted matches nothing either."""
    candidates = [candidate.strip() for candidate in value.split(",")]
    if "*" in candidates:
        return IfMatch(any_version=True, versions=frozenset())
    versions = frozenset(
        candidate[1:-1]
        for candidate in candidates
        if len(candidate) >= 2 and candidate[0] == candidate[-1] == '"'
    )
    return IfMatch(any_version=False, versions=versions)


async def get_if_match(
    if_match: Annotated[
        str | None, Header(alias="If-Match", max_length=4096, description=IF_MATCH_DESCRIPTION)
    ] = None,
) -> IfMatch | None:
    return None if if_match is None else parse_if_match(if_match)


IfMatchDep = Annotated[IfMatch | None, Depends(get_if_match)]
