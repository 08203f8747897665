"""A person at a browser, scripted: follows an authorization URL through frontdesk's real sign-in and consent pages
with httpx (cookies kept, redirects followed by hand, CSRF fields read from the HTML), and stops at the redirect
back to the client, whose URL carries the code. What an MCP client's redirect handler hands to a browser.

Shared by tests/interop (frontdesk served in its own process) and tests/test_mcp_vault.py (served in this one:
``transport`` then reaches it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

MAX_HOPS = 12
TIMEOUT = 10.0


@dataclass
class _Form:
    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    password: bool = False
    allow: bool = False


class _Page(HTMLParser):
    """The first POST form of a page (its hidden fields, and whether it asks for a password or offers "allow"),
    and the page's visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form: _Form | None = None
        self._in_form = False
        self._skip = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "form" and self.form is None and attr.get("method", "").lower() == "post":
            self.form, self._in_form = _Form(attr.get("action", "")), True
        elif tag in ("input", "button") and self._in_form and self.form is not None:
            if attr.get("type") == "hidden" and "name" in attr:
                self.form.hidden[attr["name"]] = attr.get("value", "")
            elif attr.get("name") == "password":
                self.form.password = True
            elif attr.get("name") == "decision" and attr.get("value") == "allow":
                self.form.allow = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(" ".join(data.split()))


@dataclass(frozen=True)
class Answered:
    """Where the browser was sent back to (the client's redirect URI, with ``code``, ``state`` and ``iss``), and the
    visible text of each consent page the person answered."""

    callback: str
    consent_pages: tuple[str, ...]

    def parameter(self, name: str) -> str | None:
        values = parse_qs(urlsplit(self.callback).query).get(name)
        return values[0] if values else None


async def sign_in_and_consent(
    authorization_url: str,
    redirect_uri: str,
    username: str,
    password: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Answered:
    """Sign in (when asked) and allow (when asked) until frontdesk redirects to ``redirect_uri``."""
    origin = urlsplit(authorization_url)[:2]
    consent_pages: list[str] = []
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, transport=transport) as browser:
        url = authorization_url
        response = await browser.get(url)
        for _ in range(MAX_HOPS):
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["location"])
                if url.startswith(f"{redirect_uri}?"):
                    return Answered(url, tuple(consent_pages))
                # The browser never leaves frontdesk before the redirect back: no page of another origin.
                assert urlsplit(url)[:2] == origin, f"unexpected redirect to {url}"
                response = await browser.get(url)
                continue
            assert response.status_code == 200, f"{response.status_code} at {url}: {response.text[:500]}"
            page = _Page()
            page.feed(response.text)
            form = page.form
            assert form is not None, f"no form at {url}"
            assert form.hidden.get("csrf"), f"no csrf field in the form at {url}"
            fields = dict(form.hidden)
            if form.password:
                fields.update(username=username, password=password)
            elif form.allow:
                fields["decision"] = "allow"
                consent_pages.append(" ".join(page.text))
            else:
                raise AssertionError(f"a form that is neither sign-in nor consent at {url}: {page.text}")
            url = urljoin(url, form.action)
            response = await browser.post(url, data=fields)
    raise AssertionError(f"no redirect to {redirect_uri} after {MAX_HOPS} hops")
