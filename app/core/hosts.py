"""The Host header: checked against ALLOWED_HOSTS, and never written back into a link.

Both are pure ASGI. HostCheckMiddleware answers a host that is not allowed with a 400 problem.
HostFreeLocationMiddleware rewrites a Location that names the request's own Host (the router's
trailing-slash redirect: POST /api/v1/posts -> 307 to http://<Host>/api/v1/posts/, and anything
else built from request.url) into the link app/core/links.py builds.
"""

import re
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import error_response, request_id_of
from app.core.errors import HostNotAllowed
from app.core.links import public_link
from app.core.surfaces import Surfaces

ANY_HOST = "*"
# A host name or an IP literal, and an optional port: nothing else may stand in a Host header.
_HOST_HEADER = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::[0-9]{1,5})?")


def host_of(host_header: str | None) -> str | None:
    """The host a Host header names, lowercase, without a port or a final dot; None if malformed."""
    match = _HOST_HEADER.fullmatch(host_header or "")
    return match["host"].lower().removesuffix(".") if match else None


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether `host` is one of `patterns`: a name, or `*.example.com` for its subdomains."""
    return any(
        host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
        for pattern in patterns
    )


class HostCheckMiddleware:
    """Refuses a request whose Host is missing, malformed, or not in `allowed_hosts`."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str], surfaces: Surfaces) -> None:
        self.app = app
        self.allowed_hosts = [pattern.lower() for pattern in allowed_hosts]
        self.surfaces = surfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or ANY_HOST in self.allowed_hosts:
            await self.app(scope, receive, send)
            return
        host = host_of(Headers(scope=scope).get("host"))
        if host is not None and host_allowed(host, self.allowed_hosts):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope.get("state"))
        response = error_response(self.surfaces, scope["path"], HostNotAllowed(), request_id)
        await response(scope, receive, send)


class HostFreeLocationMiddleware:
    """A Location that points at the request's own Host is rewritten under PUBLIC_BASE_URL, or
    to a path; one already under PUBLIC_BASE_URL, or elsewhere, is left as it is."""

    def __init__(self, app: ASGIApp, *, public_base_url: str) -> None:
        self.app = app
        self.public_base_url = public_base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_host_free(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                location = headers.get("location")
                if location is not None:
                    headers["location"] = self._host_free(location, scope)
            await send(message)

        await self.app(scope, receive, send_host_free)

    def _host_free(self, location: str, scope: Scope) -> str:
        base = self.public_base_url
        if base and (location == base or location.startswith((f"{base}/", f"{base}?"))):
            return location
        # Where the request says it was sent, as Starlette builds request.url: from the Host.
        own = URL(scope=scope)
        parts = urlsplit(location)
        if (parts.scheme.lower(), parts.netloc.lower()) != (own.scheme, own.netloc.lower()):
            return location
        root_path: str = scope.get("root_path", "")
        path = parts.path
        if root_path and (path == root_path or path.startswith(f"{root_path}/")):
            path = path[len(root_path) :]
        link = public_link(path or "/", public_base_url=base, root_path=root_path)
        if link.startswith("//"):
            # Not a path but another host to a browser: keep it a path, as Starlette does.
            link = f"/%2F{link[2:]}"
        return urlunsplit(("", "", link, parts.query, parts.fragment))
