"""DPoP at this server (RFC 9449): proofs at the token endpoint (§5), server nonces (§8), the replay cache (§11.1),
proofs at this server's protected resources (§7, §9: the vault, ``/mcp``, UserInfo), and the operator's switches
that make a client (§5.2) or a resource require DPoP.

The pure checks are ``protocol.rfc9449``'s; this module adds what needs the store or the server's key: a nonce is
an HMAC over a time step under a key derived from the master key, so any process issues and accepts it and none
keeps state; a proof's ``jti`` is spent in the database (``storage.replay``), so a replay is refused whichever
process it reaches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..core import Frontdesk
from ..errors import InvalidDpopProof, UseDpopNonce, wire_description
from ..protocol.rfc9449 import ALGORITHMS, Proof, check_proof
from ..storage import audit
from ..storage.clients import ClientRecord, replace_dpop_bound
from ..storage.db import now, transaction
from ..storage.replay import spend_dpop_jti
from ..storage.resources import replace_require_dpop
from .introspection import live_access_token
from .resources import ResourceRow, registry_changed_here, shown

__all__ = [
    "ALGORITHMS",
    "Headers",
    "ResourceProofRefused",
    "check_binding",
    "check_userinfo_proof",
    "confirmation",
    "fresh_nonce",
    "require_for_client",
    "require_for_resource",
    "spend_proof",
    "token_proof",
    "verify_resource_proof",
]

_NONCE_LABEL = b"frontdesk dpop nonce"


class Headers(Protocol):
    """A request's headers, each name with all its values (Starlette's ``Headers``)."""

    def getlist(self, key: str) -> list[str]: ...


def _nonce_key(fd: Frontdesk) -> bytes:
    return hmac.new(fd.master.key, _NONCE_LABEL, hashlib.sha256).digest()


def _nonce_at(key: bytes, step: int) -> str:
    mac = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def fresh_nonce(fd: Frontdesk) -> str:
    """§8: the nonce of the current time step; unpredictable without the master key, the same in every process."""
    return _nonce_at(_nonce_key(fd), now() // fd.settings.dpop.nonce_lifetime)


def _check_nonce(fd: Frontdesk, proof: Proof) -> None:
    """§8 (and §9 at a resource): when nonces are required, or the proof carries one, it must be this step's or the
    one before; else ``use_dpop_nonce`` with a fresh one."""
    settings = fd.settings.dpop
    if proof.nonce is None and not settings.require_nonce:
        return
    key = _nonce_key(fd)
    step = now() // settings.nonce_lifetime
    if proof.nonce is not None and any(hmac.compare_digest(proof.nonce, _nonce_at(key, s)) for s in (step, step - 1)):
        return
    error = UseDpopNonce("the DPoP proof must carry the nonce this server issued (DPoP-Nonce)")
    error.nonce = _nonce_at(key, step)
    raise error


def _one_proof(values: Sequence[str]) -> str:
    # §4.3 item 1: exactly one DPoP header, holding one JWT.
    if len(values) != 1:
        raise InvalidDpopProof("send exactly one DPoP header")
    return values[0].strip()


def token_proof(fd: Frontdesk, values: Sequence[str]) -> Proof:
    """The proof of a token request (§4.3, §5) sent in ``values`` (the ``DPoP`` header's values; the caller only
    asks when there is at least one): checked against ``POST`` to this server's public token endpoint URL, and its
    nonce. Pure computation: the replay check is :func:`spend_proof`."""
    proof = check_proof(
        _one_proof(values), method="POST", url=fd.url("/token"), now=now(), window=fd.settings.dpop.proof_window
    )
    _check_nonce(fd, proof)
    return proof


def spend_proof(fd: Frontdesk, proof: Proof) -> None:
    """§11.1: a proof is accepted once. Its ``jti`` is kept per key and URI for as long as its ``iat`` could still
    pass, in the store every process shares. Blocking (one insert)."""
    expires_at = proof.iat + fd.settings.dpop.proof_window + 1
    if not spend_dpop_jti(fd.engine, proof.jkt, proof.htu, proof.jti, expires_at):
        raise InvalidDpopProof("the DPoP proof was used already", detail="jti replay")


def check_binding(client: ClientRecord, grant_type: str, binds: bool, jkt: str | None) -> None:
    """Whether a token request may go on to its grant type: a client registered with ``dpop_bound_access_tokens``
    sends a proof (§5.2), and a proof goes only to a grant type that ``binds`` its tokens to the key (§5), never
    quietly answered with a bearer token."""
    if jkt is None and client.dpop_bound_access_tokens:
        raise InvalidDpopProof("this client's token requests must carry a DPoP proof")
    if jkt is not None and not binds:
        raise InvalidDpopProof(f"the {grant_type} grant does not issue DPoP-bound tokens")


def confirmation(claims: Mapping[str, Any]) -> str | None:
    """The key thumbprint a token is bound to (§6.1 ``cnf.jkt``), or None for a bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


class ResourceProofRefused(Exception):
    """A protected resource of this server refuses the request (§7.1, §7.2, §9): the adapter answers
    ``status`` (401) with :meth:`headers` and :meth:`body`. ``error`` is ``invalid_token``, ``invalid_dpop_proof``
    or ``use_dpop_nonce``."""

    status = 401

    def __init__(self, error: str, description: str, nonce: str | None = None) -> None:
        description = wire_description(description)
        super().__init__(description)
        self.error = error
        self.description = description
        self.nonce = nonce

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

    def headers(self) -> dict[str, str]:
        # §7.1: the DPoP challenge names the algorithms a proof may use (the description has no quote: errors.py).
        challenge = f'DPoP algs="{" ".join(ALGORITHMS)}", error="{self.error}", error_description="{self.description}"'
        out = {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}
        if self.nonce is not None:
            out["DPoP-Nonce"] = self.nonce
        return out


def _presented_token(headers: Headers) -> tuple[str, str]:
    values = headers.getlist("authorization")
    if len(values) != 1:
        raise ResourceProofRefused("invalid_token", "send exactly one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    return scheme.lower(), token.strip()


def verify_resource_proof(
    fd: Frontdesk, request_method: str, request_url: str, headers: Headers, token_claims: Mapping[str, Any]
) -> None:
    """§7.1 at a protected resource of this server, for a request whose access token (``token_claims``, already
    validated) came in ``headers``: a DPoP-bound token must come as ``Authorization: DPoP`` with one proof for this
    method and ``request_url`` (the public URL, built from the issuer), with the token's ``ath``, from the key of
    its ``cnf.jkt``, fresh (§11.1) and with the nonce when required (§9). A bearer token must not come as DPoP, and a
    bound one never as ``Bearer`` (§7.2). Raises :class:`ResourceProofRefused`; blocking (the replay insert)."""
    scheme, token = _presented_token(headers)
    jkt = confirmation(token_claims)
    if jkt is None:
        if scheme == "dpop":
            raise ResourceProofRefused("invalid_token", "the access token is not DPoP-bound: send it as Bearer")
        return
    if scheme != "dpop":
        raise ResourceProofRefused("invalid_token", "the access token is DPoP-bound: send it as DPoP with a proof")
    try:
        proof = check_proof(
            _one_proof(headers.getlist("dpop")),
            method=request_method,
            url=request_url,
            now=now(),
            window=fd.settings.dpop.proof_window,
            access_token=token,
        )
        if not hmac.compare_digest(proof.jkt, jkt):
            raise InvalidDpopProof("the DPoP proof was signed by another key than the token is bound to")
        _check_nonce(fd, proof)
        spend_proof(fd, proof)
    except UseDpopNonce as exc:
        raise ResourceProofRefused(exc.error, exc.description, exc.nonce) from None
    except InvalidDpopProof as exc:
        raise ResourceProofRefused(exc.error, exc.description) from None


def check_userinfo_proof(fd: Frontdesk, method: str, headers: Headers, token: str) -> None:
    """UserInfo is a protected resource of this server (§7): a live DPoP-bound token needs its proof there too. A
    token that is not live is left to UserInfo's own answer. A bearer presentation of a token whose payload names no
    ``cnf`` costs nothing more: removing ``cnf`` from a bound token would break its signature, which UserInfo checks."""
    if not _names_cnf(token) and not any(v.lower().startswith("dpop ") for v in headers.getlist("authorization")):
        return
    live = live_access_token(fd, token)
    if live is not None:
        verify_resource_proof(fd, method, fd.url("/userinfo"), headers, live.claims)


def _names_cnf(token: str) -> bool:
    payload = token.split(".")[1] if token.count(".") == 2 else ""
    try:
        return "cnf" in json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError, UnicodeError):
        return False


def require_for_client(fd: Frontdesk, client_id: str, required: bool) -> ClientRecord | None:
    """Set a client's ``dpop_bound_access_tokens`` (§5.2), audited; None for an unknown client."""
    with transaction(fd.engine) as conn:
        if not replace_dpop_bound(conn, client_id, required):
            return None
        audit.record(conn, "client.updated", "success", client_id=client_id, dpop_bound_access_tokens=required)
    fd.clients.forget(client_id)
    return fd.clients.get(client_id, cached=False)


def require_for_resource(fd: Frontdesk, uri: str, required: bool) -> ResourceRow | None:
    """Set whether only DPoP-bound tokens are minted for a resource (§7), audited; None for an unknown one."""
    with transaction(fd.engine) as conn:
        if not replace_require_dpop(conn, uri, required):
            return None
        audit.record(conn, "resource.updated", "success", resource=uri, require_dpop=required)
    registry_changed_here(fd)
    return shown(fd, uri)
