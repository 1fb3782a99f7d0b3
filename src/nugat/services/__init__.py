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


INVALID_KEY = (
    "The specified API key is invalid, has expired, "
    "or does not have permission to access the specified package."
)
"""nuget.org's words for a dead key: the end of every ``KeyRefused`` message."""


class KeyRefused(Forbidden):
    """A push, unlist or relist with a missing, malformed, unknown, expired, regenerated-away, revoked or
    disabled key: 403 as on nuget.org (a 401 makes nuget.exe ask for a user name and password), with
    the precise reason (``detail``) then ``INVALID_KEY`` in the body and in ``X-NuGet-Warning``."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail.rstrip('.')}. {INVALID_KEY}")
        self.detail = detail


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
