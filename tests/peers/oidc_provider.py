"""node-oidc-provider (v9, OpenID Certified) as a real upstream OpenID provider on loopback, for the tests.

``running_op`` starts ``tests/peers/oidc-provider/op.mjs`` in its own process (installing its npm packages first if
they are missing) and yields an ``Op``; ``sign_in_and_consent`` drives that provider's sign-in and consent pages with
plain HTTP and returns where it finally redirects (the client's redirect_uri with ``code``, or with ``error``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

PACKAGE_DIR = Path(__file__).parent / "oidc-provider"
NPM_TIMEOUT = 300.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
HTTP_TIMEOUT = 10.0
MAX_HOPS = 20
DEFAULT_API_SCOPES = ("calendar.read", "calendar.write")


class PeerError(RuntimeError):
    """The provider process could not be installed, started or reached, or it did something unexpected."""


class SignInError(RuntimeError):
    """The sign-in or consent pages did not lead back to the client (refused login, error page, too many hops)."""


@dataclass(frozen=True)
class OpClient:
    """A client registered at the provider (static client metadata in oidc-provider's terms)."""

    client_id: str
    client_secret: str
    redirect_uris: Sequence[str]
    token_endpoint_auth_method: str = "client_secret_basic"  # or "client_secret_post"
    grant_types: Sequence[str] = ("authorization_code", "refresh_token")
    scope: str | None = None  # when set, the scopes this client may ask for

    def metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data["redirect_uris"] = list(self.redirect_uris)
        data["grant_types"] = list(self.grant_types)
        if self.scope is None:
            del data["scope"]
        return data


@dataclass(frozen=True)
class OpAccount:
    """A person at the provider: signs in with ``id`` or ``email`` and ``password``."""

    id: str
    email: str
    password: str
    email_verified: bool = True
    name: str | None = None

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Op:
    """A running provider. The admin methods need it started with an admin secret (``running_op`` does by default)."""

    issuer: str
    port: int
    admin_secret: str | None
    log: Path = field(repr=False)
    # An HTTP client with base_url=issuer (absolute URLs work too), closed when the provider stops.
    http: httpx.Client = field(repr=False)

    def metadata(self) -> dict[str, Any]:
        response = self.http.get("/.well-known/openid-configuration")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def url(self, path: str) -> str:
        """An absolute URL on the provider, e.g. ``op.url("/api/me")``."""
        return f"{self.issuer}{path}"

    def _admin(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        if not self.admin_secret:
            raise PeerError("this provider was started without an admin secret")
        response = self.http.request(
            method, f"/__test__/{path}", headers={"Authorization": f"Bearer {self.admin_secret}"}, json=body
        )
        if response.status_code != 200:
            raise PeerError(f"admin {method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    def revoke_all(self, account_id: str) -> int:
        """Revoke every grant of the account (and every token of those grants), as when the person removes the app at
        the provider: the next refresh gets ``invalid_grant``. Returns how many grants were revoked."""
        return int(self._admin("POST", "revoke-all", {"account_id": account_id})["revoked_grants"])

    def counts(self) -> dict[str, dict[str, int]]:
        """Requests the provider served since start (or the last reset): token requests keyed by grant type
        (``refresh_token``, ``authorization_code``), other endpoints by route name (``revocation``, ``introspection``,
        ``userinfo``, ``authorization``, ...), and ``api`` for /api/*; each ``{"requests": n, "succeeded": n}``."""
        data: dict[str, dict[str, int]] = self._admin("GET", "counts")
        return data

    def refresh_count(self) -> int:
        """How many refresh_token grant requests reached the token endpoint (whatever their outcome)."""
        return self.counts().get("refresh_token", {}).get("requests", 0)

    def reset_counts(self) -> None:
        self._admin("POST", "reset")


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client here: httpx builds a new one (~80 ms) per client otherwise. The provider
    speaks plain HTTP on loopback, so it is never used for it; it keeps redirects elsewhere verified all the same."""
    return ssl.create_default_context()


def http_client(**kwargs: Any) -> httpx.Client:
    """An httpx client that is cheap to create (a shared TLS context), with this module's timeout."""
    return httpx.Client(verify=_tls(), timeout=HTTP_TIMEOUT, **kwargs)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PeerError(f"`{name}` is not on PATH: the oidc-provider peer needs Node.js 20.18 or newer with npm")
    return path


def _installed() -> bool:
    """node_modules matches package-lock.json: npm ci finished (it writes .package-lock.json last) for this pin."""
    hidden = PACKAGE_DIR / "node_modules" / ".package-lock.json"
    installed = PACKAGE_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not hidden.exists() or not installed.exists():
        return False
    locked = json.loads((PACKAGE_DIR / "package-lock.json").read_text())["packages"]["node_modules/oidc-provider"]
    return bool(json.loads(installed.read_text())["version"] == locked["version"])


def ensure_installed() -> None:
    """``npm ci`` in tests/peers/oidc-provider if its node_modules is missing or stale; one run at a time."""
    if _installed():
        return
    digest = hashlib.sha256(str(PACKAGE_DIR.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"frontdesk-peer-oidc-provider-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _installed():  # another run installed it while this one waited
                return
            command = [_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"]
            done = subprocess.run(
                command, cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False
            )
            if done.returncode != 0 or not _installed():
                raise PeerError(f"`npm ci` in {PACKAGE_DIR} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _record(item: OpClient | OpAccount | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, OpClient):
        return item.metadata()
    if isinstance(item, OpAccount):
        return item.record()
    return dict(item)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def _wait_until_ready(process: subprocess.Popen[bytes], stdout: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = stdout.read_text(errors="replace")
        if "\n" in text:
            line = text.split("\n", 1)[0]
            try:
                ready: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError as err:
                message = f"op.mjs printed {line!r} instead of its ready line; its stderr:\n{log.read_text()}"
                raise PeerError(message) from err
            return ready
        if process.poll() is not None:
            raise PeerError(f"op.mjs exited {process.returncode} before it was ready; its stderr:\n{log.read_text()}")
        time.sleep(0.02)
    raise PeerError(f"op.mjs was not ready within {START_TIMEOUT:.0f} s; its stderr:\n{log.read_text()}")


@contextlib.contextmanager
def running_op(
    tmp_path: Path,
    *,
    clients: Sequence[OpClient | Mapping[str, Any]],
    accounts: Sequence[OpAccount | Mapping[str, Any]],
    access_token_ttl: int = 300,
    refresh_token_ttl: int = 14 * 24 * 3600,
    id_token_ttl: int = 3600,
    api_scopes: Sequence[str] = DEFAULT_API_SCOPES,
    admin_secret: str | None = None,
    admin: bool = True,
    strict_offline_access: bool = False,
) -> Iterator[Op]:
    """node-oidc-provider on a free 127.0.0.1 port, stopped at exit.

    ``api_scopes`` are offered besides openid, email, profile and offline_access. ``admin_secret`` defaults to a
    random one; ``admin=False`` starts the provider without the /__test__ surface. With ``strict_offline_access``
    the provider keeps oidc-provider's stock rule that offline_access (and so a refresh token) needs
    ``prompt=consent`` in the authorization request; by default the peer adds ``prompt=consent`` itself.
    """
    ensure_installed()
    node = _tool("node")
    # Its own directory, so that one test can run several providers under the same tmp_path.
    tmp_path.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="oidc-provider-", dir=tmp_path))
    config_path = home / "config.json"
    config = {
        "clients": [_record(c) for c in clients],
        "accounts": [_record(a) for a in accounts],
        "scopes": list(api_scopes),
        "access_token_ttl": access_token_ttl,
        "refresh_token_ttl": refresh_token_ttl,
        "id_token_ttl": id_token_ttl,
        "strict_offline_access": strict_offline_access,
    }
    config_path.write_text(json.dumps(config))  # mkdtemp made home 0700
    secret = (admin_secret or secrets.token_urlsafe(32)) if admin else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("OP_")}
    if secret:
        env["OP_ADMIN_SECRET"] = secret
    stdout_path = home / "stdout"
    log = home / "stderr.log"
    with stdout_path.open("wb") as out, log.open("wb") as err:
        process = subprocess.Popen(
            [node, str(PACKAGE_DIR / "op.mjs"), f"--config={config_path}", "--port=0"],
            cwd=PACKAGE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        ready = _wait_until_ready(process, stdout_path, log)
        with http_client(base_url=ready["issuer"]) as http:
            try:
                yield Op(issuer=ready["issuer"], port=int(ready["port"]), admin_secret=secret, log=log, http=http)
            except BaseException as err:
                if process.poll() is not None:
                    err.add_note(f"op.mjs had exited ({process.returncode}); its stderr:\n{log.read_text()}")
                raise
        if process.poll() is not None:
            raise PeerError(f"op.mjs died during the test ({process.returncode}); its stderr:\n{log.read_text()}")
    finally:
        _stop(process)


class _Forms(HTMLParser):
    """The forms of a page (id, method, action, named inputs) and its ``class="error"`` messages."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self._form: dict[str, Any] | None = None
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = {"method": a.get("method", "get").upper(), "action": a.get("action", ""), "inputs": {}}
            self.forms[a.get("id", f"form{len(self.forms)}")] = self._form
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form["inputs"][a["name"]] = a.get("value", "")
        if "error" in a.get("class", "").split():
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error and data.strip():
            self.errors.append(data.strip())


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def sign_in_and_consent(authorization_url: str, login: str, password: str, *, consent: bool = True) -> str:
    """Open ``authorization_url`` at the provider, sign in with ``login`` (account id or email) and ``password``,
    allow (or with ``consent=False`` deny) the consent page, and return the URL the provider finally redirects to
    outside its own origin (the client's redirect_uri, with ``code`` or ``error``), without fetching it."""
    origin = _origin(authorization_url)
    url, method, data = authorization_url, "GET", None
    signed_in = False
    text = ""
    with http_client(follow_redirects=False) as http:
        for _ in range(MAX_HOPS):
            response = http.request(method, url, data=data)
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if _origin(location) != origin:
                    return location
                url, method, data = location, "GET", None
                continue
            text = response.text
            page = _Forms()
            page.feed(text)
            if response.status_code != 200:
                raise SignInError(f"{method} {url} answered {response.status_code}: {page.errors or text[:500]}")
            if "login" in page.forms:
                if signed_in:
                    raise SignInError(f"sign-in refused: {' '.join(page.errors) or text[:500]}")
                form, fields = page.forms["login"], {"login": login, "password": password}
                signed_in = True
            elif "consent" in page.forms:
                form, fields = page.forms["consent" if consent else "deny"], {}
            else:
                raise SignInError(f"{url} shows neither a sign-in nor a consent form: {page.errors or text[:500]}")
            url = urljoin(str(response.url), form["action"])
            method, data = form["method"], {**form["inputs"], **fields}
    raise SignInError(f"no redirect out of the provider after {MAX_HOPS} hops; last page:\n{text[:500]}")


__all__ = [
    "Op",
    "OpAccount",
    "OpClient",
    "PeerError",
    "SignInError",
    "ensure_installed",
    "http_client",
    "running_op",
    "sign_in_and_consent",
]
