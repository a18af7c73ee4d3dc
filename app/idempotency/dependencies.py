import hashlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth import service as auth_service
from app.auth.dependencies import TokenCodecDep, access_token
from app.core.config import Settings
from app.core.db import SessionDep
from app.idempotency import service as idempotency_service
from app.idempotency.service import Claim, CreatedKind, KeptAnswer
from app.models.idempotency_key import IDEMPOTENCY_KEY_MAX_LENGTH

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# Where the guard leaves its claim for the route (IdempotentRoute).
PENDING_CLAIM_STATE = "idempotency_claim"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[!-~]+$",
        description=(
            "Any unique string (a UUID, say) to make a retry safe: the same key and request "
            "within 24 hours get the first answer again and create nothing (a 409 once what "
            "the first request created has been deleted)."
        ),
    ),
]


class Replay(Exception):
    """The request repeats an earlier one with its key: answer it with the kept answer."""

    def __init__(self, answer: KeptAnswer) -> None:
        super().__init__("replayed")
        self.answer = answer

    def response(self) -> Response:
        headers = {"Idempotent-Replayed": "true"}
        if self.answer.location is not None:
            headers["Location"] = self.answer.location
        return Response(
            self.answer.body,
            status_code=self.answer.status_code,
            media_type=self.answer.content_type,
            headers=headers,
        )


@dataclass(frozen=True, slots=True)
class PendingClaim:
    """A claim waiting for the request's answer, kept in the request's own transaction."""

    session: AsyncSession
    claim: Claim
    ttl_seconds: int

    async def keep(self, response: Response, creates: CreatedKind | None) -> None:
        body = bytes(response.body)
        answer = KeptAnswer(
            status_code=response.status_code,
            content_type=response.media_type or response.headers.get("content-type", ""),
            location=response.headers.get("location"),
            body=body,
            created=(creates, int(json.loads(body)["id"])) if creates else None,
        )
        await idempotency_service.keep(
            self.session, self.claim, answer, ttl_seconds=self.ttl_seconds
        )


async def _fingerprint(request: Request) -> str:
    """What was asked, whatever the white space or key order of its JSON body."""
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.scope["raw_path"], request.url.query.encode()):
        digest.update(part + b"\0")
    digest.update(canonical)
    return digest.hexdigest()


async def guard_idempotency(
    request: Request,
    session: SessionDep,
    codec: TokenCodecDep,
    token: Annotated[str | None, Depends(access_token)],
    key: IdempotencyKeyHeader = None,
) -> None:
    """Runs before the route's own dependencies: a retry is answered before the caller's account
    is locked for the write, and a request still running with the key is a 409 at once.

    Without a token the route's authentication refuses the request; without a key nothing is kept.
    """
    if key is None or token is None:
        return
    authentication = await auth_service.authenticate(session, codec, token)
    outcome = await idempotency_service.claim(
        session,
        user_id=authentication.user.id,
        key=key,
        fingerprint=await _fingerprint(request),
    )
    if isinstance(outcome, KeptAnswer):
        raise Replay(outcome)
    settings: Settings = request.app.state.settings
    request.scope["state"][PENDING_CLAIM_STATE] = PendingClaim(
        session, outcome, settings.IDEMPOTENCY_KEY_TTL_SECONDS
    )


class IdempotentRoute(APIRoute):
    """A route class whose POST operations honour `Idempotency-Key`.

    The guard, their first dependency, answers a retry from the kept answer; once the operation
    has succeeded, its answer is kept with the key in the request's transaction, which commits
    after this (SessionDep's scope): the write and its answer are kept together, or neither is.
    A subclass that `creates` a kind of row links the answer to the row its body names by `id`.
    """

    creates: ClassVar[CreatedKind | None] = None

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" in (kwargs.get("methods") or ()):
            kwargs["dependencies"] = [
                Depends(guard_idempotency),
                *(kwargs.get("dependencies") or []),
            ]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_idempotently(request: Request) -> Response:
            try:
                response = await handle(request)
            except Replay as replay:
                return replay.response()
            pending = request.scope["state"].pop(PENDING_CLAIM_STATE, None)
            if isinstance(pending, PendingClaim) and response.status_code < 400:
                await pending.keep(response, self.creates)
            return response

        return handle_idempotently
