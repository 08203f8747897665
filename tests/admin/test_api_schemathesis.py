"""The admin API against its own OpenAPI 3.1 document, by schemathesis, on SQLite and PostgreSQL: for generated
requests to every operation, no 5xx; every answer's status, content type, headers and body as the document says; no
operation served without a valid token; no method served that the document does not name. A bounded number of
examples per operation keeps a run under a minute per database.

``POST /upstreams`` is left to tests/admin/test_api_catalog.py: with a discovery URL it fetches the URL, which
generated data would point anywhere on the network."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import ignored_auth, not_a_server_error, unsupported_method
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ISSUER
from frontdesk.core import Frontdesk
from frontdesk.web import create_app
from frontdesk.web.admin_openapi import document

from .admin_api import bearer, token_for

EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,  # without the token, or with a wrong one, every operation refuses (401)
    unsupported_method,  # a method the document does not give a path is 405
]


@pytest.fixture
def served_app(fd: Frontdesk) -> Iterator[Any]:
    app = create_app(fd)
    yield app
    asyncio.run(app.state.vault_http.aclose())  # the lifespan would


@pytest.fixture
def owner_token(fd: Frontdesk, secrets_seen: set[str]) -> str:
    return token_for(fd, secrets_seen, "owner")


# The document as served (tests/admin/test_openapi.py checks that it is), loaded once; each test's requests go to the
# app of its own database.
schema = schemathesis.openapi.from_dict(document(ISSUER))


@schema.exclude(method="POST", path="/upstreams").parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_the_admin_api_keeps_to_its_document(case: Any, served_app: Any, owner_token: str) -> None:
    # This test's app (its own database), for the case and for the probes a check sends of its own (ignored_auth).
    case.operation.app = case.operation.schema.app = served_app
    case.call_and_validate(headers=bearer(owner_token), checks=CHECKS)
