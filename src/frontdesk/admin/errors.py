"""What an admin operation refuses, each error with the HTTP status and wire ``error`` code the admin API answers
with (``{"error": ..., "error_description": ...}``, the shape of RFC 6749 §5.2) and a description that says what
was wrong in plain words. The command line prints the description."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AdminError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "TooManyAttempts",
    "Unauthenticated",
    "Unavailable",
    "UnknownScopes",
]


class AdminError(Exception):
    status: ClassVar[int] = 400
    default_error: ClassVar[str] = "invalid_request"

    def __init__(self, description: str, *, error: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.error = error or self.default_error

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class Unauthenticated(AdminError):
    """No admin token, or one that is unknown, expired or revoked (RFC 6750 §3.1)."""

    status = 401
    default_error = "invalid_token"


class Forbidden(AdminError):
    """The principal's role does not allow the operation (``principals.OPERATIONS``)."""

    status = 403
    default_error = "insufficient_role"


class NotFound(AdminError):
    status = 404
    default_error = "not_found"


class Conflict(AdminError):
    """The thing exists already, or its state forbids the change (a public client has no secret to rotate)."""

    status = 409
    default_error = "conflict"


class Invalid(AdminError):
    """Input that cannot be accepted; client metadata keeps its RFC 7591 §3.2.2 code (``invalid_redirect_uri``)."""

    status = 422


class UnknownScopes(Invalid):
    """A client would be given scopes nobody defined: every token request it made would fail."""

    def __init__(self, description: str, scopes: tuple[str, ...]) -> None:
        super().__init__(description, error="invalid_client_metadata")
        self.scopes = scopes


class Unavailable(AdminError):
    """What the operation needs is not set up here (no SMTP server for a password reset, no vault)."""

    status = 409
    default_error = "unavailable"


class TooManyAttempts(AdminError):
    """Too many failed admin token attempts from this address: wait ``retry_after`` seconds."""

    status = 429
    default_error = "too_many_attempts"

    def __init__(self, description: str, *, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after
