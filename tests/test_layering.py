"""The layering rule of frontdesk.protocol: pure protocol logic that imports nothing from web, storage or vault
(checked on the AST of every module, so a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import frontdesk.protocol

PROTOCOL_DIR = Path(frontdesk.protocol.__file__).parent
PACKAGE = "frontdesk.protocol"
FORBIDDEN = ("frontdesk.web", "frontdesk.storage", "frontdesk.vault")
# Libraries whose only purpose here would be I/O: a database, an HTTP server or client, sockets.
IO_LIBRARIES = ("sqlalchemy", "alembic", "starlette", "uvicorn", "httpx", "requests", "socket", "psycopg")


def imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of every module an import statement in ``source`` (a module of ``package``) refers to."""
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


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = sorted(PROTOCOL_DIR.glob("*.py"))


def test_protocol_modules_are_found():
    """The check runs over the real package, not an empty directory."""
    assert {"__init__.py", "forms.py", "redirect_uri.py", "rfc7636.py", "scope.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_protocol_imports_nothing_from_web_storage_or_vault(path):
    """No module of frontdesk.protocol imports frontdesk.web, frontdesk.storage or frontdesk.vault."""
    bad = sorted(n for n in imported_modules(path.read_text(), PACKAGE) if _under(n, FORBIDDEN))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_protocol_imports_no_io_library(path):
    """No module of frontdesk.protocol imports a database, HTTP or socket library."""
    bad = sorted(n for n in imported_modules(path.read_text(), PACKAGE) if _under(n, IO_LIBRARIES))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ..web import http", "frontdesk.web"),
        ("from .. import storage", "frontdesk.storage"),
        ("from ..storage.grants import x", "frontdesk.storage.grants"),
        ("import frontdesk.vault.store", "frontdesk.vault.store"),
        ("def f():\n    from frontdesk.web.app import create_app", "frontdesk.web.app"),
    ],
)
def test_checker_sees_forbidden_imports(source, expected):
    """The import resolver catches relative, absolute and function-local imports of forbidden packages."""
    names = imported_modules(source, PACKAGE)
    assert expected in names
    assert any(_under(n, FORBIDDEN) for n in names)


def test_checker_allows_sibling_and_errors_imports():
    """Imports of frontdesk.errors and sibling protocol modules resolve to allowed names."""
    names = imported_modules("from ..errors import InvalidRequest\nfrom .scope import parse_scope", PACKAGE)
    assert {"frontdesk.errors", "frontdesk.protocol.scope"} <= names
    assert not any(_under(n, FORBIDDEN) for n in names)
