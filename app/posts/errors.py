from app.core.errors import NotFound, PermissionDenied


class PostNotFound(NotFound):
    code = "post_not_found"
    detail = "The post does not exist."


class NotPostAuthor(PermissionDenied):
    code = "not_post_author"
    detail = "Only the author or an administrator may change this post."
