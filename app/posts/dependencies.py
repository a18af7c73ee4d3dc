from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import CurrentUser
from app.core.db import SessionDep
from app.core.ids import PostIdPath
from app.models import Post
from app.posts import service as posts_service


async def get_editable_post(post_id: PostIdPath, user: CurrentUser, session: SessionDep) -> Post:
    """401 before anything is looked up, then 404, then 403. The post stays locked until the
    request ends, so a concurrent edit or deletion waits for this one."""
    return await posts_service.get_editable(session, user, post_id=post_id)


EditablePost = Annotated[Post, Depends(get_editable_post)]
