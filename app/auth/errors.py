from app.core.errors import NotAuthenticated


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    default_detail = "Incorrect username or password."


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    default_detail = "The token is invalid, expired, or its login has ended."


class RefreshTokenReused(InvalidToken):
    """A spent refresh token came back: someone holds a copy. The login is ended, and stays so."""

    keeps_changes = True
