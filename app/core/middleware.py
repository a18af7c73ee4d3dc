"""Pure ASGI middleware: request id, timing, one access-log line, and the last-resort 500."""

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import error_response
from app.core.errors import InternalError
from app.core.raw_headers import set_headers
from app.core.surfaces import Surfaces

log = structlog.get_logger("quill.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_PROCESS_TIME = b"x-process-time"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:]{1,128}")


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


class RequestContextMiddleware:
    """Outermost middleware of the app.

    It answers an unhandled exception itself, so even a 500 carries the request id: Starlette's
    own catch-all handler runs outside every user middleware and would lose it.
    """

    def __init__(self, app: ASGIApp, surfaces: Surfaces) -> None:
        self.app = app
        self.surfaces = surfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                elapsed = f"{time.perf_counter() - started:.6f}"
                set_headers(
                    message,
                    (
                        (_REQUEST_ID, request_id.encode("latin-1")),
                        (_PROCESS_TIME, elapsed.encode()),
                    ),
                )
            await send(message)

        client = scope.get("client")
        client_address = str(client[0]) if client else None
        with structlog.contextvars.bound_contextvars(
            request_id=request_id, client_address=client_address
        ):
            try:
                await self.app(scope, receive, send_with_context)
            except Exception:
                log.exception("request.failed", method=scope["method"], path=scope["path"])
                if response_started:
                    raise
                response = error_response(self.surfaces, scope["path"], InternalError(), request_id)
                await response(scope, receive, send_with_context)
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
