"""Domain errors carry their HTTP status and a stable machine-readable code."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    # Set when the failure is itself worth keeping (failed-login counters, audit of a denial).
    commit_anyway = False

    def __init__(
        self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.extra = extra or {}
        self.headers: dict[str, str] = {}

    def keep_writes(self) -> AppError:
        self.commit_anyway = True
        return self


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Gone(AppError):
    status_code = 410
    code = "gone"


class Invalid(AppError):
    """Semantically invalid input that passed schema validation (unknown program, weak password)."""

    status_code = 422
    code = "invalid"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None):
        super().__init__(detail, code=code)
        self.field = field


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after_seconds: int):
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after_seconds))}


class ServiceUnavailable(AppError):
    """The database is briefly out of reach (connection lost, locked, commit failed): retry soon.

    Nothing of the request was kept, so a retry (with the same ``Idempotency-Key``) is safe.
    """

    status_code = 503
    code = "service_unavailable"

    def __init__(
        self,
        detail: str = "The service is briefly unavailable and nothing was saved. "
        "Please try again in a moment.",
        *,
        retry_after_seconds: int = 1,
    ):
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after_seconds))}
