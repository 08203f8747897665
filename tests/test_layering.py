"""The layers of DESIGN §2, enforced on the import statements of every module (checked on the AST, so a lazy import
inside a function or one under ``TYPE_CHECKING`` counts too).

Arrows point down: adapters (``web/``, ``cli``, the composition root ``asgi``) → services (``oauth/``, ``vault/``,
``upstream/``) → core (``protocol/``, ``crypto/``) and ``storage/``. A known exception is an entry in ``ALLOWED``,
which may only shrink: an entry that no module needs any more fails the run, so it is removed when the code is fixed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import frontdesk
import frontdesk_sdk

SERVER = Path(frontdesk.__file__).parent
SDK = Path(frontdesk_sdk.__file__).parent  # its own distribution, in sdk/src

# Libraries whose only purpose in pure protocol code would be I/O: a database, an HTTP server or client, sockets.
IO_LIBRARIES = ("sqlalchemy", "alembic", "starlette", "uvicorn", "httpx", "requests", "socket", "psycopg")


# What builds a statement (types such as Engine and Connection, and sqlalchemy.exc, are fine anywhere below web).
SQL_BUILDERS = tuple(
    f"sqlalchemy.{name}" for name in ("select", "insert", "update", "delete", "func", "text", "case", "and_", "or_")
)
VAULT_STORES = (
    "frontdesk.vault.store",
    "frontdesk.vault.api_key_store",
    "frontdesk.vault.integration_store",
    "frontdesk.vault.session_store",
)


@dataclass(frozen=True)
class Rule:
    """Modules under ``source`` import nothing under any of ``forbidden`` (unless ``source`` is also in ``exempt``)."""

    name: str
    source: str
    forbidden: tuple[str, ...]
    exempt: tuple[str, ...] = ()


RULES = (
    Rule(
        "protocol is pure spec logic",
        "frontdesk.protocol",
        (
            "frontdesk.web",
            "frontdesk.storage",
            "frontdesk.vault",
            "frontdesk.oauth",
            "frontdesk.upstream",
            "frontdesk.admin",
            "frontdesk.core",
            "frontdesk.crypto",
            *IO_LIBRARIES,
        ),
    ),
    Rule("web calls services, never storage", "frontdesk.web", ("frontdesk.storage",)),
    Rule(
        "storage holds no protocol rules and no service",
        "frontdesk.storage",
        (
            "frontdesk.protocol",
            "frontdesk.oauth",
            "frontdesk.vault",
            "frontdesk.upstream",
            "frontdesk.admin",
            "frontdesk.web",
        ),
    ),
    Rule(
        "crypto runs no SQL and knows no service",
        "frontdesk.crypto",
        ("frontdesk.storage", "frontdesk.oauth", "frontdesk.vault", "frontdesk.admin", "frontdesk.web", "sqlalchemy"),
    ),
    Rule(
        "the core knows neither the vault nor the services: the composition root wires them",
        "frontdesk.core",
        ("frontdesk.vault", "frontdesk.oauth", "frontdesk.upstream", "frontdesk.admin", "frontdesk.web"),
    ),
    Rule(
        "services do not reach up into HTTP",
        "frontdesk",
        ("frontdesk.web",),
        exempt=("frontdesk.web", "frontdesk.asgi", "frontdesk.cli"),
    ),
    Rule("the SDK is installable without the server", "frontdesk_sdk", ("frontdesk",)),
    Rule(
        "the resource-server kit runs in someone else's API: it needs nothing of the server",
        "frontdesk.resource_server",
        ("frontdesk",),
    ),
    Rule(
        "SQL statements are built in storage and the vault's stores only: services call named operations",
        "frontdesk",
        SQL_BUILDERS,
        exempt=("frontdesk.storage", *VAULT_STORES),
    ),
)

# Known exceptions: (importing module, imported module). May only shrink.
ALLOWED: frozenset[tuple[str, str]] = frozenset()

# What the package root may hold (DESIGN §2): infrastructure only; the use cases live in packages.
ROOT_MODULES = {
    "__init__",
    "__main__",
    "asgi",
    "cli",
    "config",
    "core",
    "errors",
    "log_filters",
    "log_text",
    "logs",
    "metrics",
    "secret",
    "server",
    "wire",
}
ROOT_PACKAGES = {
    "admin",
    "cli",
    "config",
    "crypto",
    "oauth",
    "protocol",
    "resource_server",
    "storage",
    "upstream",
    "vault",
    "web",
}

# Modules stay small enough to read in one sitting (issue 12: about 400 lines). Known exceptions may only shrink.
MAX_LINES = 400
TOO_LONG_ALLOWED: frozenset[str] = frozenset()


def module_name(path: Path) -> str:
    package = SDK if path.is_relative_to(SDK) else SERVER
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module an import statement in ``source`` (the code of ``module``) refers to."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.add(target)
            # ``from .. import web`` names the module in the alias, not in ``module``.
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = sorted(p for package in (SERVER, SDK) for p in package.rglob("*.py"))
IMPORTS = {module_name(p): imported_modules(p.read_text(), module_name(p), p.name == "__init__.py") for p in MODULES}


def as_module(name: str) -> str:
    """What an import names, as reported: ours to the module (``frontdesk.storage.db.now`` → ``frontdesk.storage.db``),
    a library's name as written (``sqlalchemy.insert``)."""
    if not under(name, ("frontdesk", "frontdesk_sdk")):
        return name
    while name not in IMPORTS and "." in name:
        name = name.rpartition(".")[0]
    return name


def breaches(rule: Rule) -> set[tuple[str, str]]:
    """(importing module, imported module) for every import that breaks ``rule``."""
    found = set()
    for module, names in IMPORTS.items():
        if not under(module, (rule.source,)) or under(module, rule.exempt):
            continue
        found.update(
            (module, as_module(name))
            for name in names
            if under(name, rule.forbidden) and not under(name, (rule.source,))  # a package may import itself
        )
    return found


def test_modules_are_found():
    """The checks run over the real packages, not an empty directory."""
    assert {"frontdesk.protocol.rfc7636", "frontdesk.web.app", "frontdesk.storage.db", "frontdesk_sdk"} <= set(IMPORTS)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_layer_rule(rule):
    """No module breaks the rule, but for the allowed exceptions."""
    bad = sorted(breaches(rule) - ALLOWED)
    assert bad == [], f"{rule.name}: {bad}"


def test_allowed_exceptions_are_still_needed():
    """An exception that no module needs any more is removed from ``ALLOWED``: the list only shrinks."""
    needed = set().union(*(breaches(rule) for rule in RULES))
    assert sorted(ALLOWED - needed) == []


def test_package_root_holds_infrastructure_only():
    """The package root keeps config, errors, secret, wire, logs, core, asgi, server and cli; use cases live in
    packages (oauth/, vault/, upstream/)."""
    root = SERVER
    modules = {p.stem for p in root.glob("*.py")}
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    assert modules <= ROOT_MODULES, sorted(modules - ROOT_MODULES)
    assert packages <= ROOT_PACKAGES, sorted(packages - ROOT_PACKAGES)


def test_modules_stay_small():
    """No module is over about 400 lines, but for the listed exceptions, which only shrink."""
    lengths = {module_name(p): len(p.read_text().splitlines()) for p in MODULES}
    too_long = {m for m, n in lengths.items() if n > MAX_LINES}
    assert sorted(too_long - TOO_LONG_ALLOWED) == [], {m: lengths[m] for m in too_long - TOO_LONG_ALLOWED}
    assert sorted(TOO_LONG_ALLOWED - too_long) == []


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from ..web import http", "frontdesk.protocol.x", "frontdesk.web"),
        ("from .. import storage", "frontdesk.protocol.x", "frontdesk.storage"),
        ("from ..storage.grants import x", "frontdesk.protocol.x", "frontdesk.storage.grants"),
        ("import frontdesk.vault.store", "frontdesk.protocol.x", "frontdesk.vault.store"),
        ("def f():\n    from frontdesk.web.app import create_app", "frontdesk.protocol.x", "frontdesk.web.app"),
        ("if TYPE_CHECKING:\n    from .vault.service import Vault", "frontdesk.core", "frontdesk.vault.service"),
        ("from .. import storage", "frontdesk.web.x", "frontdesk.storage"),
    ],
)
def test_checker_sees_forbidden_imports(source, module, expected):
    """The import resolver catches relative, absolute, function-local and type-checking-only imports."""
    assert expected in imported_modules(source, module)


def test_checker_resolves_package_relative_imports():
    """In a package's ``__init__``, ``from .x`` is a submodule of that package, not of its parent."""
    assert "frontdesk.web.app" in imported_modules("from .app import create_app", "frontdesk.web", is_package=True)
    assert "frontdesk.app" not in imported_modules("from .app import create_app", "frontdesk.web", is_package=True)


def test_checker_allows_sibling_and_errors_imports():
    """Imports of frontdesk.errors and sibling protocol modules resolve to allowed names."""
    source = "from ..errors import InvalidRequest\nfrom .scope import parse_scope"
    names = imported_modules(source, "frontdesk.protocol.x")
    assert {"frontdesk.errors", "frontdesk.protocol.scope"} <= names
    rule = RULES[0]
    assert not any(under(n, rule.forbidden) for n in names)
