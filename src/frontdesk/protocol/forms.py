"""``application/x-www-form-urlencoded`` request parameters (RFC 6749 §3.2, Appendix B).

RFC 6749 §3.1/§3.2: "Request and response parameters MUST NOT be included more than once." A duplicated parameter
is refused rather than resolved, since first-wins and last-wins parsers disagree and that disagreement is an attack.
The exceptions are ``resource``, which RFC 8707 §2 lets a client repeat, and ``audience``, which RFC 8693 §2.1 does.
"""

from __future__ import annotations

from urllib.parse import unquote

from ..errors import InvalidRequest

__all__ = ["Params", "parse_form", "parse_query"]

REPEATABLE = frozenset({"resource", "audience"})


class Params(dict[str, str]):
    """Single-valued parameters as a dict; repeatable ones are read with :meth:`getall`."""

    def __init__(self) -> None:  # empty, as dict.__new__ made it: no call to dict.__init__ needed
        self.multi: dict[str, list[str]] = {}

    def getall(self, name: str) -> list[str]:
        return self.multi.get(name, [])


def _decode(text: str) -> str:
    # HTML's application/x-www-form-urlencoded: "+" is a space, then percent-decoding as UTF-8, strictly.
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text, errors="strict") if "%" in text else text


def parse_form(body: bytes) -> Params:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not valid UTF-8") from None
    return parse_query(text)


def parse_query(query: str) -> Params:
    """What ``urllib.parse.parse_qsl(query, keep_blank_values=True, errors="strict")`` reads, checked as it is read:
    on the token endpoint's path, where the general parser's set-up costs as much as the parsing."""
    out = Params()
    seen: set[str] = set()
    for part in query.split("&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        try:
            name, value = _decode(raw_name), _decode(raw_value)
        except UnicodeDecodeError:
            raise InvalidRequest("the parameters are not valid form encoding") from None
        if "\x00" in value or "\x00" in name:
            raise InvalidRequest(f"parameter {name!r} carries a NUL character")
        if name in REPEATABLE:
            if value != "":
                out.multi.setdefault(name, []).append(value)
            continue
        if name in seen:
            raise InvalidRequest(f"parameter {name!r} is repeated")
        seen.add(name)
        # RFC 6749 §3.1: parameters sent without a value are treated as omitted.
        if value != "":
            out[name] = value
    return out
