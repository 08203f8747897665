"""Rich Authorization Requests (RFC 9396): the ``authorization_details`` parameter judged against the operator's
types (``authorization_detail_types``), described in plain words for the person, narrowed by token requests and
filtered for a token's audience.

Every endpoint that takes the parameter — ``/authorize``, ``/token``, ``/bc-authorize``, token exchange — parses it
with ``requested_details``; every page that asks a person shows ``describe_details``; a token request that names
details is held to the grant's with ``narrowed`` (``token_details``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from jsonschema.exceptions import ValidationError, best_match
from referencing.exceptions import Unresolvable

from ..core import Frontdesk
from ..errors import InvalidAuthorizationDetails
from ..protocol.rfc8707 import comparable
from .authorization_detail_types import TEMPLATE_FIELD, DetailType, detail_types

__all__ = [
    "COMMON_ARRAYS",
    "MAX_BYTES",
    "MAX_DETAILS",
    "describe_details",
    "for_audience",
    "narrowed",
    "requested_details",
    "token_details",
    "type_names",
]

Detail = dict[str, Any]

# RFC 9396 §2.2: the fields common to every type. The arrays combine as a product (every action at every location);
# identifier names one resource.
COMMON_ARRAYS = ("locations", "actions", "datatypes", "privileges")
COMMON = (*COMMON_ARRAYS, "identifier")
# The details ride in every JWT access token of the grant, and the resource-server kit refuses a token longer than
# 8 KiB (resource_server/rfc9068.py): 4 KiB of JSON leaves room for the rest of the token and its signature.
MAX_BYTES = 4096
MAX_DETAILS = 16
MAX_VALUE = 80  # characters of one value on a page
MAX_LINE = 400  # characters of one described detail
MAX_ERROR = 200


def _say(text: str) -> str:
    """An ``error_description`` in RFC 6749 §5.2's character set (%x20-21 / %x23-5B / %x5D-7E): a path or a field
    name from the request may hold anything, so what else it holds is dropped."""
    kept = "".join(c for c in text if " " <= c <= "~" and c not in '"\\')
    return kept[:MAX_ERROR]


def _refuse(description: str) -> NoReturn:
    raise InvalidAuthorizationDetails(_say(description))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 §4: names SHOULD be unique. Two parsers that keep different duplicates would read one request two
    # ways (what the person saw, what the resource server acts on), so a duplicate is refused.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            _refuse(f"authorization_details repeats the field {key}")
        out[key] = value
    return out


def _not_a_number(value: str) -> NoReturn:
    _refuse(f"authorization_details holds {value}, which is not JSON")


def _parsed(raw: str) -> list[Any]:
    if len(raw.encode()) > MAX_BYTES:
        _refuse(f"authorization_details is longer than {MAX_BYTES} bytes")
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_not_a_number)
    except (ValueError, RecursionError):
        _refuse("authorization_details is not JSON")
    try:
        # A lone surrogate ("\\ud800") parses, but no UTF-8 writer (database, token, log) can write it (RFC 8259 §8.2).
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        _refuse("authorization_details holds text that is not Unicode")
    # RFC 9396 §2: a JSON array of objects.
    if not isinstance(value, list) or not value:
        _refuse("authorization_details must be a JSON array of one or more objects")
    if len(value) > MAX_DETAILS:
        _refuse(f"authorization_details holds more than {MAX_DETAILS} objects")
    return value


def _check_common(where: str, detail: Mapping[str, Any]) -> None:
    """RFC 9396 §2 and §2.2: a string ``type``; the common arrays are arrays of strings, ``identifier`` a string."""
    type_ = detail.get("type")
    if not isinstance(type_, str) or not type_:
        _refuse(f"{where} has no type (a string)")
    for name in COMMON_ARRAYS:
        if name in detail:
            value = detail[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                _refuse(f"{where}.{name} must be an array of strings")
    if "identifier" in detail and not isinstance(detail["identifier"], str):
        _refuse(f"{where}.identifier must be a string")


def _path(error: ValidationError) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def _why(error: ValidationError) -> str:
    """What a schema error means, in words that quote no value of the request."""
    rule = error.validator
    if rule == "required" and isinstance(error.instance, dict) and isinstance(error.validator_value, list):
        missing = [r for r in error.validator_value if r not in error.instance]
        return f"is missing the field {missing[0] if missing else '?'}"
    if rule == "type":
        return f"must be of type {error.validator_value}"
    if rule in ("additionalProperties", "unevaluatedProperties"):
        return "has a field the type does not define"
    if rule in ("enum", "const"):
        return "has a value the type does not allow"
    return f"does not satisfy the type's rule {rule}"


def _check_type(where: str, detail: Detail, known: DetailType) -> None:
    """RFC 9396 §5: the object conforms to its type — no field the type does not define (``DetailType.open``), and
    the type's JSON Schema holds."""
    if not known.open:
        for name in detail:
            if name != "type" and name not in COMMON and not known.defines(name):
                _refuse(f"{where}.{name} is not a field of type {known.type}")
    try:
        error = best_match(known.validator.iter_errors(detail))
    except Unresolvable:  # refused at registration; a schema stored some other way must not become a 500
        _refuse(f"{where}: type {known.type} cannot be checked; tell the operator")
    if error is not None:
        _refuse(f"{where}{_path(error)} {_why(error)}")


def requested_details(fd: Frontdesk, raw: str | None) -> tuple[dict[str, Any], ...]:
    """The ``authorization_details`` parameter (RFC 9396 §2) as validated objects; () when it is absent. Anything
    wrong raises ``InvalidAuthorizationDetails`` naming the object and field (§5)."""
    if raw is None:
        return ()
    details = _parsed(raw)
    types = detail_types(fd)
    for i, detail in enumerate(details):
        where = f"authorization_details[{i}]"
        if not isinstance(detail, dict):
            _refuse(f"{where} is not an object")
        _check_common(where, detail)
        known = types.get(detail["type"])
        if known is None:
            types = detail_types(fd, fresh=True)  # registered by another process a moment ago?
            known = types.get(detail["type"])
        if known is None:
            _refuse(f"{where} has the unknown type {detail['type'][:64]}")
        _check_type(where, detail, known)
    return tuple(details)


def type_names(details: Sequence[Mapping[str, Any]]) -> str:
    """The types of ``details``, space-separated, for an audit event: the values (an account, an amount) are the
    person's business and stay in the grant."""
    return " ".join(dict.fromkeys(str(d.get("type")) for d in details))


# --- plain words -------------------------------------------------------------------------------------------------


def _clean(text: str, limit: int = MAX_VALUE) -> str:
    """One value as a page may show it: no control, format (bidirectional overrides, zero-width) or separator
    characters that could make it read as something else; whitespace collapsed; at most ``limit`` characters. HTML
    escaping is the template's (autoescape)."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs") else c for c in text)
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, int | float):
        return _clean(str(value))
    if isinstance(value, list):
        return _clean(", ".join(_shown(v) for v in value[:20]))
    return _clean(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _lookup(detail: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """``{a.b}`` is the path a → b; a bare ``{amount}`` is the top-level field, else the first of that name in the
    nested objects, nearest first (RFC 9396 §A.3 keeps ``amount`` under ``instructedAmount``)."""
    if "." in name:
        node: Any = detail
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
        return True, node
    level: list[Any] = [detail]
    for _ in range(8):
        nested: list[Any] = []
        for node in level:
            if name in node:
                return True, node[name]
            nested.extend(v for v in node.values() if isinstance(v, dict))
        if not nested:
            break
        level = nested
    return False, None


_COMMON_WORDS = {
    "actions": "actions",
    "locations": "at",
    "datatypes": "data",
    "privileges": "privileges",
    "identifier": "item",
}


def _described(detail: Mapping[str, Any], known: DetailType | None) -> str:
    if known is None:
        # A type deleted since the grant (or never registered): the object itself, never an exception.
        body = {k: v for k, v in detail.items() if k != "type"}
        return _clean(f"{detail.get('type')}: {_shown(body)}", MAX_LINE)

    def fill(match: Any) -> str:
        found, value = _lookup(detail, match.group(1))
        return _shown(value) if found else f"[{match.group(1)} not given]"

    text = TEMPLATE_FIELD.sub(fill, known.describe)
    # RFC 9396 §3.1 (AG-RAR-03): the person sees all they approve; common fields the template does not use follow.
    rest = [f"{_COMMON_WORDS[n]}: {_shown(detail[n])}" for n in COMMON if n in detail and n not in known.fields]
    return _clean(text + (f" ({'; '.join(rest)})" if rest else ""), MAX_LINE)


def describe_details(fd: Frontdesk, details: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each detail in plain words: its type's template (``frontdesk authz-type create … --describe``) filled from
    the object, every value cleaned and capped, a missing field shown as ``[name not given]``."""
    types = detail_types(fd)
    return [_described(d, types.get(str(d.get("type")))) if isinstance(d, Mapping) else _clean(str(d)) for d in details]


# --- narrowing and audiences -------------------------------------------------------------------------------------


def _covers(granted: Mapping[str, Any], asked: Mapping[str, Any]) -> bool:
    """Whether one granted object covers one asked for (RFC 9396 §6.1: the comparison is per type). The common
    arrays may name fewer values, never others, and are asked for exactly when granted (an array left out would
    drop a limit the grant holds; one added names nothing the person saw); every other field is the grant's
    exactly, as only the type's own resource server knows what "less" of it would be."""
    if asked.get("type") != granted.get("type"):
        return False
    for name in COMMON_ARRAYS:
        if (name in asked) != (name in granted):
            return False
        if name in asked and not set(asked[name]) <= set(granted[name]):
            return False
    others = {k for k in (*asked, *granted) if k not in COMMON_ARRAYS}
    return all(k in asked and k in granted and asked[k] == granted[k] for k in others)


def narrowed(requested: Sequence[Mapping[str, Any]], granted: Sequence[Mapping[str, Any]]) -> bool:
    """RFC 9396 §6.1: whether every requested object is covered by one the grant holds (``_covers``)."""
    return all(any(_covers(g, r) for g in granted) for r in requested)


def token_details(fd: Frontdesk, raw: str | None, granted: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The details a token request gets (RFC 9396 §6): the grant's when it names none; else those it names, which
    must be valid and within the grant (§6.1; ``invalid_authorization_details`` otherwise)."""
    if raw is None:
        return tuple(dict(d) for d in granted)
    requested = requested_details(fd, raw)
    if not narrowed(requested, granted):
        _refuse("the requested authorization_details are not covered by the grant")
    return requested


def for_audience(details: Sequence[Mapping[str, Any]], audience: Sequence[str]) -> tuple[dict[str, Any], ...]:
    """The details a token for ``audience`` carries (RFC 9396 §9.1: the server may restrict them to the token's
    audience): one with ``locations`` only when one of them is an audience of the token (RFC 8707 comparison),
    one without ``locations`` always."""
    aud = {_comparable(a) for a in audience}
    return tuple(
        dict(d)
        for d in details
        if "locations" not in d or any(_comparable(loc) in aud for loc in d["locations"] if isinstance(loc, str))
    )


def _comparable(uri: str) -> str:
    try:
        return comparable(uri)
    except ValueError:  # a location need not be a URI (RFC 9396 §2.2); such a one matches only itself
        return uri
