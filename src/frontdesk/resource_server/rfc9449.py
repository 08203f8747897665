"""DPoP at a resource server (RFC 9449 §7): a token bound to a key (``cnf.jkt``, §6) comes as
``Authorization: DPoP <token>`` with a ``DPoP`` proof from that key, for this request's method and URL, with the
token's hash (``ath``), fresh and never seen before.

The kit imports nothing of the server, so it carries its own copy of the proof checks (the server's are
``frontdesk.protocol.rfc9449``; tests/resource_server/test_dpop.py holds the two to the same verdicts). Replay is
refused within this process by a bounded cache: run one process per resource, or put a shared cache in front.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from .rfc6750 import B64TOKEN, bearer_token
from .tokens import InvalidRequest, InvalidToken, TokenError

__all__ = [
    "DPOP_ALGORITHMS",
    "DpopChallenge",
    "DpopVerifier",
    "InvalidDpopProof",
    "NotBoundToDpop",
    "confirmation",
    "credentials",
    "normalize_htu",
]

DPOP_ALGORITHMS = ("ES256", "EdDSA", "RS256", "PS256")
MAX_JTI = 256
MAX_PROOF = 8192
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
_KEY_FOR_ALG = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"), "RS256": ("RSA", None), "PS256": ("RSA", None)}
_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_REGISTRY = jws.JWSRegistry(algorithms=list(DPOP_ALGORITHMS))
_REGISTRY.max_header_length = 2048  # the key travels in the header (§4.2)


class DpopChallenge:
    """A refusal answered with the ``DPoP`` scheme's challenge (§7.1), which names the algorithms it accepts."""

    algorithms: tuple[str, ...] = DPOP_ALGORITHMS


class InvalidDpopProof(DpopChallenge, TokenError):
    """§7.1: the proof is missing, malformed, stale, replayed, or not from the token's key."""

    error = "invalid_dpop_proof"


class NotBoundToDpop(DpopChallenge, InvalidToken):
    """§7.2: a DPoP-bound token presented as a bearer token (or the other way round): ``invalid_token``."""


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def confirmation(claims: Mapping[str, Any]) -> str | None:
    """The thumbprint a token is bound to (§6.1 ``cnf.jkt``; introspection returns it too, §6.2), or None."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _without_dots(path: str) -> str:
    segments, out = path.split("/"), list[str]()
    for i, segment in enumerate(segments):
        if segment in (".", ".."):
            if segment == ".." and len(out) > 1:
                out.pop()
            if i == len(segments) - 1:
                out.append("")
            continue
        out.append(segment)
    return "/".join(out)


def normalize_htu(url: str) -> str:
    """§4.3 item 9: RFC 3986 §6.2.2-6.2.3 normalisation, without query and fragment; ``ValueError`` if no URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError("not an absolute http(s) URL without userinfo")
    host, port = parts.hostname, parts.port
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _PORTS[scheme]:
        netloc += f":{port}"
    path = _without_dots(_PERCENT.sub(_percent, parts.path or "/"))
    return f"{scheme}://{netloc}{path or '/'}"


def _header(proof: str, algorithms: Collection[str]) -> tuple[str, dict[str, Any]]:
    try:
        header = json.loads(_b64(proof.partition(".")[0]))
    except (ValueError, UnicodeError):
        raise InvalidDpopProof("the DPoP proof is not a JWT") from None
    if not isinstance(header, dict) or str(header.get("typ", "")).lower() != "dpop+jwt":
        raise InvalidDpopProof("the DPoP proof's typ is not dpop+jwt")
    alg, jwk = header.get("alg"), header.get("jwk")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _KEY_FOR_ALG:
        raise InvalidDpopProof("the DPoP proof's alg is not accepted")
    if not isinstance(jwk, dict) or _PRIVATE & set(jwk):
        raise InvalidDpopProof("the DPoP proof needs a public jwk")
    kty, crv = _KEY_FOR_ALG[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise InvalidDpopProof(f"the DPoP proof's jwk is not a key for {alg}")
    return alg, jwk


def _payload(proof: str, alg: str, jwk: dict[str, Any]) -> dict[str, Any]:
    try:
        if alg == "EdDSA":  # by hand: joserfc warns on the name RFC 9864 deprecates, which clients still send
            head, body, signature = proof.split(".")
            Ed25519PublicKey.from_public_bytes(_b64(str(jwk.get("x")))).verify(
                _b64(signature), f"{head}.{body}".encode()
            )
            raw = _b64(body)
        else:
            raw = jws.deserialize_compact(proof, JWKRegistry.import_key(jwk), [alg], registry=_REGISTRY).payload
        claims = json.loads(raw)
    except (JoseError, InvalidSignature, ValueError, TypeError, KeyError, UnicodeError):
        raise InvalidDpopProof("the DPoP proof's signature does not verify") from None
    if not isinstance(claims, dict):
        raise InvalidDpopProof("the DPoP proof's claims are not an object")
    return claims


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    members = _MEMBERS[str(jwk.get("kty"))]
    if any(not isinstance(jwk.get(m), str) for m in members):
        raise InvalidDpopProof("the DPoP proof's jwk is incomplete")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64e(hashlib.sha256(canonical.encode()).digest())


class DpopVerifier:
    """Checks the proof of a request that presents a DPoP-bound token (§7.1; §4.3 items 1-9, 11 and 12).

    ``window``: seconds a proof's ``iat`` may be from this clock; each ``jti`` is remembered that long, per key and
    URL, up to ``max_remembered`` proofs (the oldest, closest to expiry, are forgotten first)."""

    def __init__(
        self,
        *,
        algorithms: Collection[str] = DPOP_ALGORITHMS,
        window: int = 60,
        max_remembered: int = 100_000,
        clock: Callable[[], float] = time.time,
        public_url: str | None = None,
    ) -> None:
        unsupported = [a for a in algorithms if a not in DPOP_ALGORITHMS]
        if unsupported or not algorithms:
            raise ValueError(f"algorithms must be among {DPOP_ALGORITHMS}, not {unsupported}")
        self.algorithms = tuple(algorithms)
        self._window = window
        self._max = max_remembered
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        # Behind a proxy the request's own URL is not the one clients sign (§4.3 item 9): the public origin.
        self._public = public_url.rstrip("/") if public_url else None

    def check(
        self, scheme: str, token: str, claims: Mapping[str, Any], method: str, url: str, proofs: list[str]
    ) -> None:
        """§7.1, §7.2 for a validated token: a bound one comes as ``DPoP`` with its proof, an unbound one never does.
        ``url`` is the request's; with ``public_url`` its path is taken under that origin instead."""
        jkt = confirmation(claims)
        if jkt is None:
            if scheme == "dpop":
                raise NotBoundToDpop("the access token is not DPoP-bound: send it as a bearer token")
            return
        if scheme != "dpop":
            raise NotBoundToDpop("the access token is DPoP-bound: send it with the DPoP scheme and a proof")
        if self._public is not None:
            parts = urlsplit(url)
            url = self._public + parts.path
        self.verify(method, url, token, proofs, jkt)

    def verify(self, method: str, url: str, token: str, proofs: list[str], jkt: str) -> None:
        """Raise :class:`InvalidDpopProof` unless ``proofs`` (the ``DPoP`` header values) hold one good proof for
        ``method`` ``url`` from the key ``jkt``, carrying the hash of ``token``."""
        if len(proofs) != 1:
            raise InvalidDpopProof("send exactly one DPoP proof")
        proof = proofs[0].strip()
        if len(proof) > MAX_PROOF or proof.count(".") != 2 or not proof.isascii():
            raise InvalidDpopProof("the DPoP proof is not a JWT")
        alg, jwk = _header(proof, self.algorithms)
        claims = _payload(proof, alg, jwk)
        jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
            raise InvalidDpopProof("the DPoP proof's jti is missing or too long")
        if htm != method:
            raise InvalidDpopProof("the DPoP proof is for another method")
        try:
            same_url = isinstance(htu, str) and normalize_htu(htu) == normalize_htu(url)
        except ValueError:
            same_url = False
        if not same_url:
            raise InvalidDpopProof("the DPoP proof is for another URL")
        now = self._clock()
        if isinstance(iat, bool) or not isinstance(iat, int | float) or abs(now - iat) > self._window:
            raise InvalidDpopProof("the DPoP proof's iat is missing or outside the acceptance window")
        ath = claims.get("ath")
        expected = _b64e(hashlib.sha256(token.encode()).digest())
        if not isinstance(ath, str) or not hmac.compare_digest(ath, expected):
            raise InvalidDpopProof("the DPoP proof's ath does not match the access token")
        if not hmac.compare_digest(_thumbprint(jwk), jkt):
            raise InvalidDpopProof("the DPoP proof is not from the key the token is bound to")
        self._spend(f"{jkt} {normalize_htu(url)} {jti}", now)

    def _spend(self, key: str, now: float) -> None:
        # §11.1: a proof is accepted once within its window.
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        if key in self._seen:
            raise InvalidDpopProof("the DPoP proof was used already")
        if len(self._seen) >= self._max:
            self._seen.popitem(last=False)
        self._seen[key] = now + 2 * self._window


def credentials(authorization: list[str]) -> tuple[str, str] | None:
    """(scheme, token) of the request's ``Authorization`` values: ``dpop`` for ``DPoP <token>`` (the scheme is
    case-insensitive, §7.1), else ``bearer`` as :func:`~.rfc6750.bearer_token` reads it; None when there is none."""
    if len(authorization) == 1:
        scheme, _, token = authorization[0].strip().partition(" ")
        if scheme.lower() == "dpop":
            if not B64TOKEN.fullmatch(token.strip()):
                raise InvalidRequest("the DPoP access token is malformed")
            return "dpop", token.strip()
    bearer = bearer_token(authorization)
    return None if bearer is None else ("bearer", bearer)
