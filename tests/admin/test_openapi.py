"""The admin API's OpenAPI 3.1 document (web/admin_openapi.py): served without a token, and naming exactly the
operations the API routes (web/admin_api.py), each with the responses it can give."""

from __future__ import annotations

import httpx
import schemathesis

from conftest import ISSUER
from frontdesk.web.admin_api import OPERATIONS
from frontdesk.web.admin_openapi import document

from .admin_api import V1

METHODS = {"get", "put", "post", "patch", "delete"}


async def test_the_document_is_served_to_anyone(http: httpx.AsyncClient):
    response = await http.get(V1 + "/openapi.json")
    assert response.status_code == 200
    served = response.json()
    assert served["openapi"] == "3.1.0"
    assert served["servers"] == [{"url": ISSUER + V1}]


def test_the_document_covers_every_route_and_no_other():
    paths = document(ISSUER)["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item if method in METHODS}
    assert documented == {(op.method, op.path) for op in OPERATIONS}


def test_every_operation_documents_its_refusals():
    for item in document(ISSUER)["paths"].values():
        for method, operation in item.items():
            if method in METHODS:
                assert {"400", "401", "403", "422"} <= set(operation["responses"]), operation["operationId"]


def test_the_document_is_valid_openapi():
    """schemathesis loads and validates it (its references resolve, its schemas are JSON Schema)."""
    schema = schemathesis.openapi.from_dict(document(ISSUER))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(OPERATIONS)


async def test_head_and_unrouted_methods_are_no_server_error(owner, http: httpx.AsyncClient):
    """HEAD answers as GET does, without a body; a method no operation has is 405."""
    head = await http.head(V1 + "/clients", headers=owner.headers)
    assert head.status_code == 200
    assert head.content == b""
    assert (await http.request("PATCH", V1 + "/keys", headers=owner.headers)).status_code == 405
