"""RFC 8693 token exchange at the token endpoint: an agent trades a person's access token for one that acts for the
person at another resource, with less power, for less time, and naming the agent (issue 14 item 1).

The steps, each a function below:

    parse_request → live_subject → held_by_its_key → actor_of → allowed_by_may_act → delegation_chain
    → live_grant → targets → narrowed_scope → token_details (RFC 9396 §6.1) → mint (+ audit ``token.exchanged``)

- The subject token (§2.1) is an access token of this server standing for a person: signed by our keys as
  ``at+jwt`` (RFC 9068 §4), from this issuer, unexpired, not revoked, its grant standing. It must have been issued
  to the exchanging client or be addressed to a resource that client serves (as introspection tells a client only
  about such tokens, RFC 7662 §4): a client cannot trade a token it was never meant to hold. A DPoP-bound one
  needs a proof of its key (RFC 9449 §6); the new token is bound to the request's proof when it had one.
- The actor is the authenticated client or, with ``actor_token``, the client that token stands for (§2.1, §4.1);
  ``may_act`` in the subject token, when present, must name it (§4.4).
- The targets (``resource``/``audience``, both repeatable; audiences are resource URIs here) are registered
  resources within the client's ``may_exchange_for``, the operator's policy; else ``invalid_target`` (§2.2.2).
- The scope is within the subject token's, the target resources' and the client's registration; else
  ``invalid_scope``. The token expires no later than the subject token, carries no refresh token, and belongs to
  the subject token's grant (its jti names it), so the person revoking that grant ends it at introspection too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError

from ..core import Frontdesk
from ..errors import InvalidRequest, InvalidScope, InvalidTarget
from ..protocol import rfc8693
from ..protocol.forms import Params
from ..protocol.rfc8707 import check_resource, comparable
from ..protocol.scope import parse_scope
from ..storage import audit
from ..storage.clients import ClientRecord, mark_used
from ..storage.db import DB, now, transaction
from ..storage.grants import GrantRow, grant_for
from .authorization_details import token_details, type_names
from .dpop import confirmation
from .introspection import live_access_token
from .resources import ResourceRow, resolve, scopes_beyond_registration
from .tokens import mint_access_token, split_jti

__all__ = ["TOKEN_EXCHANGE", "Subject", "token_exchange"]

TOKEN_EXCHANGE = rfc8693.GRANT_TYPE
# How often an exchange records that a client nobody vetted was used (``grants.USED_EVERY``: housekeeping purges
# such clients once unused); the UPDATE is conditional, so it writes at most once in this period.
_USED_EVERY = 86400
Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subject:
    """A live subject token: its claims, and the grant it was issued from."""

    claims: dict[str, Any]
    grant_id: str

    @property
    def scope(self) -> tuple[str, ...]:
        return tuple(str(self.claims.get("scope", "")).split())

    @property
    def audiences(self) -> tuple[str, ...]:
        aud = self.claims.get("aud")
        return (aud,) if isinstance(aud, str) else tuple(aud or ())

    @property
    def authorization_details(self) -> tuple[dict[str, Any], ...]:
        """RFC 9396 §9.1: the details the subject token carries (for its own audience)."""
        details = self.claims.get("authorization_details")
        return tuple(d for d in details if isinstance(d, dict)) if isinstance(details, list) else ()


def _live_claims(fd: Frontdesk, token: str, which: str) -> dict[str, Any]:
    """The claims of ``token`` when it is a live access token of this server (RFC 9068 §4: ``typ`` ``at+jwt``, so an
    ID token or logout token is no access token); else ``invalid_request`` (RFC 8693 §2.2.2)."""
    live = live_access_token(fd, token)
    if live is not None:
        try:
            typ = fd.keys.verify(token).header.get("typ")  # verified a moment ago: the ring remembers it
        except (JoseError, ValueError, KeyError, TypeError, UnicodeError):
            typ = None
        if typ == "at+jwt":
            return live.claims
    raise InvalidRequest(f"the {which} is not a live access token of this server")


def live_subject(fd: Frontdesk, client: ClientRecord, token: str) -> Subject:
    """§2.1 ``subject_token``: a live access token standing for a person, which ``client`` may hold."""
    claims = _live_claims(fd, token, "subject_token")
    grant_id = split_jti(claims["jti"])
    if grant_id is None:  # a client's own token (client_credentials): nobody to act for
        raise InvalidRequest("the subject_token does not stand for a person")
    subject = Subject(claims, grant_id)
    if claims.get("client_id") != client.client_id and not set(subject.audiences) & set(client.resources):
        raise InvalidRequest("the subject_token was not issued to this client nor addressed to a resource it serves")
    return subject


def held_by_its_key(subject: Subject, jkt: str | None) -> None:
    """RFC 9449 §6: a DPoP-bound subject token is worth something only with its key. Exchanged without a proof of
    that key, a stolen bound token would come out as a bearer token (or bound to the thief's key)."""
    bound = confirmation(subject.claims)
    if bound is not None and bound != jkt:
        raise InvalidRequest("the subject_token is DPoP-bound: send a DPoP proof of its key")


def actor_of(fd: Frontdesk, client: ClientRecord, actor_token: str | None) -> str:
    """§2.1, §4.1: the actor is the client that ``actor_token`` stands for (a client's own token: no person behind
    it), or without one the authenticated client."""
    if actor_token is None:
        return client.client_id
    claims = _live_claims(fd, actor_token, "actor_token")
    if split_jti(claims["jti"]) is not None or claims.get("sub") != claims.get("client_id"):
        raise InvalidRequest("the actor_token does not stand for a client")
    return str(claims["sub"])


def allowed_by_may_act(fd: Frontdesk, subject: Subject, actor: str) -> None:
    """§4.4: a subject token that says who may act for it is honoured; any other actor is refused."""
    if "may_act" in subject.claims and not rfc8693.may_act_allows(subject.claims["may_act"], actor, fd.issuer):
        raise InvalidRequest("the subject_token's may_act does not name this actor")


def delegation_chain(subject: Subject, actor: str) -> tuple[str, ...]:
    """§4.1: the new actor first, then the actors of the subject token, up to ``MAX_ACT_DEPTH``."""
    try:
        prior = rfc8693.act_chain(subject.claims.get("act"))
    except ValueError:
        raise InvalidRequest("the subject_token's act claim is not a delegation chain") from None
    if len(prior) >= rfc8693.MAX_ACT_DEPTH:
        raise InvalidRequest(f"a delegation chain names at most {rfc8693.MAX_ACT_DEPTH} actors")
    return (actor, *prior)


def live_grant(db: DB, subject: Subject) -> GrantRow:
    """The subject token's grant, read again in the exchange's transaction: revoked a moment ago, it issues nothing."""
    grant = grant_for(db, subject.grant_id)
    if grant is None or grant.revoked_at is not None:
        raise InvalidRequest("the subject_token is no longer valid")
    if grant.user_id is None or grant.user_id != subject.claims.get("sub"):
        raise InvalidRequest("the subject_token does not stand for a person")
    return grant


def targets(fd: Frontdesk, db: DB, client: ClientRecord, params: Params) -> tuple[ResourceRow, ...]:
    """§2.1 ``resource`` and ``audience`` (each repeatable; an audience is a resource URI here): registered
    resources (RFC 8707 §2) within the client's ``may_exchange_for``. Without either, the one resource the policy
    names, if it names one."""
    allowed = {comparable(uri) for uri in client.may_exchange_for}
    requested = list(check_resource([*params.getall("resource"), *params.getall("audience")]))
    if not requested:
        if len(client.may_exchange_for) != 1:
            raise InvalidTarget("name the resource the token is for with resource or audience")
        requested = list(client.may_exchange_for)
    resources = resolve(fd, db, requested)
    for resource in resources:
        if comparable(resource.uri) not in allowed:
            raise InvalidTarget("this client may not exchange tokens for the requested resource", detail=resource.uri)
    return resources


def narrowed_scope(
    fd: Frontdesk, client: ClientRecord, subject: Subject, resources: Sequence[ResourceRow], asked: str | None
) -> tuple[str, ...]:
    """RFC 8693 §5 (and RFC 9700 §2.3, least privilege): the scope is within the subject token's, belongs to a
    target resource, and is one the client may hold (registered, or lent by the resource to a client nobody vetted,
    ``resources.scopes_beyond_registration``). Asking for none gets all of the subject's that qualify."""
    held, belonging = set(subject.scope), {s for r in resources for s in r.scope}
    beyond = [s for s in belonging if s not in client.scope]
    may_hold = set(client.scope) | scopes_beyond_registration(fd, client, beyond, resources)
    requested = parse_scope(asked)
    for scope in requested:
        if scope not in held:
            raise InvalidScope(f"scope {scope!r} exceeds the scope of the subject_token")
        if scope not in belonging:
            raise InvalidScope(f"scope {scope!r} does not belong to the requested resource")
        if scope not in may_hold:
            raise InvalidScope(f"the client is not registered for scope {scope!r}")
    granted = requested or tuple(s for s in subject.scope if s in belonging and s in may_hold)
    if not granted:
        raise InvalidScope("nothing of the subject_token's scope belongs to the requested resource")
    return granted


def token_exchange(
    fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, jkt: str | None = None
) -> Response:
    """RFC 8693 §2: exchange a person's access token for a delegated one (§2.2.1: no refresh token), bound to the
    key of the request's DPoP proof when it had one (``jkt``, RFC 9449 §5)."""
    request = rfc8693.parse_request(params)
    subject = live_subject(fd, client, request.subject_token)
    held_by_its_key(subject, jkt)
    actor = actor_of(fd, client, request.actor_token)
    allowed_by_may_act(fd, subject, actor)
    chain = delegation_chain(subject, actor)
    at = now()
    with transaction(fd.engine) as conn:
        grant = live_grant(conn, subject)
        resources = targets(fd, conn, client, params)
        scope = narrowed_scope(fd, client, subject, resources, params.get("scope"))
        # RFC 9396 §6.1: the subject token's details, or fewer of them (invalid_authorization_details otherwise).
        details = token_details(fd, params.get("authorization_details"), subject.authorization_details)
        access = mint_access_token(
            fd,
            client,
            scope,
            resources,
            grant,
            at,
            act=rfc8693.act_claim(chain),
            not_after=subject.claims["exp"],
            authorization_details=details,
            jkt=jkt,
        )
        if not client.vetted:
            mark_used(conn, client.client_id, at, _USED_EVERY)
        audit.record(
            conn,
            "token.exchanged",
            "success",
            client_id=client.client_id,
            user_id=grant.user_id,
            ip=ip,
            grant_type=TOKEN_EXCHANGE,
            grant_id=grant.id,
            actors=list(chain),
            resource=[r.uri for r in resources],
            scope=" ".join(scope),
            authorization_details=type_names(details),
        )
    body: Response = {
        "access_token": access.token,
        "issued_token_type": rfc8693.ACCESS_TOKEN,
        "token_type": "DPoP" if jkt else "Bearer",  # RFC 9449 §5
        "expires_in": access.expires_in,
    }
    if details:
        body["authorization_details"] = list(details)  # RFC 9396 §7
    # §2.2.1: scope is required when it differs from what was asked for.
    if set(scope) != set(parse_scope(params.get("scope"))):
        body["scope"] = " ".join(scope)
    return body
