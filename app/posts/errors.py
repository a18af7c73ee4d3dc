from app.core.errors import AppError, NotFound, PermissionDenied


class PostNotFound(NotFound):
    code = "post_not_found"
    default_detail = "The post does not exist."


class NotPostAuthor(PermissionDenied):
    code = "not_post_author"
    default_detail = "Only the author or an administrator may change this post."


class InvalidTags(AppError):
    """What the schemas refuse, refused again where every surface's input meets the domain."""

    status_code = 422
    code = "invalid_tags"
    default_detail = "Tags must be non-blank, short, without control characters, and few."
    default_field = "tags"
