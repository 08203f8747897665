"""The relational schema (SQLAlchemy 2 typed models), one module per noun, all on one ``Base.metadata``.

Timestamps are integer seconds since the epoch, UTC by definition: the same on SQLite and PostgreSQL, cheap to
compare in ``WHERE expires_at > :now`` and free of naive-datetime mistakes. Secrets appear only as digests.

Importing this package registers every table, so ``Base.metadata`` is the whole schema Alembic compares with.
"""

from __future__ import annotations

from .audit import AuditEvent
from .base import Base
from .clients import AuthorizationDetailType, Client, InitialAccessToken, Resource, Scope
from .grants import (
    AuthorizationCode,
    BackchannelRequest,
    DeviceCode,
    Grant,
    RefreshToken,
    RevokedAccessToken,
    UsedJti,
)
from .keys import SigningKey
from .limits import RateLimit, SigninFailure
from .operations import AdminRole, AdminToken, Alert, AlertCursor, AlertTally
from .people import Consent, EmailLink, Passkey, RecoveryCode, TotpSecret, User, WebAuthnChallenge
from .sessions import Interaction, LogoutDelivery, Session, SessionGrant
from .upstream import UpstreamIdentity, UpstreamLogin, UpstreamProvider
from .vault import ApiKey, VaultConnection, VaultConnectSession, VaultIntegration

__all__ = [
    "AdminRole",
    "AdminToken",
    "Alert",
    "AlertCursor",
    "AlertTally",
    "ApiKey",
    "AuditEvent",
    "AuthorizationCode",
    "AuthorizationDetailType",
    "BackchannelRequest",
    "Base",
    "Client",
    "Consent",
    "DeviceCode",
    "EmailLink",
    "Grant",
    "InitialAccessToken",
    "Interaction",
    "LogoutDelivery",
    "Passkey",
    "RateLimit",
    "RecoveryCode",
    "RefreshToken",
    "Resource",
    "RevokedAccessToken",
    "Scope",
    "Session",
    "SessionGrant",
    "SigninFailure",
    "SigningKey",
    "TotpSecret",
    "UpstreamIdentity",
    "UpstreamLogin",
    "UpstreamProvider",
    "UsedJti",
    "User",
    "VaultConnectSession",
    "VaultConnection",
    "VaultIntegration",
    "WebAuthnChallenge",
]
