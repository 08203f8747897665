"""frontdesk's vault SDK for a platform's backend (DESIGN §6, "Proxy / SDK"): call a provider's API as one of your
users through the vault's proxy without ever holding their tokens (:mod:`.client`), and declare what a tool call
needs so that it answers "connect first" as a structured result (:mod:`.agent`).

Installed on its own as the ``frontdesk-sdk`` distribution; it depends on httpx only and imports nothing of the
server.
"""

from .agent import (
    Api,
    AsyncApi,
    AsyncToolContext,
    AuthorizationRequiredResult,
    ToolContext,
    authorization_required_result,
    is_authorization_required,
    needs_connection,
)
from .client import AsyncVaultClient, VaultClient
from .models import AuthorizationRequired, Connection, ConnectSession, VaultAPIError, VaultUnreachable
from .secret import Secret

__all__ = [
    "Api",
    "AsyncApi",
    "AsyncToolContext",
    "AsyncVaultClient",
    "AuthorizationRequired",
    "AuthorizationRequiredResult",
    "ConnectSession",
    "Connection",
    "Secret",
    "ToolContext",
    "VaultAPIError",
    "VaultClient",
    "VaultUnreachable",
    "authorization_required_result",
    "is_authorization_required",
    "needs_connection",
]
