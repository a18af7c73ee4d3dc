from app.core.errors import AppError, Conflict, NotAuthenticated


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    default_detail = "Incorrect username or password."


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    default_detail = "The token is invalid, expired, or its login has ended."


class RefreshTokenReused(InvalidToken):
    """A spent refresh token came back: someone holds a copy. The login is ended, and stays so."""

    keeps_changes = True


class AccountTokenInvalid(AppError):
    """A link's token that cannot be used: unknown, malformed, spent, voided, for another
    purpose, or of an account that is no longer active. Which of these is not said."""

    code = "token_invalid"
    default_detail = (
        "The token is not valid: it may have been used already, replaced by a newer link, or "
        "mistyped. Ask for a new link."
    )
    default_field = "token"


class AccountTokenExpired(AccountTokenInvalid):
    code = "token_expired"
    default_detail = "The token has expired. Ask for a new link."


class EmailAlreadyVerified(Conflict):
    code = "email_already_verified"
    default_detail = "The account's email address is verified already."
