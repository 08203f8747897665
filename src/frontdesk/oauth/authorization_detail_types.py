"""The operator's ``authorization_details`` types (RFC 9396 §2; issue 14 item 5): each a JSON Schema (Draft 2020-12)
that requests of the type must satisfy (§5) and a plain-words template for the pages that ask the person
("Pay {amount} {currency} to {creditorName}").

The operator registers them (``frontdesk authz-type …``); each change is one transaction with its audit event. The
registry is read on every request that carries details, so each process keeps it for a few seconds, as it keeps
scopes (``Frontdesk.scopes``); a type it does not know yet is looked up again at once (``detail_types(fresh=True)``).
"""

from __future__ import annotations

import json
import re
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ..core import Frontdesk
from ..storage import audit
from ..storage.authorization_detail_types import (
    DetailTypeRow,
    all_detail_types,
    delete_detail_type,
    detail_type_named,
    insert_detail_type,
)
from ..storage.db import now, transaction

__all__ = [
    "CACHE_SECONDS",
    "DetailType",
    "DetailTypeError",
    "create",
    "delete",
    "detail_types",
    "listed",
    "shown",
    "types_supported",
]

CACHE_SECONDS = 5.0
MAX_TYPE = 255  # the table's key (storage/schema/clients.py)
MAX_DESCRIBE = 500
MAX_SCHEMA_BYTES = 64 * 1024
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# A template field: {amount}, or a path into nested objects, {instructedAmount.amount}.
TEMPLATE_FIELD = re.compile(r"\{([A-Za-z0-9_$-]{1,64}(?:\.[A-Za-z0-9_$-]{1,64}){0,7})\}")


class DetailTypeError(ValueError):
    """What the operator asked for cannot be registered; the message says why."""


@dataclass(frozen=True, slots=True)
class DetailType:
    type: str
    schema: dict[str, Any]
    describe: str
    created_at: int
    # Built once per registry read. registry=Registry(): a "$ref" resolves inside the schema only, never by
    # fetching a URL (jsonschema would otherwise retrieve remote references: a server-side request forgery).
    validator: Draft202012Validator = field(compare=False, repr=False)

    @property
    def fields(self) -> tuple[str, ...]:
        """The template's fields, in order (``TEMPLATE_FIELD``)."""
        return tuple(m.group(1) for m in TEMPLATE_FIELD.finditer(self.describe))

    @property
    def open(self) -> bool:
        """Whether the schema admits fields it does not name (JSON Schema ``additionalProperties`` or
        ``unevaluatedProperties`` other than false). Otherwise a request's fields are those it names: a field the
        type does not define is neither shown to the person nor judged by anyone, so it is refused (RFC 9396 §5)."""
        return any(
            name in self.schema and self.schema[name] is not False
            for name in ("additionalProperties", "unevaluatedProperties")
        )

    def defines(self, name: str) -> bool:
        if name in (self.schema.get("properties") or {}):
            return True
        patterns = self.schema.get("patternProperties") or {}
        return any(re.search(p, name) for p in patterns)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=Registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _loaded(row: DetailTypeRow) -> DetailType:
    schema = json.loads(row.schema)
    return DetailType(row.type, schema, row.describe, row.created_at, _validator(schema))


# Per engine (one per Frontdesk): (monotonic time, types by name, their names for discovery).
_cache: weakref.WeakKeyDictionary[Engine, tuple[float, dict[str, DetailType], tuple[str, ...]]] = (
    weakref.WeakKeyDictionary()
)


def _read(fd: Frontdesk, fresh: bool) -> tuple[float, dict[str, DetailType], tuple[str, ...]]:
    cached = _cache.get(fd.engine)
    if not fresh and cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached
    types = {row.type: _loaded(row) for row in all_detail_types(fd.engine)}
    # The same tuple object while nothing changed, so discovery can tell when to render its document again.
    names = tuple(types)
    if cached is not None and cached[2] == names:
        names = cached[2]
    read = (time.monotonic(), types, names)
    _cache[fd.engine] = read
    return read


def detail_types(fd: Frontdesk, fresh: bool = False) -> Mapping[str, DetailType]:
    """Every registered type by name, as this process read it at most ``CACHE_SECONDS`` ago (or now, ``fresh``)."""
    return _read(fd, fresh)[1]


def types_supported(fd: Frontdesk) -> tuple[str, ...]:
    """RFC 9396 §10.1 ``authorization_details_types_supported``."""
    return _read(fd, False)[2]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _checked_schema(text: str) -> dict[str, Any]:
    if len(text.encode()) > MAX_SCHEMA_BYTES:
        raise DetailTypeError(f"the schema is larger than {MAX_SCHEMA_BYTES // 1024} KiB")
    try:
        schema = json.loads(text)
    except (ValueError, RecursionError):
        raise DetailTypeError("the schema is not JSON") from None
    if not isinstance(schema, dict):
        raise DetailTypeError("the schema must be a JSON object (a JSON Schema for one authorization detail)")
    if schema.get("$schema", DRAFT_2020_12).rstrip("#") != DRAFT_2020_12:
        raise DetailTypeError(f"frontdesk validates with JSON Schema Draft 2020-12; $schema must be {DRAFT_2020_12}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise DetailTypeError(f"the schema is not a valid JSON Schema at {where}: {exc.message}") from None
    remote = [r for r in _refs(schema) if not r.startswith("#")]
    if remote:
        raise DetailTypeError(f"the schema refers outside itself ({remote[0]!r}); put definitions under $defs")
    if schema.get("additionalProperties") is False and "type" not in (schema.get("properties") or {}):
        # RFC 9396 §2: every object carries "type"; a closed schema that does not name it refuses every request.
        raise DetailTypeError('the schema sets additionalProperties to false but does not name the "type" field')
    return schema


def _checked_describe(describe: str) -> str:
    describe = " ".join(describe.split())
    if not describe or len(describe) > MAX_DESCRIBE or not describe.isprintable():
        raise DetailTypeError(f"describe the type in plain words (1 to {MAX_DESCRIBE} printable characters)")
    return describe


def create(fd: Frontdesk, type_: str, schema: str, describe: str) -> DetailType:
    """Register a type, audited as ``authorization_detail_type.created``. RFC 9396 §2: a type is a string; this
    server keeps it printable ASCII without spaces (a URI, as §2 suggests for collision resistance, fits)."""
    if not type_ or len(type_) > MAX_TYPE or not (type_.isascii() and type_.isprintable()) or " " in type_:
        raise DetailTypeError(f"a type is 1 to {MAX_TYPE} printable ASCII characters without spaces")
    checked, describe = _checked_schema(schema), _checked_describe(describe)
    text = json.dumps(checked, separators=(",", ":"), ensure_ascii=False)
    try:
        with transaction(fd.engine) as conn:
            if detail_type_named(conn, type_) is not None:
                raise DetailTypeError(f"type {type_!r} is registered already")
            row = insert_detail_type(conn, type_=type_, schema=text, describe=describe, at=now())
            audit.record(conn, "authorization_detail_type.created", "success", type=type_, describe=describe)
    except IntegrityError:
        raise DetailTypeError(f"type {type_!r} was registered meanwhile") from None
    _cache.pop(fd.engine, None)
    return _loaded(row)


def listed(fd: Frontdesk) -> list[DetailType]:
    return [_loaded(r) for r in all_detail_types(fd.engine)]


def shown(fd: Frontdesk, type_: str) -> DetailType | None:
    row = detail_type_named(fd.engine, type_)
    return _loaded(row) if row is not None else None


def delete(fd: Frontdesk, type_: str) -> DetailType | None:
    """Remove a type, audited as ``authorization_detail_type.deleted``; None when there is none of that name. New
    requests of it are refused from then on; grants that hold details of it keep them (what the person approved
    stands until it is revoked) and the pages show them as their JSON."""
    with transaction(fd.engine) as conn:
        row = delete_detail_type(conn, type_)
        if row is not None:
            audit.record(conn, "authorization_detail_type.deleted", "success", type=type_)
    _cache.pop(fd.engine, None)
    return _loaded(row) if row is not None else None
