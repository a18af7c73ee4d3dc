from app.core.errors import Conflict, NotFound, PermissionDenied


class UserNotFound(NotFound):
    code = "user_not_found"
    default_detail = "The user does not exist."


class UsernameTaken(Conflict):
    code = "username_taken"
    default_detail = "That username is taken."
    default_field = "username"


class EmailTaken(Conflict):
    code = "email_taken"
    default_detail = "That email address is already registered."
    default_field = "email"


class WrongCurrentPassword(PermissionDenied):
    code = "wrong_current_password"
    default_detail = "current_password is not the account's password."
    default_field = "current_password"


class LastAdministrator(Conflict):
    """Nobody could administer Quill any more, nor appoint a new administrator."""

    code = "last_administrator"
    default_detail = "This is the last active administrator: appoint another one first."


class CannotFollowYourself(Conflict):
    code = "cannot_follow_yourself"
    default_detail = "A user cannot follow themselves."
