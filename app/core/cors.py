"""CORS for the origins of CORS_ORIGINS: Starlette's middleware (pure ASGI), set up once for Quill.

Quill's tokens are Bearer tokens that a page sends in `Authorization`, never cookies: no origin is
allowed credentials, so "*" allows any page to call the API with a token it holds, and never one
to ride on a browser's cookies. An origin not listed gets no Access-Control-Allow-Origin, and a
preflight it sends is refused with a problem, as every error is.
"""

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware import cors
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.error_handlers import error_response, request_id_of
from app.core.errors import CrossOriginRefused
from app.core.surfaces import Surfaces

# PUT: the Conduit API (/api) updates with it.
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
# What a page may read of an answer, beyond the headers every answer shows it.
EXPOSED_HEADERS = (
    "Location",
    "Retry-After",
    "X-Request-ID",
    "ETag",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)
PREFLIGHT_MAX_AGE_SECONDS = 600


class CORSMiddleware(cors.CORSMiddleware):
    def __init__(self, app: ASGIApp, *, origins: Sequence[str], surfaces: Surfaces) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
        self.surfaces = surfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else Headers()
        preflight = (
            scope.get("method") == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )
        if not preflight:
            await super().__call__(scope, receive, send)
            return
        response = self.preflight_response(request_headers=headers)
        if response.status_code >= 400:
            request_id = request_id_of(scope.get("state"))
            error = CrossOriginRefused(headers=_vary_only(response.headers))
            response = error_response(self.surfaces, scope["path"], error, request_id)
        await response(scope, receive, send)


def _vary_only(headers: Headers) -> dict[str, str]:
    """Of a refused preflight's headers, only what a cache needs: it grants nothing."""
    return {"Vary": headers["vary"]} if "vary" in headers else {}
