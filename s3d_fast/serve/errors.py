"""Refusals of the server: each is one message for the page and an HTTP status."""

from ..errors import S3DError


class ServeError(S3DError):
    """A request the server refuses; ``status`` is its HTTP status."""

    status = 400

    def __init__(self, message: str, status: int = None):
        super().__init__(message)
        if status is not None:
            self.status = int(status)


class LimitError(ServeError):
    """Over one of the server's limits (upload size, pixels, speech length, sessions)."""

    status = 413


class NotFound(ServeError):
    status = 404
