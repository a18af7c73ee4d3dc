"""The ceiling: a bare ASGI app that answers every request with a tiny JSON body.

Served by the same uvicorn, with the same flags, as Quill: the gap between the two is what
Quill's own code (routing, middleware, database, cache) costs.
"""

from typing import Any

HELLO_BODY = b'{"hello":"world"}'
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(HELLO_BODY)).encode()),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        # uvicorn asks; answering keeps its log free of "ASGI 'lifespan' protocol appears
        # unsupported".
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": HELLO_BODY})
