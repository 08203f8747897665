"""``frontdesk serve --demo``: the landing page of the demo client, so a newcomer sees the code arrive and the
exact command that exchanges it. Served only in demo mode; the demo client is public and PKCE-bound, so showing
its code verifier here gives nothing away that the terminal did not."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from .pages import page

__all__ = ["DemoClient", "callback"]


@dataclass(frozen=True, slots=True)
class DemoClient:
    client_id: str
    redirect_uri: str
    code_verifier: str
    token_endpoint: str

    def curl(self, code: str) -> str:
        return " ".join(
            [
                "curl -s",
                shlex.quote(self.token_endpoint),
                "-d grant_type=authorization_code",
                f"-d client_id={shlex.quote(self.client_id)}",
                f"-d redirect_uri={shlex.quote(self.redirect_uri)}",
                f"-d code_verifier={shlex.quote(self.code_verifier)}",
                f"-d code={shlex.quote(code)}",
            ]
        )


async def callback(request: Request) -> Response:
    demo: DemoClient = request.app.state.demo
    params = request.query_params
    if "error" in params:
        return page(
            "demo.html",
            title="The demo app was refused",
            error=params["error"],
            description=params.get("error_description", ""),
            params=sorted(params.items()),
        )
    code = params.get("code", "")
    return page("demo.html", title="The demo app got a code", params=sorted(params.items()), curl=demo.curl(code))
