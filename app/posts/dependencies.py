from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import CurrentUser, OptionalUser
from app.core.db import SessionDep
from app.core.ids import PostIdPath
from app.models import Post
from app.posts import service as posts_service


async def get_existing_post(post_id: PostIdPath, viewer: OptionalUser, session: SessionDep) -> Post:
    """A post the caller may see: 404 for a deactivated author's, except to administrators."""
    return await posts_service.get(session, post_id, viewer=viewer)


async def get_editable_post(post_id: PostIdPath, user: CurrentUser, session: SessionDep) -> Post:
    """401 before anything is looked up, then 404, then 403. The post stays locked until the
    request ends, so a concurrent edit or deletion waits for this one."""
    post = await posts_service.get(session, post_id, viewer=user, for_update=True)
    posts_service.ensure_can_edit(user, post)
    return post


ExistingPost = Annotated[Post, Depends(get_existing_post)]
EditablePost = Annotated[Post, Depends(get_editable_post)]
