"""RFC 8693 OAuth 2.0 Token Exchange: the request's token parameters (§2.1), the token type identifiers (§3) and
the delegation claims ``act`` (§4.1) and ``may_act`` (§4.4). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest

__all__ = [
    "ACCESS_TOKEN",
    "GRANT_TYPE",
    "MAX_ACT_DEPTH",
    "TOKEN_TYPES",
    "ExchangeRequest",
    "act_chain",
    "act_claim",
    "may_act_allows",
    "parse_request",
]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
_TYPE = "urn:ietf:params:oauth:token-type:"
ACCESS_TOKEN = _TYPE + "access_token"
# §3: the token type identifiers the RFC defines. Only access tokens of this server are exchanged here; the others
# are known (and refused as unsupported), anything else is not a token type at all.
TOKEN_TYPES = frozenset(_TYPE + t for t in ("access_token", "refresh_token", "id_token", "saml1", "saml2", "jwt"))
# How many actors a delegation chain may name (RFC 8693 §5 leaves the bound to policy): each exchange adds one, and
# a chain longer than this is more likely a loop between agents than a person's intent.
MAX_ACT_DEPTH = 5


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """The token parameters of an exchange request (§2.1), checked for presence and type."""

    subject_token: str
    actor_token: str | None


def _accepted_type(name: str, value: str) -> None:
    if value not in TOKEN_TYPES:
        raise InvalidRequest(f"{name} is not a token type of RFC 8693 §3")
    if value != ACCESS_TOKEN:
        raise InvalidRequest(f"{name} {value!r} is not supported: only {ACCESS_TOKEN} is exchanged here")


def parse_request(params: Mapping[str, str]) -> ExchangeRequest:
    """§2.1: ``subject_token`` and ``subject_token_type`` are required; ``actor_token_type`` is required when
    ``actor_token`` is sent and must be absent when it is not; ``requested_token_type`` is optional. Anything
    missing, unknown or unsupported is ``invalid_request`` (§2.2.2)."""
    subject, subject_type = params.get("subject_token"), params.get("subject_token_type")
    if subject is None or subject_type is None:
        raise InvalidRequest("subject_token and subject_token_type are required")
    _accepted_type("subject_token_type", subject_type)
    actor, actor_type = params.get("actor_token"), params.get("actor_token_type")
    if (actor is None) != (actor_type is None):
        raise InvalidRequest("actor_token and actor_token_type go together: send both or neither")
    if actor_type is not None:
        _accepted_type("actor_token_type", actor_type)
    requested = params.get("requested_token_type")
    if requested is not None:
        _accepted_type("requested_token_type", requested)
    return ExchangeRequest(subject, actor)


def act_chain(act: Any) -> tuple[str, ...]:
    """The actors an ``act`` claim names, the current one first (§4.1: each prior actor nests inside). Raises
    ``ValueError`` for a claim that is not a chain of objects with a string ``sub``, or longer than
    ``MAX_ACT_DEPTH``."""
    chain: list[str] = []
    while act is not None:
        if not isinstance(act, Mapping) or not isinstance(act.get("sub"), str) or len(chain) >= MAX_ACT_DEPTH:
            raise ValueError("act is not a delegation chain")
        chain.append(act["sub"])
        act = act.get("act")
    return tuple(chain)


def act_claim(chain: tuple[str, ...]) -> dict[str, Any] | None:
    """The ``act`` claim naming ``chain`` (current actor first), or None for no actor. §4.1: only identity claims
    go inside; never ``exp``, ``nbf`` or ``aud``, which are the token's own."""
    claim: dict[str, Any] | None = None
    for sub in reversed(chain):
        claim = {"sub": sub} if claim is None else {"sub": sub, "act": claim}
    return claim


def may_act_allows(may_act: Any, actor: str, issuer: str) -> bool:
    """§4.4: whether the ``may_act`` claim of a subject token lets ``actor`` (a subject of ``issuer``) act for it.
    A claim that names no ``sub`` as a string allows nobody."""
    if not isinstance(may_act, Mapping) or not isinstance(may_act.get("sub"), str):
        return False
    return bool(may_act["sub"] == actor and may_act.get("iss", issuer) == issuer)
