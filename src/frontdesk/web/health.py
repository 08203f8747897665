"""``/healthz``, ``/readyz`` and, with ``[metrics] public = true``, ``/metrics`` on the public listener.

``/healthz`` says the process answers and touches nothing else: a liveness probe that failed with the database
would have an orchestrator restart every process during a database outage, which fixes nothing. ``/readyz`` runs
the checks of ``frontdesk.admin.readiness`` (database, migrations, signing keys) and answers 503 with the same JSON when
one fails, naming it; never a stack trace.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .. import metrics
from ..admin import readiness
from ..core import Frontdesk
from .http import NO_STORE, json_response

__all__ = ["healthz", "metrics_page", "readyz"]


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    report = await readiness.probe(fd)
    return json_response(report.as_dict(), 200 if report.ready else 503)


async def metrics_page(request: Request) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, headers=NO_STORE, media_type=content_type)
