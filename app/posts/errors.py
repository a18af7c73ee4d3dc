from app.core.errors import NotFound, PermissionDenied


class PostNotFound(NotFound):
    code = "post_not_found"
    default_detail = "The post does not exist."


class NotPostAuthor(PermissionDenied):
    code = "not_post_author"
    default_detail = "Only the author or an administrator may change this post."
