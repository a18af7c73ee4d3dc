"""What a route needs to queue mail: `composer: MailComposerDep`, then `mail_service.queue(...)`."""

from typing import Annotated

from fastapi import Depends, Request

from app.mail.composer import MailComposer


async def get_mail_composer(request: Request) -> MailComposer:
    composer: MailComposer = request.app.state.mail_composer
    return composer


MailComposerDep = Annotated[MailComposer, Depends(get_mail_composer)]
