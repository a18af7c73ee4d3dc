from app.core.errors import NotAuthenticated


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    detail = "Incorrect username or password."


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    detail = "The token is invalid, expired, or its login has ended."


class RefreshTokenReused(InvalidToken):
    """A spent refresh token came back: someone holds a copy. The login is ended, and stays so."""

    keeps_changes = True
