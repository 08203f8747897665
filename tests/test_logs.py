"""Logs: JSON lines, and no secret in them even at DEBUG."""

from __future__ import annotations

import io
import json
import logging

from conftest import basic, code_for
from frontdesk.logs import JsonFormatter, redact


def test_redaction_masks_every_secret_shape():
    """Prefixed tokens, JWTs, Basic/Bearer credentials and secret-bearing parameters are masked."""
    line = (
        "fd_rt_abcDEF123 eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl Authorization: Basic Zm9vOmJhcg== "
        "Bearer abc.def /device?user_code=BCDF-GHJK password=hunter2 client_secret=s3cr3t"
    )
    masked = redact(line)
    for secret in ("abcDEF123", "c2lnbmF0dXJl", "Zm9vOmJhcg==", "abc.def", "BCDF-GHJK", "hunter2", "s3cr3t"):
        assert secret not in masked


def test_formatter_writes_one_json_object_per_line():
    """Each record is one JSON object with its extra fields."""
    record = logging.LogRecord("frontdesk", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.client_id = "c1"
    data = json.loads(JsonFormatter().format(record))
    assert data["msg"] == "hello world"
    assert data["client_id"] == "c1"
    assert data["level"] == "info"


async def test_a_whole_flow_at_debug_logs_no_secret(http, browser, confidential, person):
    """A whole flow at DEBUG leaves no token, code, secret or password in the log."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        code, verifier = await code_for(browser, confidential)
        tokens = (
            await http.post(
                "/token",
                auth=basic(confidential),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": confidential.redirect_uri,
                    "code_verifier": verifier,
                },
            )
        ).json()
        refreshed = (
            await http.post(
                "/token",
                auth=basic(confidential),
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            )
        ).json()
        await http.post(
            "/token",
            auth=basic(confidential),
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )  # reuse: logged as theft
        await http.post("/introspect", auth=basic(confidential), data={"token": refreshed["access_token"]})
        await http.post(
            "/token", auth=(confidential.client_id, "wrong-secret-value"), data={"grant_type": "client_credentials"}
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    log = stream.getvalue()
    assert log, "the flow logged nothing at DEBUG"
    secrets = [
        code,
        verifier,
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        confidential.secret,
        person[1],
        "wrong-secret-value",
    ]
    for secret in secrets:
        assert secret not in log
