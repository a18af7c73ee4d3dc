"""Request bodies of at most MAX_REQUEST_BODY_BYTES, pure ASGI, before anything reads them.

A body declared larger (Content-Length) is answered 413 at once: the app never runs and not one
byte of the body is read, so a 2 GB upload costs neither its transfer nor an authentication. A
body of no declared length (chunked) is counted as it arrives; once it is over, the app's next
read fails, and whatever the app answers to that is replaced by the 413. Either way the rest of
the body is never read, and the 413 closes the connection.
"""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import error_response, request_id_of
from app.core.errors import PayloadTooLarge
from app.core.surfaces import Surfaces

# A Content-Length of more digits is larger than any limit (and than int() reads: 4300 digits).
_MAX_LENGTH_DIGITS = 20


class BodyTooLarge(Exception):
    """What the app's receive() raises once the body it reads is over the limit."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, surfaces: Surfaces) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.surfaces = surfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        over_limit = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, over_limit
            if over_limit:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    over_limit = True
                    raise BodyTooLarge
            return message

        async def send_unless_over_limit(message: Message) -> None:
            nonlocal response_started
            if over_limit and not response_started:
                return  # the app's answer to a body it could not read: the 413 replaces it
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, send_unless_over_limit)
        except BodyTooLarge:
            if response_started:
                raise
        if over_limit and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(max_body_bytes=self.max_body_bytes)
        # The unread rest of the body must not be taken for the next request on the connection.
        error.headers["Connection"] = "close"
        request_id = request_id_of(scope.get("state"))
        response = error_response(self.surfaces, scope["path"], error, request_id)
        await response(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length sent, if it is a number (the server has refused any other)."""
    value = Headers(scope=scope).get("content-length", "")
    if not (value.isascii() and value.isdigit()):
        return None
    return int(value) if len(value) <= _MAX_LENGTH_DIGITS else 10**_MAX_LENGTH_DIGITS
