"""Text every database can store."""

from pydantic import AfterValidator


def reject_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000 (storing it fails as a server error), while SQLite keeps
    # it: rejecting it as input gives one answer, a 422, on both.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


NoNul = AfterValidator(reject_nul)
