"""Security headers on every response, pure ASGI: errors, 404s, the last-resort 500 and the docs.

API responses are JSON that no browser should render, frame or run: their Content-Security-Policy
allows nothing. A page that needs more (the docs) sends its own policy, built by `page_policy`;
the middleware keeps a policy a response brings and sets every other header regardless.
"""

import base64
import hashlib
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.raw_headers import encoded, has_header, set_headers

API_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# A year; no includeSubDomains, since Quill does not know what else lives under its host name.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"

_HEADERS_OVER_HTTP = encoded(
    {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
)
_HEADERS_OVER_HTTPS = (
    *_HEADERS_OVER_HTTP,
    *encoded({"Strict-Transport-Security": STRICT_TRANSPORT_SECURITY}),
)
_CONTENT_SECURITY_POLICY = b"content-security-policy"
_API_POLICY = (_CONTENT_SECURITY_POLICY, API_CONTENT_SECURITY_POLICY.encode())


def page_policy(
    *, inline_scripts: Iterable[str] = (), inline_styles: bool = False, blob_workers: bool = False
) -> str:
    """The Content-Security-Policy of an HTML page of Quill's own: scripts, styles, images and
    data come from Quill itself (images may be data: URLs, as stylesheets' icons are). An
    inline script runs only if it is one of `inline_scripts`, exactly.

    `inline_styles` allows <style> elements and style attributes, for a page whose script writes
    them as it renders (ReDoc's styled-components do); such a page must show no one's input as
    markup. `blob_workers` lets its script start workers from blob: URLs (ReDoc's search).
    """
    hashes = "".join(f" 'sha256-{_sha256(script)}'" for script in inline_scripts)
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self'{hashes}",
            "style-src 'self' 'unsafe-inline'" if inline_styles else "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            *(["worker-src blob:"] if blob_workers else []),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


class SecurityHeadersMiddleware:
    """Outermost of all, so that every answer, the last-resort 500 included, passes through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        over_https = scope.get("scheme") == "https"

        own = _HEADERS_OVER_HTTPS if over_https else _HEADERS_OVER_HTTP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if has_header(message, _CONTENT_SECURITY_POLICY):
                    set_headers(message, own)
                else:
                    set_headers(message, (*own, _API_POLICY))
            await send(message)

        await self.app(scope, receive, send_with_headers)
