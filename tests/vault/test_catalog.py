"""The provider catalog (DESIGN §6): shipped files load, quirks are parsed as data, operator files add and override,
bad files name the file and the field, and no template value can move a request to another host."""

from __future__ import annotations

import copy
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontdesk.vault import catalog
from frontdesk.vault.catalog import (
    CatalogError,
    allowed_hosts,
    discovery,
    fill,
    load_catalog,
    loader,
    model,
    resolve_discovery,
    templates,
)

SHIPPED = {
    "atlassian",
    "calendly",
    "frontdesk",
    "github",
    "gitlab",
    "gmail",
    "google",
    "google-calendar",
    "hubspot",
    "meta",
    "microsoft",
    "notion",
    "oidc",
    "outlook",
    "salesforce",
    "shopify",
    "slack",
    "stripe",
    "teams",
    "zoom",
}
CATALOG = load_catalog()

# The smallest valid provider file; broken variants below change one thing each.
MINIMAL: dict[str, Any] = {
    "display_name": "Example",
    "authorize_url": "https://{shop}.example.com/authorize",
    "token_url": "https://{shop}.example.com/token",
    "variables": {"shop": {"source": "connection", "pattern": "[a-z0-9][a-z0-9-]{0,59}"}},
    "api": {"base_url": "https://api.example.com/v1", "hosts": ["api.example.com"]},
}
DELETE = object()


def toml(table: dict[str, Any], prefix: str = "") -> str:
    """A TOML document for ``table`` (strings, booleans, integers, arrays of strings, nested tables)."""
    lines = [f"{json.dumps(k)} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            name = f"{prefix}{json.dumps(key)}"
            lines.append(f"\n[{name}]\n{toml(value, name + '.')}")
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def patched(patch: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    table = copy.deepcopy(MINIMAL if base is None else base)
    for key, value in patch.items():
        if value is DELETE:
            table.pop(key, None)
        elif isinstance(value, dict) and isinstance(table.get(key), dict):
            table[key] = patched(value, table[key])
        else:
            table[key] = value
    return table


def write(directory: Path, name: str, table: dict[str, Any] | str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(table if isinstance(table, str) else toml(table))
    return path


# The shipped catalog


def test_every_shipped_file_loads():
    """Every file under vault/providers/ is a valid provider, named after its file."""
    assert {p.name for p in CATALOG} == SHIPPED
    for provider in CATALOG:
        assert Path(provider.source_file).name == f"{provider.name}.toml"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_provider_has_docs_and_words_for_its_scopes(name):
    """Each shipped provider cites its docs and has plain words for what it asks, so the vault can say what it needs."""
    provider = CATALOG.get(name)
    assert provider.docs_url is not None
    assert provider.docs_url.startswith("https://")
    assert provider.access_words
    assert set(provider.default_scopes) <= set(provider.scope_words)


def test_catalog_iterates_in_name_order_and_refuses_unknown_names():
    assert [p.name for p in CATALOG] == sorted(SHIPPED)
    with pytest.raises(CatalogError, match="no provider named 'nope'"):
        CATALOG.get("nope")


@pytest.mark.parametrize("module", [model, loader, templates, discovery], ids=lambda m: m.__name__)
def test_all_names_every_public_definition(module):
    """Each module's __all__ lists every public class and function it defines, and nothing else."""
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert set(module.__all__) == public


def test_the_package_offers_the_catalogs_public_names():
    """``frontdesk.vault.catalog`` exports the catalog's API, each name one its modules define."""
    assert set(catalog.__all__) == {
        *("Api", "Catalog", "CatalogError", "Provider", "Variable"),
        *("allowed_hosts", "fill", "load_catalog", "resolve_discovery", "scope_problem"),
    }
    for name in catalog.__all__:
        value = getattr(catalog, name)
        assert value.__module__.startswith(catalog.__name__ + ".")
        assert name in vars(sys.modules[value.__module__])["__all__"]


# Quirks parsed as data


def test_slack_user_token_sits_under_authed_user_with_comma_separated_user_scope():
    slack = CATALOG.get("slack")
    assert slack.token_path == ("authed_user",)
    assert slack.scope_param == "user_scope"
    assert slack.scope_separator == ","
    assert slack.keep["team.id"] == "team_id"
    assert slack.pkce is False
    assert slack.client_auth == "basic"


def test_shopify_places_the_token_in_its_own_header_per_shop():
    shopify = CATALOG.get("shopify")
    assert shopify.api.header == "X-Shopify-Access-Token"
    assert shopify.api.value == "{access_token}"
    assert shopify.token_params == {"expiring": "1"}
    assert shopify.scope_separator == ","
    (shop,) = shopify.variables
    assert (shop.name, shop.source) == ("shop", "connection")
    assert fill(shopify.token_url, {"shop": "acme"}, shopify) == "https://acme.myshopify.com/admin/oauth/access_token"


def test_notion_uses_basic_auth_with_a_json_body_and_a_version_header():
    notion = CATALOG.get("notion")
    assert (notion.client_auth, notion.body_format) == ("basic", "json")
    assert notion.api.extra_headers["Notion-Version"]
    assert {"workspace_id", "bot_id"} <= set(notion.keep.values())
    assert notion.default_scopes == ()


def test_salesforce_keeps_instance_url_and_sends_api_calls_there():
    salesforce = CATALOG.get("salesforce")
    assert salesforce.keep["instance_url"] == "instance_url"
    assert salesforce.api.base_url == "{instance_url}"
    instance = next(v for v in salesforce.variables if v.name == "instance_url")
    assert (instance.source, instance.kind) == ("response", "url")
    values = {"instance_url": "https://acme.my.salesforce.com"}
    assert fill(salesforce.api.base_url, values, salesforce) == "https://acme.my.salesforce.com"
    assert fill(salesforce.token_url, {}, salesforce) == "https://login.salesforce.com/services/oauth2/token"
    assert allowed_hosts(salesforce, values) == {"acme.my.salesforce.com"}


def test_expires_in_unit_is_read_from_the_file(tmp_path):
    write(tmp_path, "fiserv", patched({"expires_in_unit": "milliseconds"}))
    loaded = load_catalog([tmp_path])
    assert loaded.get("fiserv").expires_in_unit == "milliseconds"
    assert loaded.get("google").expires_in_unit == "seconds"


def test_every_field_of_a_full_file_is_parsed(tmp_path):
    """Each key a provider file may hold lands in the Provider field of the same name."""
    full = patched(
        {
            "docs_url": "https://example.com/docs",
            "access_words": "your Example",
            "refresh_url": "https://{shop}.example.com/refresh",
            "revoke_url": "https://{shop}.example.com/revoke",
            "userinfo_url": "https://api.example.com/me",
            "revoke_auth": "basic",
            "scope_separator": ",",
            "scope_param": "user_scope",
            "default_scopes": ["read", "write"],
            "authorize_params": {"prompt": "consent"},
            "token_params": {"expiring": "1"},
            "refresh_params": {"grant_type": "refresh_token"},
            "client_auth": "json",
            "body_format": "json",
            "pkce": False,
            "token_path": ["data", "user"],
            "keep": {"team.id": "team_id"},
            "refresh_margin": 60,
            "keepalive": 86400,
            "rotates_refresh_tokens": True,
            "scope_words": {"read": "reading", "write": "writing"},
            "api": {"header": "X-Token", "value": "{access_token}", "extra_headers": {"Accept": "application/json"}},
        }
    )
    write(tmp_path, "example", full)
    p = load_catalog([tmp_path]).get("example")
    assert (p.refresh_url, p.revoke_url, p.revoke_auth) == (
        "https://{shop}.example.com/refresh",
        "https://{shop}.example.com/revoke",
        "basic",
    )
    assert (p.scope_separator, p.scope_param, p.default_scopes) == (",", "user_scope", ("read", "write"))
    assert (p.client_auth, p.body_format, p.pkce, p.token_path) == ("json", "json", False, ("data", "user"))
    assert (p.refresh_margin, p.keepalive, p.rotates_refresh_tokens) == (60, 86400, True)
    assert dict(p.refresh_params) == {"grant_type": "refresh_token"}
    assert (p.api.header, p.api.value, dict(p.api.extra_headers)) == (
        "X-Token",
        "{access_token}",
        {"Accept": "application/json"},
    )
    assert (p.userinfo_url, p.access_words, p.docs_url) == (
        "https://api.example.com/me",
        "your Example",
        "https://example.com/docs",
    )


# extends and operator files


def test_extends_inherits_and_merges_tables():
    """google-calendar keeps Google's endpoints and authorize parameters, replaces the API and adds scope words."""
    google, calendar = CATALOG.get("google"), CATALOG.get("google-calendar")
    assert calendar.authorize_url == google.authorize_url
    assert calendar.keepalive == google.keepalive
    assert calendar.authorize_params == {"access_type": "offline", "prompt": "consent"}
    assert calendar.display_name == "Google Calendar"
    assert calendar.api.base_url == "https://www.googleapis.com/calendar/v3"
    assert calendar.scope_words["openid"] == google.scope_words["openid"]
    assert calendar.scope_words["https://www.googleapis.com/auth/calendar"] == "your Google Calendar"
    assert CATALOG.get("gmail").api.hosts == ("gmail.googleapis.com",)
    assert CATALOG.get("teams").variables == CATALOG.get("microsoft").variables


def test_an_operator_entry_adds_a_key_to_an_inherited_table(tmp_path):
    write(tmp_path, "google-hd", {"extends": "google", "authorize_params": {"hd": "example.com"}})
    hd = load_catalog([tmp_path]).get("google-hd")
    assert hd.authorize_params == {"access_type": "offline", "prompt": "consent", "hd": "example.com"}
    assert hd.display_name == "Google"


def test_an_operator_file_overrides_a_shipped_provider_and_its_children_follow(tmp_path):
    """Same stem: the operator's file replaces the shipped one, and entries extending it extend the replacement."""
    path = write(tmp_path, "google", patched({"display_name": "Google (ours)"}))
    loaded = load_catalog([tmp_path])
    assert loaded.get("google").source_file == str(path)
    assert loaded.get("google").display_name == "Google (ours)"
    assert loaded.get("gmail").token_url == "https://{shop}.example.com/token"


def test_an_operator_file_adds_a_provider_and_later_directories_win(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write(first, "acme", patched({"display_name": "Acme one"}))
    write(second, "acme", patched({"display_name": "Acme two"}))
    loaded = load_catalog([first, second])
    assert loaded.get("acme").display_name == "Acme two"
    assert {p.name for p in loaded} == SHIPPED | {"acme"}


def test_a_missing_operator_directory_is_skipped_and_a_file_is_refused(tmp_path):
    assert {p.name for p in load_catalog([tmp_path / "absent"])} == SHIPPED
    (tmp_path / "file").write_text("")
    with pytest.raises(CatalogError, match="not a directory"):
        load_catalog([tmp_path / "file"])


# Broken files

BROKEN = [
    ("unknown-key", {"colour": "blue"}, "colour"),
    ("unknown-api-key", {"api": {"colour": "blue"}}, "api.colour"),
    ("unknown-variable-key", {"variables": {"shop": {"colour": "blue"}}}, "variables.shop.colour"),
    ("http-not-loopback", {"token_url": "http://example.com/token"}, "token_url"),
    ("ftp-scheme", {"authorize_url": "ftp://example.com/authorize"}, "authorize_url"),
    ("relative-url", {"token_url": "/token"}, "token_url"),
    ("user-info", {"token_url": "https://user@example.com/token"}, "token_url"),
    ("fragment", {"token_url": "https://example.com/token#x"}, "token_url"),
    ("undeclared-variable", {"token_url": "https://{tenant}.example.com/token"}, "token_url"),
    ("undeclared-host-variable", {"api": {"hosts": ["api.example.com", "{region}.example.com"]}}, "api.hosts[1]"),
    ("stray-brace", {"token_url": "https://example.com/{token"}, "token_url"),
    ("variable-is-the-host", {"token_url": "https://{shop}/token"}, "token_url"),
    ("text-variable-starts-url", {"token_url": "{shop}/token"}, "token_url"),
    ("bad-pattern", {"variables": {"shop": {"pattern": "[a-z"}}}, "variables.shop.pattern"),
    ("default-off-pattern", {"variables": {"shop": {"default": "Not A Shop"}}}, "variables.shop.default"),
    ("bad-source", {"variables": {"shop": {"source": "caller"}}}, "variables.shop.source"),
    ("missing-pattern", {"variables": {"shop": {"pattern": DELETE}}}, "variables.shop.pattern"),
    (
        "reserved-variable",
        {"variables": {"access_token": {"source": "connection", "pattern": "x"}}},
        "variables.access_token",
    ),
    ("orphan-response-variable", {"variables": {"org": {"source": "response", "pattern": "x"}}}, "variables.org"),
    ("wrong-type-bool", {"pkce": "yes"}, "pkce"),
    ("wrong-type-int", {"refresh_margin": True}, "refresh_margin"),
    ("wrong-type-array", {"default_scopes": "read write"}, "default_scopes"),
    ("wrong-type-table-value", {"token_params": {"expiring": 1}}, "token_params.expiring"),
    ("missing-token-url", {"token_url": DELETE}, "token_url"),
    ("missing-display-name", {"display_name": DELETE}, "display_name"),
    ("missing-api", {"api": DELETE}, "api"),
    ("missing-hosts", {"api": {"hosts": DELETE}}, "api.hosts"),
    ("base-url-off-hosts", {"api": {"base_url": "https://other.example.com"}}, "api.base_url"),
    ("client-auth", {"client_auth": "header"}, "client_auth"),
    ("expires-in-unit", {"expires_in_unit": "minutes"}, "expires_in_unit"),
    ("empty-separator", {"scope_separator": ""}, "scope_separator"),
    ("scope-holds-separator", {"default_scopes": ["read write"]}, "default_scopes[0]"),
    ("negative-margin", {"refresh_margin": -1}, "refresh_margin"),
    ("zero-keepalive", {"keepalive": 0}, "keepalive"),
    ("value-template", {"api": {"value": "Bearer {shop}"}}, "api.value"),
    ("value-without-token", {"api": {"value": "Bearer"}}, "api.value"),
    ("header-template", {"api": {"extra_headers": {"X-Shop": "{shop}"}}}, "api.extra_headers.X-Shop"),
    ("bad-header-name", {"api": {"header": "X Token"}}, "api.header"),
    ("docs-template", {"docs_url": "https://{shop}.example.com/docs"}, "docs_url"),
    ("discovery-not-well-known", {"discovery_url": "https://id.example.com/config"}, "discovery_url"),
    ("extends-unknown", {"extends": "nobody"}, "extends"),
    ("extends-itself", {"extends": "example"}, "extends"),
]


@pytest.mark.parametrize(("patch", "where"), [(p, w) for _, p, w in BROKEN], ids=[i for i, _, _ in BROKEN])
def test_a_broken_file_is_refused_naming_file_and_field(tmp_path, patch, where):
    path = write(tmp_path, "example", patched(patch))
    with pytest.raises(CatalogError) as info:
        load_catalog([tmp_path])
    assert str(info.value).startswith(f"{path}: {where}: "), str(info.value)


def test_an_extends_cycle_is_refused(tmp_path):
    write(tmp_path, "alpha", {"extends": "beta"})
    write(tmp_path, "beta", {"extends": "alpha"})
    with pytest.raises(CatalogError, match=r"alpha\.toml: extends: cycle: alpha -> beta -> alpha"):
        load_catalog([tmp_path])


def test_a_file_that_is_not_toml_is_refused(tmp_path):
    path = write(tmp_path, "example", 'display_name = "unterminated\n')
    with pytest.raises(CatalogError, match=f"^{re.escape(str(path))}: syntax: "):
        load_catalog([tmp_path])


def test_a_file_name_outside_the_naming_rule_is_refused(tmp_path):
    path = write(tmp_path, "Example", MINIMAL)
    with pytest.raises(CatalogError, match=f"^{re.escape(str(path))}: name: "):
        load_catalog([tmp_path])


def test_a_response_variable_cannot_build_the_authorization_url(tmp_path):
    """The token response does not exist yet when the person is sent to authorize."""
    write(
        tmp_path,
        "example",
        patched(
            {
                "authorize_url": "{org}/authorize",
                "keep": {"org_url": "org"},
                "variables": {
                    "org": {"source": "response", "kind": "url", "pattern": "https://[a-z]+\\.example\\.com"}
                },
            }
        ),
    )
    with pytest.raises(CatalogError, match=r"example\.toml: authorize_url: \{org\} comes from the token response"):
        load_catalog([tmp_path])


def test_loopback_http_is_accepted_for_local_providers(tmp_path):
    write(
        tmp_path,
        "local",
        patched(
            {
                "authorize_url": "http://127.0.0.1:8765/authorize",
                "token_url": "http://localhost:8765/token",
                "api": {"base_url": "http://127.0.0.1:8765/api", "hosts": ["127.0.0.1"]},
            }
        ),
    )
    assert load_catalog([tmp_path]).get("local").token_url == "http://localhost:8765/token"


# fill: values cannot move a request to another host

HOSTILE = ["evil.com/", "a.b", "x@y", "../", "", "evil.com#", "a b", "a/b", "a:1", "a?b", "ACME", "a\\b", ".."]
HOSTILE_URLS = [
    *HOSTILE,
    "https://evil.com",
    "https://evil.com/.salesforce.com",
    "https://evil.com?.salesforce.com",
    "https://evil.com#.salesforce.com",
    "https://acme.salesforce.com@evil.com",
    "https://acme.salesforce.com\\@evil.com",
    "https://acme.salesforce.com.evil.com",
    "https://acme.salesforce.com:1@evil.com",
    "http://acme.salesforce.com",
    "https://acme.my.salesforce.com/",
    "https://acme.my.salesforce.com/x",
    "https://acme.my.salesforce.com\n",
    "//acme.my.salesforce.com",
]


@pytest.mark.parametrize("shop", HOSTILE)
def test_fill_refuses_a_shop_that_would_change_the_host(shop):
    shopify = CATALOG.get("shopify")
    with pytest.raises(CatalogError, match=r"shopify\.toml: variables\.shop: "):
        fill(shopify.authorize_url, {"shop": shop}, shopify)


@pytest.mark.parametrize("instance_url", HOSTILE_URLS)
def test_fill_refuses_an_instance_url_outside_salesforce(instance_url):
    salesforce = CATALOG.get("salesforce")
    with pytest.raises(CatalogError, match=r"salesforce\.toml: variables\.instance_url: "):
        fill(salesforce.api.base_url + "/services/data", {"instance_url": instance_url}, salesforce)


@pytest.mark.parametrize("shop", ["evil.com/", "x@y", "a:1", "a#", "a%2F", ".."])
def test_a_loose_operator_pattern_still_cannot_move_the_host(tmp_path, shop):
    """Text values are held to RFC 3986 unreserved characters whatever the file's pattern says."""
    write(tmp_path, "loose", patched({"variables": {"shop": {"pattern": ".*"}}}))
    loose = load_catalog([tmp_path]).get("loose")
    with pytest.raises(CatalogError, match=r"variables\.shop: .* may only hold letters, digits and -\._~"):
        fill(loose.token_url, {"shop": shop}, loose)


def test_a_loose_operator_pattern_still_needs_an_https_url(tmp_path):
    """Url values must be absolute https (or loopback http) without user information, query or fragment."""
    table = patched(
        {
            "api": {"base_url": "{base}/v1", "hosts": ["{base}"]},
            "variables": {"base": {"source": "integration", "kind": "url", "pattern": ".*"}},
        }
    )
    write(tmp_path, "loose", table)
    loose = load_catalog([tmp_path]).get("loose")
    assert allowed_hosts(loose, {"base": "https://API.example.com:8443"}) == {"api.example.com"}
    for base in ["http://example.com", "https://a@example.com", "https://example.com?x", "https://exämple.com", "//x"]:
        with pytest.raises(CatalogError, match=r"variables\.base: "):
            fill(loose.api.base_url, {"base": base}, loose)


def test_fill_uses_the_default_and_refuses_a_missing_value():
    microsoft, shopify = CATALOG.get("microsoft"), CATALOG.get("shopify")
    assert fill(microsoft.token_url, {}, microsoft) == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert fill(microsoft.token_url, {"tenant": "contoso.onmicrosoft.com"}, microsoft).startswith(
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/"
    )
    with pytest.raises(CatalogError, match=r"variables\.shop: no value given and no default"):
        fill(shopify.token_url, {}, shopify)


def test_fill_refuses_a_variable_the_provider_does_not_declare():
    google = CATALOG.get("google")
    with pytest.raises(CatalogError, match=r"google\.toml: variables\.shop: not declared"):
        fill("https://{shop}.example.com", {"shop": "acme"}, google)


def test_allowed_hosts_are_filled_per_connection():
    shopify, gitlab = CATALOG.get("shopify"), CATALOG.get("gitlab")
    assert allowed_hosts(shopify, {"shop": "acme"}) == {"acme.myshopify.com"}
    assert allowed_hosts(gitlab, {}) == {"gitlab.com"}
    assert allowed_hosts(gitlab, {"base_url": "https://git.example.org/gitlab"}) == {"git.example.org"}


def _host_both_ways(url: str) -> tuple[str | None, str]:
    """The host as urllib and as httpx read it: a value must not make the two disagree."""
    return urlsplit(url).hostname, httpx.URL(url).host


SHOP_HOST = re.compile(r"[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com")
SALESFORCE_HOST = re.compile(r"([a-z0-9-]+\.)+salesforce\.com")
tricky = st.text(alphabet="abcz09-._~/@:?#%\\[] \n", max_size=40)


@settings(database=None, max_examples=400)
@given(st.one_of(st.text(max_size=40), tricky))
def test_no_shop_value_leaves_myshopify_com(shop):
    """For any text, filling the shop either raises or yields a URL whose host is a myshopify.com subdomain."""
    shopify = CATALOG.get("shopify")
    try:
        url = fill(shopify.api.base_url, {"shop": shop}, shopify)
    except CatalogError:
        return
    for host in _host_both_ways(url):
        assert host is not None
        assert SHOP_HOST.fullmatch(host)


@settings(database=None, max_examples=400)
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds("https://{}".format, tricky),
        st.builds("https://{}.salesforce.com".format, tricky),
    )
)
def test_no_instance_url_leaves_salesforce_com(instance_url):
    """For any text, filling instance_url either raises or yields an https URL on a salesforce.com host."""
    salesforce = CATALOG.get("salesforce")
    try:
        url = fill(salesforce.api.base_url + "/services/data", {"instance_url": instance_url}, salesforce)
    except CatalogError:
        return
    assert url.startswith("https://")
    for host in _host_both_ways(url):
        assert host is not None
        assert SALESFORCE_HOST.fullmatch(host.lower())


# Discovery

ISSUER = "https://id.example.com"


def metadata(issuer: str = ISSUER, **overrides: object) -> dict[str, object]:
    document: dict[str, object] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "revocation_endpoint": f"{issuer}/revoke",
        "userinfo_endpoint": f"{issuer}/userinfo",
    }
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not None}


def serving(documents: dict[str, object], seen: list[str] | None = None) -> httpx.AsyncClient:
    """A client whose only server answers each URL in ``documents`` with that JSON, and 404 otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(str(request.url))
        if str(request.url) in documents:
            return httpx.Response(200, json=documents[str(request.url)])
        return httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_discovery_fills_the_endpoints_of_frontdesk():
    frontdesk = CATALOG.get("frontdesk")
    assert (frontdesk.authorize_url, frontdesk.token_url) == ("", "")
    seen: list[str] = []
    async with serving({f"{ISSUER}/.well-known/openid-configuration": metadata()}, seen) as client:
        resolved = await resolve_discovery(frontdesk, {"issuer": ISSUER}, client)
    assert seen == [f"{ISSUER}/.well-known/openid-configuration"]
    assert resolved.authorize_url == f"{ISSUER}/authorize"
    assert resolved.token_url == f"{ISSUER}/token"
    assert resolved.revoke_url == f"{ISSUER}/revoke"
    assert resolved.userinfo_url == f"{ISSUER}/userinfo"
    assert allowed_hosts(resolved, {"issuer": ISSUER}) == {"id.example.com"}


async def test_discovery_accepts_a_loopback_http_issuer():
    local = "http://127.0.0.1:8000"
    async with serving({f"{local}/.well-known/openid-configuration": metadata(local)}) as client:
        resolved = await resolve_discovery(CATALOG.get("frontdesk"), {"issuer": local}, client)
    assert resolved.token_url == f"{local}/token"


async def test_discovery_follows_rfc8414_for_the_generic_provider():
    """RFC 8414 §3.1 inserts the well-known part before the issuer's path."""
    url = "https://as.example.com/.well-known/oauth-authorization-server/tenant1"
    values = {"discovery_url": url, "api_base_url": "https://api.example.com"}
    issuer = "https://as.example.com/tenant1"
    async with serving({url: metadata(issuer, revocation_endpoint=None, userinfo_endpoint=None)}) as client:
        resolved = await resolve_discovery(CATALOG.get("oidc"), values, client)
    assert resolved.authorize_url == f"{issuer}/authorize"
    assert (resolved.revoke_url, resolved.userinfo_url) == (None, None)


async def test_discovery_refuses_an_issuer_that_does_not_match_the_url():
    """OIDC Discovery §4.3: the issuer in the document must be the one the URL was built from."""
    document = metadata("https://evil.example.com")
    async with serving({f"{ISSUER}/.well-known/openid-configuration": document}) as client:
        with pytest.raises(CatalogError, match=r"frontdesk\.toml: discovery_url: the document's issuer"):
            await resolve_discovery(CATALOG.get("frontdesk"), {"issuer": ISSUER}, client)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("token_endpoint", "http://id.example.com/token"),
        ("authorization_endpoint", "https://id.example.com/{tenant}/authorize"),
        ("token_endpoint", None),
        ("authorization_endpoint", 42),
        ("revocation_endpoint", "javascript:alert(1)"),
    ],
)
async def test_discovery_refuses_an_unusable_endpoint(key, value):
    document = metadata(**{key: value})
    async with serving({f"{ISSUER}/.well-known/openid-configuration": document}) as client:
        with pytest.raises(CatalogError, match=f"discovery_url: {key}: "):
            await resolve_discovery(CATALOG.get("frontdesk"), {"issuer": ISSUER}, client)


async def test_discovery_that_cannot_be_fetched_is_an_http_error():
    """A provider that is down is a transient failure for the caller, not a broken catalog."""
    async with serving({}) as client:
        with pytest.raises(httpx.HTTPStatusError):
            await resolve_discovery(CATALOG.get("frontdesk"), {"issuer": ISSUER}, client)


async def test_endpoints_in_the_file_win_over_the_document(tmp_path):
    write(
        tmp_path,
        "idp",
        {
            "extends": "oidc",
            "token_url": "https://token.example.com/token",
            "variables": {"discovery_url": {"default": f"{ISSUER}/.well-known/openid-configuration"}},
        },
    )
    idp = load_catalog([tmp_path]).get("idp")
    async with serving({f"{ISSUER}/.well-known/openid-configuration": metadata()}) as client:
        resolved = await resolve_discovery(idp, {"api_base_url": ISSUER}, client)
    assert resolved.token_url == "https://token.example.com/token"
    assert resolved.authorize_url == f"{ISSUER}/authorize"


async def test_a_provider_without_discovery_is_returned_as_is():
    google = CATALOG.get("google")
    async with serving({}) as client:
        assert await resolve_discovery(google, {}, client) is google
