"""What a cache on the way may keep of an answer: declared per route, sent with its every answer.

A route names what applies in its `dependencies=`:

    @router.get("/me", response_model=UserRead, dependencies=[NO_STORE, VARY_AUTHORIZATION])

NO_STORE: the answer shows what only its caller may see (tokens, an email address), so no cache
keeps it. VARY_AUTHORIZATION: a read whose answer depends on who calls (an administrator sees
deactivated accounts and their posts; anyone else gets a 404), so a cache keeps one answer per
Authorization, and never hands an administrator's to anyone else. Only reads need it: caches
reuse no answer to a POST, PATCH or DELETE.

A route's own dependencies run before every other it has, so the declaration is made before the
route can fail: CacheHeadersMiddleware sends the headers with errors (that 404) as with successes.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# In the request's state (shared by every copy of the scope): header name -> value.
_DECLARED = "cache_headers"


def _declaring(name: str, value: str) -> Callable[[Request], Awaitable[None]]:
    async def declare(request: Request) -> None:
        request.scope.setdefault("state", {}).setdefault(_DECLARED, {})[name] = value

    declare.__name__ = f"declare_{name.lower().replace('-', '_')}"
    return declare


NO_STORE = Depends(_declaring("Cache-Control", "no-store"))
VARY_AUTHORIZATION = Depends(_declaring("Vary", "Authorization"))


class CacheHeadersMiddleware:
    """Sends the headers the request's route declared, whatever the answer's status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_declared(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in state.get(_DECLARED, {}).items():
                    if name == "Vary":
                        headers.add_vary_header(value)
                    else:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_declared)
