"""URL templates in provider files: ``{tenant}`` (Microsoft Entra), ``{shop}`` (Shopify), ``{instance_url}``
(Salesforce, kept from the token response), checked when a file is loaded and filled per integration or connection.

A template value is checked against the pattern its :class:`~.model.Variable` declares before it is put into a URL,
so nothing a caller sends can change the host a request goes to. Two kinds of variable keep that promise twice over.
A ``text`` value (a shop name, a tenant) may only hold RFC 3986 unreserved characters and only sits after a literal
scheme, inside a host that ends in a literal domain (``https://{shop}.myshopify.com``) or in a path. A ``url`` value
(Salesforce ``instance_url``, a self-managed GitLab) may only start a template and must itself be an absolute https
URL without user information, query or fragment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

from frontdesk.config import is_loopback_host

from .model import CatalogError, InvalidField, Provider, Variable

__all__ = [
    "allowed_hosts",
    "check_host_template",
    "check_url",
    "check_url_template",
    "declared",
    "fill",
    "host_of_template",
    "placeholders",
    "url_problem",
    "value_problem",
]

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# RFC 3986 §2.3 unreserved: nothing that could end a host, start a port, user information, path, query or fragment.
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
# What must follow the last variable of a templated host: a literal domain of at least two labels.
DOMAIN_SUFFIX = re.compile(r"(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?){2,}")
MAX_VALUE = 2048


# Checking templates when a file is loaded


def placeholders(template: str, where: str) -> list[str]:
    """The variable names ``template`` holds, in order; a stray brace is refused."""
    names = PLACEHOLDER.findall(template)
    if "{" in PLACEHOLDER.sub("", template) or "}" in PLACEHOLDER.sub("", template):
        raise InvalidField(where, "a '{' or '}' that is not part of a {variable}")
    return names


def declared(name: str, variables: Mapping[str, Variable], where: str, before_response: bool = False) -> Variable:
    """The declaration of ``name``; ``before_response``: the field is used before any token response exists."""
    if name not in variables:
        raise InvalidField(where, f"{{{name}}} is not declared in variables")
    if before_response and variables[name].source == "response":
        raise InvalidField(where, f"{{{name}}} comes from the token response, which does not exist yet here")
    return variables[name]


def check_url_template(
    template: str, where: str, variables: Mapping[str, Variable], before_response: bool = False
) -> None:
    """A URL template that, however its variables are filled, cannot name another host than the one written."""
    names = placeholders(template, where)
    kinds = [declared(n, variables, where, before_response=before_response).kind for n in names]
    if template.startswith("{"):
        if kinds[0] != "url":
            raise InvalidField(where, f"{{{names[0]}}} starts the URL, so it must be a variable of kind 'url'")
        if template[len(names[0]) + 2 :][:1] not in ("", "/"):
            raise InvalidField(where, f"{{{names[0]}}} may only be followed by a path")
        names, kinds = names[1:], kinds[1:]
    else:
        check_url(PLACEHOLDER.sub("x", template), where)
        netloc = re.split(r"[/?#]", template.split("://", 1)[1], maxsplit=1)[0]
        if "{" in netloc and not DOMAIN_SUFFIX.fullmatch(netloc.rsplit("}", 1)[1]):
            raise InvalidField(where, "a variable in the host must be followed by a literal domain (.example.com)")
    if "url" in kinds:
        raise InvalidField(where, f"{{{names[kinds.index('url')]}}} is a whole URL and may only start the template")


def check_url(url: str, where: str) -> None:
    """Absolute https, or http to a loopback host (tests and local providers); no user information or fragment."""
    problem = url_problem(url)
    if problem:
        raise InvalidField(where, problem)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute https URL (or http to a loopback host) without user information or fragment."""
    if re.search(r"[\s\\]", url):
        return "no whitespace or backslash in a URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        return f"not a URL ({e})"
    if not parts.hostname:
        return "must be an absolute URL with a host"
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))):
        return "must be https (plain http only for a loopback host)"
    if "@" in parts.netloc or parts.fragment:
        return "must not carry user information or a fragment"
    return None


def check_host_template(entry: str, where: str, variables: Mapping[str, Variable]) -> None:
    """An ``api.hosts`` entry: a host whose variables are followed by a literal domain, or a lone url variable."""
    names = placeholders(entry, where)
    if names and entry == f"{{{names[0]}}}":
        if declared(names[0], variables, where).kind != "url":
            raise InvalidField(where, f"a lone {{{names[0]}}} must be a variable of kind 'url'")
        return
    for name in names:
        if declared(name, variables, where).kind != "text":
            raise InvalidField(where, f"{{{name}}} is a whole URL and cannot sit inside a host")
    if not (HOST.fullmatch(PLACEHOLDER.sub("x", entry)) or (not names and is_loopback_host(entry))):
        raise InvalidField(where, f"{entry!r} is not a lowercase host name")
    if names and not DOMAIN_SUFFIX.fullmatch(entry.rsplit("}", 1)[1]):
        raise InvalidField(where, "a variable in the host must be followed by a literal domain (.example.com)")


def host_of_template(url: str) -> str:
    """The host part of a URL template, as it is written in api.hosts: "{shop}.myshopify.com", "{instance_url}"."""
    if url.startswith("{"):
        return url[: url.index("}") + 1]
    netloc = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]
    host = netloc[1 : netloc.index("]")] if netloc.startswith("[") else netloc.split(":", 1)[0]
    return host.lower()


# Filling templates


def value_problem(variable: Variable, value: str) -> str | None:
    """Why ``value`` cannot fill ``variable``, or None."""
    if len(value) > MAX_VALUE:
        return f"longer than {MAX_VALUE} characters"
    if not re.fullmatch(variable.pattern, value):
        return f"{value[:80]!r} does not match its pattern"
    if variable.kind == "url":
        problem = _url_value_problem(value)
        return problem and f"{value[:80]!r}: {problem}"
    if not UNRESERVED.fullmatch(value) or value in (".", ".."):
        return f"{value[:80]!r} may only hold letters, digits and -._~ (RFC 3986 §2.3)"
    return None


def _url_value_problem(value: str) -> str | None:
    # ASCII only: an operator's pattern written with \w must not let look-alike Unicode hosts through.
    if not value.isascii():
        return "must be ASCII"
    # A path is appended to it: a query would swallow that path, a trailing '/' would double the slash.
    if "?" in value or value.endswith("/"):
        return "must not carry a query or end with '/'"
    return url_problem(value)


def fill(template: str, values: Mapping[str, str], provider: Provider) -> str:
    """``template`` with each ``{var}`` replaced by its value (or the variable's default), once the value matches.

    Raises :class:`CatalogError` naming the variable when it is undeclared, missing or not of the declared shape, so
    a value a caller chose can never move a request to another host.
    """
    variables = {v.name: v for v in provider.variables}

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        where = f"{provider.source_file}: variables.{name}"
        variable = variables.get(name)
        if variable is None:
            raise CatalogError(f"{where}: not declared by provider {provider.name!r}")
        value = values.get(name, variable.default)
        if value is None:
            raise CatalogError(f"{where}: no value given and no default")
        problem = value_problem(variable, value)
        if problem:
            raise CatalogError(f"{where}: {problem}")
        return value

    return PLACEHOLDER.sub(one, template)


def allowed_hosts(provider: Provider, values: Mapping[str, str]) -> frozenset[str]:
    """The lowercase host names the proxy may send this connection's credential to (ports are not compared)."""
    kinds = {v.name: v.kind for v in provider.variables}
    hosts: set[str] = set()
    for entry in provider.api.hosts:
        filled = fill(entry, values, provider)
        lone_url = entry.startswith("{") and kinds.get(entry[1:-1]) == "url"
        # A url value has passed value_problem(), so it has a host.
        hosts.add(cast(str, urlsplit(filled).hostname) if lone_url else filled.lower())
    return frozenset(hosts)
