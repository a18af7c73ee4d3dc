from app.core.errors import Conflict, NotFound, PermissionDenied


class UserNotFound(NotFound):
    code = "user_not_found"
    detail = "The user does not exist."


class UsernameTaken(Conflict):
    code = "username_taken"
    detail = "That username is taken."


class EmailTaken(Conflict):
    code = "email_taken"
    detail = "That email address is already registered."


class WrongCurrentPassword(PermissionDenied):
    code = "wrong_current_password"
    detail = "current_password is not the account's password."
