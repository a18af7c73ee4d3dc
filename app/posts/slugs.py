"""A post's slug: its title's words, in lowercase ASCII, joined by "-": `planting-garlic`.

Letters with accents lose them (é is e); letters with no ASCII form (ß, 日) are dropped, and a
title left with no words at all gives "post". When another post holds the slug already, a random
suffix follows: `planting-garlic-3f9a0c1d`. Uniqueness itself is the database's (uq_posts_slug):
the service tries a candidate and takes the next one when the constraint says it is taken.
"""

import re
import secrets
import unicodedata

from app.models.post import SLUG_MAX_LENGTH

FALLBACK = "post"
# Slugs a path already means: `/api/articles/feed` is the Conduit feed, never an article. A title
# that makes one is treated as if another post held it.
RESERVED = frozenset({"feed"})
_SUFFIX_BYTES = 4
# Room for "-" and the suffix's hex digits.
_BASE_MAX_LENGTH = SLUG_MAX_LENGTH - 1 - 2 * _SUFFIX_BYTES
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def base_of(title: str) -> str:
    """The slug a title makes when no other post holds it."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = _NOT_WORD.sub("-", ascii_title.lower()).strip("-")
    return words[:_BASE_MAX_LENGTH].rstrip("-") or FALLBACK


def is_reserved(slug: str) -> bool:
    return slug in RESERVED


def with_suffix(base: str) -> str:
    """Another candidate for a taken `base`; 32 random bits make a second clash rare."""
    return f"{base}-{secrets.token_hex(_SUFFIX_BYTES)}"
