"""Application services: the operations the CLI, the protocol handlers and the pages share."""

from __future__ import annotations


class ServiceError(Exception):
    """An operation refused, with the HTTP status and the message a user reads."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(ServiceError):
    status = 404


class AuthError(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class TooManyRequests(ServiceError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    status = 503


class InsufficientStorage(ServiceError):
    status = 507
