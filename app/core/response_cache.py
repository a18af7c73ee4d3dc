"""The response cache and ETags of the hot public reads, in pure ASGI before FastAPI's routing.

A hit costs one lookup: no routing, dependency, database session or serialization. The outer
middleware (request id, access log, metrics, security headers, rate limits) still sees every
request, hits included. Only anonymous GETs are answered from the cache or fill it: every cached
route may answer differently to a caller with credentials (an administrator sees deactivated
users), and a bad token must still get its 401.

Every 200 of a cached route carries a strong ETag (a digest of its body, so the same for every
caller and new with every edit), and `If-None-Match` gets a 304 with no body, hit or not.
"""

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.cache import CachedResponse, CacheStore
from app.core.metrics import ROUTE_TEMPLATE_STATE_KEY
from app.core.redis import RedisUnavailable

# Path parameters of cached routes are row ids unless the route says otherwise, written one way
# only (app/core/ids.py): any other spelling is not a cache key, and goes to the app, which
# refuses it.
ROW_ID = r"[1-9][0-9]{0,9}"
_PARAMETER = re.compile(r"\{(\w+)\}")
# What a 304 repeats of the 200 it stands for (RFC 9110, 15.4.5).
_NOT_MODIFIED_HEADERS = frozenset({b"etag", b"vary", b"cache-control", b"content-location"})
_UNCACHEABLE_DIRECTIVES = ("no-store", "private")


@dataclass(frozen=True)
class CachedRoute:
    """A read whose anonymous answer is cached.

    `depends_on` names the tags whose writes make an answer stale, from the path parameters.
    `query` names the query parameters the answer may vary by; `first_page_only` leaves every
    `offset` but 0 to the database (deep pages are rarely read twice). `parameters` gives the
    pattern of each path parameter that is not a row id (a slug, a username): a path that does
    not match is no cache key.
    """

    template: str
    depends_on: Callable[[Mapping[str, str]], Sequence[str]]
    query: frozenset[str] = frozenset()
    first_page_only: bool = False
    parameters: Mapping[str, str] = field(default_factory=dict, compare=False)
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # split() with a group alternates literal text and parameter names.
        parts = _PARAMETER.split(self.template)
        regex = "".join(
            f"(?P<{part}>{self.parameters.get(part, ROW_ID)})" if index % 2 else re.escape(part)
            for index, part in enumerate(parts)
        )
        object.__setattr__(self, "pattern", re.compile(regex))

    def key_for(self, path: str, query_string: bytes) -> str | None:
        """The cache key of this request, or None when its query is not one the cache keeps."""
        if not query_string:
            return path
        try:
            pairs = parse_qsl(query_string.decode("ascii"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return None
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names) or not set(names) <= self.query:
            return None
        if self.first_page_only and dict(pairs).get("offset", "0") != "0":
            return None
        return f"{path}?{urlencode(sorted(pairs))}"


def entity_tag(body: bytes) -> bytes:
    return b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    # If-None-Match compares weakly: W/"x" matches "x".
    candidates = (candidate.strip() for candidate in if_none_match.split(b","))
    return any(candidate in (b"*", etag) or candidate == b"W/" + etag for candidate in candidates)


class ResponseCacheMiddleware:
    def __init__(
        self, app: ASGIApp, routes: Sequence[CachedRoute], store: CacheStore | None
    ) -> None:
        self.app = app
        self.routes = routes
        self.store = store

    def _route_of(self, path: str) -> tuple[CachedRoute, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found:
                return route, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        matched = self._route_of(scope["path"])
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, parameters = matched
        # The metrics' label for this route: on a hit, the router never runs to name it.
        scope.setdefault("state", {})[ROUTE_TEMPLATE_STATE_KEY] = route.template
        headers = dict(scope["headers"])
        if_none_match = headers.get(b"if-none-match")
        key = None
        if self.store is not None and b"authorization" not in headers:
            key = route.key_for(scope["path"], scope["query_string"])

        tags = route.depends_on(parameters)
        generations = None
        if key is not None and self.store is not None:
            try:
                lookup = await self.store.lookup(key, tags)
            except RedisUnavailable:
                key = None  # the database answers, and nothing is stored
            else:
                if lookup.response is not None:
                    await _replay(lookup.response, if_none_match, send)
                    return
                generations = lookup.generations

        response = await _respond_and_capture(self.app, scope, receive, send, if_none_match)
        if response is None or key is None or generations is None or self.store is None:
            return
        if _may_be_kept(response):
            # Without Redis, the next reader fills it once Redis answers again.
            with suppress(RedisUnavailable):
                await self.store.store(key, generations, response)


def _may_be_kept(response: CachedResponse) -> bool:
    for name, value in response.headers:
        if name == b"set-cookie":
            return False
        if name == b"cache-control" and any(
            directive in value.decode("latin-1").lower() for directive in _UNCACHEABLE_DIRECTIVES
        ):
            return False
    return True


async def _replay(response: CachedResponse, if_none_match: bytes | None, send: Send) -> None:
    etag = dict(response.headers).get(b"etag")
    if if_none_match is not None and etag is not None and _matches(if_none_match, etag):
        await _send_not_modified(response.headers, send)
        return
    # A list: the layers outside (gzip, security headers) edit the headers in place.
    await send(
        {"type": "http.response.start", "status": response.status, "headers": [*response.headers]}
    )
    await send({"type": "http.response.body", "body": response.body})


async def _send_not_modified(headers: Sequence[tuple[bytes, bytes]], send: Send) -> None:
    kept = [(name, value) for name, value in headers if name in _NOT_MODIFIED_HEADERS]
    await send({"type": "http.response.start", "status": 304, "headers": kept})
    await send({"type": "http.response.body", "body": b""})


async def _respond_and_capture(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, if_none_match: bytes | None
) -> CachedResponse | None:
    """Run the app; give a 200 its ETag (or turn it into a 304), and return it as sent.

    Anything but a 200 passes through untouched, and None is returned.
    """
    start: Message | None = None
    chunks: list[bytes] = []
    passing_through = False

    async def capture(message: Message) -> None:
        nonlocal start, passing_through
        if message["type"] == "http.response.start":
            if message["status"] != 200:
                passing_through = True
                await send(message)
            else:
                start = message
            return
        if passing_through or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    if passing_through or start is None:
        return None
    body = b"".join(chunks)
    etag = entity_tag(body)
    headers = (
        *((name, value) for name, value in start.get("headers", ()) if name != b"etag"),
        (b"etag", etag),
    )
    response = CachedResponse(status=200, headers=headers, body=body)
    if if_none_match is not None and _matches(if_none_match, etag):
        await _send_not_modified(headers, send)
    else:
        await send({"type": "http.response.start", "status": 200, "headers": [*headers]})
        await send({"type": "http.response.body", "body": body})
    return response
