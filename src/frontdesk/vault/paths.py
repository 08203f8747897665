"""The path and query of a proxied call, as they go to the provider: under its API base, in any encoding.

The caller names a path relative to the provider's API base URL; the ASGI server has decoded it once. What is left
goes on the wire as the caller wrote it, ``%XX`` escapes and all (GitLab's ``projects/group%2Fname``), so the path
is refused when *any* reading of it leaves the base: the one RFC 3986 gives it (dot segments, §3.3 and §5.2.4), and
those of servers and intermediaries that decode again (``%2e%2e``, ``%252e%252e``), split on backslashes, cut
``;parameters`` off a segment (``..;``), fold Unicode look-alikes (``．．``, NFKC) or read overlong UTF-8
(``%c0%ae``). A control character (NUL above all) in the path or query is refused as a bad request rather than left
to fail deeper down.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote_to_bytes

__all__ = ["PathRefused", "api_path", "api_query", "remove_dot_segments"]

# Decoding this many times without reaching a stable form is not a path anyone means.
MAX_DECODINGS = 4
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# RFC 3986 §3.3 pchar and "/": kept as they are; anything else is percent-encoded (UTF-8). "%" is handled apart.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
# §3.4 query: pchar, "/" and "?".
_QUERY_SAFE = _PATH_SAFE + "?"


class PathRefused(ValueError):
    """A path or query that would leave the provider's API base, or that no provider could be meant to read."""


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, step by step."""
    source, output = path, ""
    while source:
        if source.startswith("../"):  # A
            source = source[3:]
        elif source.startswith(("./", "/./")):  # A, B
            source = source[2:]
        elif source == "/.":  # B
            source = "/"
        elif source.startswith("/../"):  # C
            source = source[3:]
            output = output[: max(output.rfind("/"), 0)]
        elif source == "/..":
            source = "/"
            output = output[: max(output.rfind("/"), 0)]
        elif source in (".", ".."):  # D
            source = ""
        else:  # E
            start = 1 if source.startswith("/") else 0
            end = source.find("/", start)
            end = len(source) if end < 0 else end
            output += source[:end]
            source = source[end:]
    return output


def _readings(path: str) -> list[str]:
    """``path`` as received, then decoded again and again until it no longer changes."""
    readings = [path]
    while "%" in readings[-1]:
        if len(readings) > MAX_DECODINGS:
            raise PathRefused("the path is percent-encoded too many times over")
        try:
            decoded = unquote_to_bytes(readings[-1]).decode("utf-8")
        except UnicodeDecodeError:
            # Overlong forms (%c0%ae is "." to some decoders) and stray bytes: no provider API path needs them.
            raise PathRefused("the path does not decode to UTF-8") from None
        if decoded == readings[-1]:
            break
        readings.append(decoded)
    return readings


def _check(reading: str) -> None:
    if _CONTROL.search(reading):
        raise PathRefused("the path holds a control character")
    if "\\" in reading:
        raise PathRefused("the path holds a backslash")
    # Each segment as a server that cuts ";parameters" off (Tomcat, Jetty) or folds Unicode (NFKC) would read it.
    # A path that §5.2.4 would change has a dot segment, which resolves against the base and may climb out of it.
    read = "/" + "/".join(unicodedata.normalize("NFKC", s.split(";", 1)[0]) for s in reading.split("/"))
    if remove_dot_segments(read) != read:
        raise PathRefused("the path must stay under the provider's API base, without '.' or '..' segments")


def _encoded(text: str, safe: str) -> str:
    """``text`` with every character outside ``safe`` percent-encoded, its valid ``%XX`` escapes left as they are."""
    out, at = [], 0
    for escape in _ESCAPE.finditer(text):
        out.append(quote(text[at : escape.start()], safe=safe))
        out.append(escape.group())
        at = escape.end()
    out.append(quote(text[at:], safe=safe))
    return "".join(out)


def api_path(path: str) -> str:
    """The path to append to the API base (after its "/"), or :class:`PathRefused`.

    ``path`` is the caller's path after the ASGI server's one decoding. A decoded "?" or "#" goes out encoded, so
    it cannot start a query or fragment of its own."""
    if "://" in path:
        raise PathRefused("the path must be relative to the provider's API base")
    for reading in _readings(path):
        if reading.startswith("/"):  # "//host/…" after the base's "/": a network-path reference to some readers
            raise PathRefused("the path must be relative to the provider's API base")
        _check(reading)
    return _encoded(path, _PATH_SAFE)


def api_query(query: str) -> str:
    """The caller's query string as it goes to the provider (still percent-encoded), or :class:`PathRefused`."""
    if _CONTROL.search(query):
        raise PathRefused("the query holds a control character")
    return _encoded(query, _QUERY_SAFE)
