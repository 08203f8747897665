"""What the vault answers, as the SDK hands it to tool code (DESIGN §6, "Proxy / SDK"): a person's
:class:`Connection`, the :class:`AuthorizationRequired` answer when the person must connect first, a
:class:`ConnectSession`; and the errors tool code cannot act on (:class:`VaultAPIError`, :class:`VaultUnreachable`).
None of them holds a token or the API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AuthorizationRequired", "ConnectSession", "Connection", "VaultAPIError", "VaultUnreachable"]

Reason = Literal["not_connected", "needs_reauth", "missing_scopes"]


class VaultAPIError(Exception):
    """The vault refused a call (a bad API key, an unknown integration, a malformed request). Carries the wire
    ``error`` code and the vault's description, never the API key."""

    def __init__(self, status: int | None, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}" if status is None else f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class VaultUnreachable(VaultAPIError):
    """The vault could not be reached, or its answer could not be read; worth retrying later."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A person's connection as the vault shows it: status, scopes, expiry; never a token."""

    id: str
    integration: str
    user: str
    status: Literal["active", "needs_reauth", "revoked"]
    scopes: tuple[str, ...]
    metadata: Mapping[str, str]
    expires_at: int | None
    refreshed_at: int | None
    last_used_at: int | None
    last_error: str | None
    created_at: int
    updated_at: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Connection:
        return cls(
            data["id"], data["integration"], data["user"], data["status"], tuple(data["scopes"]),
            dict(data.get("metadata") or {}), data.get("expires_at"), data.get("refreshed_at"),
            data.get("last_used_at"), data.get("last_error"), data["created_at"], data["updated_at"],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuthorizationRequired:
    """The person must connect first: a single-use link from the vault, bound to that person, for the scopes granted
    so far plus those needed now, and a message in plain words for the chat."""

    integration: str
    scopes: tuple[str, ...]
    authorization_url: str
    message: str
    reason: Reason
    connect_session_id: str
    expires_at: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuthorizationRequired:
        return cls(
            data["integration"], tuple(data["scopes"]), data["authorization_url"], data["message"], data["reason"],
            data["connect_session_id"], data["expires_at"],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConnectSession:
    id: str
    connect_url: str
    expires_at: int
