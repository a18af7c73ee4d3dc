"""API surfaces: the native /api/v1 and, later, others (Conduit under /api) over the same services.

A surface is a path prefix with its own wire conventions: how an error looks and how it is
documented, and which words may precede the access token in `Authorization`. Error handling, the
middleware's last-resort 500, token extraction and the OpenAPI rewrite ask one registry which
surface a path belongs to, so none of them hard-codes a format; a surface's own routers document
their errors with its renderer's responses (`problem_responses` on /api/v1).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.core.errors import AppError

OpenAPIResponses = dict[int | str, dict[str, Any]]


class ErrorRenderer(Protocol):
    """How one surface writes errors, and how it describes them in OpenAPI."""

    media_type: str

    def body(self, error: AppError, request_id: str | None) -> dict[str, Any]:
        """The JSON body of `error`."""
        ...

    def openapi_components(self) -> Mapping[str, Any]:
        """The schemas its documented responses refer to, by name."""
        ...

    def openapi_responses(self, *statuses: int) -> OpenAPIResponses:
        """The OpenAPI `responses` entries of these error statuses."""
        ...


@dataclass(frozen=True, slots=True)
class Surface:
    # "" is the root: the surface of every path no other surface claims.
    prefix: str
    renderer: ErrorRenderer
    # The authorization schemes its access tokens may come in (`Authorization: <scheme> <token>`),
    # compared without regard to case; the first is the one a 401's WWW-Authenticate names.
    authorization_schemes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.authorization_schemes:
            raise ValueError("a surface accepts at least one authorization scheme")

    @property
    def authorization_scheme(self) -> str:
        """The scheme it asks for: the one clients are told to use."""
        return self.authorization_schemes[0]

    def accepts_scheme(self, scheme: str) -> bool:
        return scheme.lower() in (accepted.lower() for accepted in self.authorization_schemes)

    def owns(self, path: str) -> bool:
        return not self.prefix or path == self.prefix or path.startswith(f"{self.prefix}/")


class Surfaces:
    """An app's surfaces: the longest prefix that owns a path wins; the default owns the rest."""

    def __init__(self, default: Surface) -> None:
        self.default = default
        self._by_specificity = [default]

    def register(self, surface: Surface) -> None:
        self._by_specificity = sorted(
            [*self._by_specificity, surface], key=lambda known: len(known.prefix), reverse=True
        )

    def __iter__(self) -> Iterator[Surface]:
        return iter(self._by_specificity)

    def for_path(self, path: str) -> Surface:
        for surface in self._by_specificity:
            if surface.owns(path):
                return surface
        return self.default
