"""The general rate limit (RATE_LIMIT_DEFAULT), before routing: a cached answer is counted too."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import error_response, request_id_of
from app.core.rate_limits import RateLimits, client_address, reported_quotas, tightest
from app.core.raw_headers import encoded, set_headers
from app.core.security import InvalidToken, TokenCodec, TokenType
from app.core.surfaces import Surfaces


class RateLimitMiddleware:
    """Counts every request under `path_prefix` against its client's share of the general limit.

    The client is the user of a valid access token (checked by its signature alone: no database
    is asked before a request is let in), else the address the server reports. Over the limit,
    the request is answered 429 here; every answer under the prefix carries the RateLimit-*
    headers of the tightest limit the request met (a sign-in meets more than this one).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate_limits: RateLimits,
        codec: TokenCodec,
        surfaces: Surfaces,
        path_prefix: str,
    ) -> None:
        self.app = app
        self.limit = rate_limits.general
        self.enabled = rate_limits.enabled
        self.codec = codec
        self.surfaces = surfaces
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled or not self._is_limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        quota = await self.limit.hit(self._client(scope))
        scope_state = scope.setdefault("state", {})
        if quota.refused:
            path = scope["path"]
            response = error_response(
                self.surfaces, path, quota.error(), request_id_of(scope_state)
            )
            await response(scope, receive, send)
            return

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                met = tightest([quota, *reported_quotas(scope_state)])
                set_headers(message, encoded(met.headers()))
            await send(message)

        await self.app(scope, receive, send_with_quota)

    def _is_limited(self, path: str) -> bool:
        return path == self.path_prefix or path.startswith(f"{self.path_prefix}/")

    def _client(self, scope: Scope) -> str:
        token = _presented_token(scope)
        if token is not None:
            try:
                return f"user:{self.codec.decode(token, TokenType.ACCESS).user_id}"
            except InvalidToken:
                pass  # its route answers 401; meanwhile it counts against its address
        return f"address:{client_address(scope)}"


def _presented_token(scope: Scope) -> str | None:
    """The token of the Authorization header, whatever the scheme its surface expects."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            token = value.decode("latin-1").partition(" ")[2].strip()
            return token or None
    return None
