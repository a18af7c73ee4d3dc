from app.core.errors import NotFound, PermissionDenied


class CommentNotFound(NotFound):
    code = "comment_not_found"
    default_detail = "The comment does not exist."


class NotCommentAuthor(PermissionDenied):
    code = "not_comment_author"
    default_detail = "Only the comment's author or an administrator may delete it."
