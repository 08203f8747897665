"""A minimal Authlib authorization server, the Python peer for the client_credentials scenario.

What an Authlib tutorial builds: ``AuthorizationServer`` with the ``ClientCredentialsGrant``, client_secret_basic, JWT
access tokens (RFC 9068, ES256) from Authlib's ``JWTBearerTokenGenerator``, clients and issued tokens in memory.
Served the way frontdesk is (Starlette under uvicorn, one process), so the comparison is of the two applications.

    python bench/peers/authlib_server.py PORT CLIENT_SECRET
"""

from __future__ import annotations

import hmac
import json
import sys
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import ECKey, KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

RESOURCE = "https://api.bench.example"


class Client(ClientMixin):
    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id, self.secret = client_id, secret

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s == "api.read")

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class Payload(OAuth2Payload):
    def __init__(self, form: dict[str, str], pairs: list[tuple[str, str]]) -> None:
        self._form, self._pairs = form, pairs

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for k, v in self._pairs:
            values[k].append(v)
        return values


class StarletteRequest(OAuth2Request):
    def __init__(self, method: str, url: str, headers: Any, body: bytes) -> None:
        super().__init__(method=method, uri=url, headers=headers)
        pairs = parse_qsl(body.decode())
        self._form = dict(pairs)
        self.payload = Payload(self._form, pairs)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class TokenGenerator(JWTBearerTokenGenerator):
    def __init__(self, issuer: str) -> None:
        super().__init__(issuer, alg="ES256")
        self.keys = KeySet([ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256"}, private=True)])

    def get_jwks(self) -> KeySet:
        return self.keys

    def get_audiences(self, client: Any, user: Any, scope: str) -> str:
        return RESOURCE


class Server(AuthorizationServer):
    def __init__(self, issuer: str, secret: str) -> None:
        super().__init__(scopes_supported=["api.read"])
        self.clients = {"bench": Client("bench", secret)}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_token_generator("default", TokenGenerator(issuer))

    def query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        # In memory, bounded: a minimal server has nowhere else to put it.
        if len(self.tokens) > 100_000:
            self.tokens.clear()
        self.tokens[token["access_token"][-16:]] = token

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request  # type: ignore[no-any-return]

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return Response(json.dumps(body), status_code=status, headers=dict(headers))


def app(issuer: str, secret: str) -> Starlette:
    server = Server(issuer, secret)

    async def token(request: Request) -> Response:
        body = await request.body()
        req = StarletteRequest(request.method, str(request.url), request.headers, body)
        return server.create_token_response(req)  # type: ignore[no-any-return]

    return Starlette(routes=[Route("/token", token, methods=["POST"])])


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(app(f"http://127.0.0.1:{port}", sys.argv[2]), host="127.0.0.1", port=port, log_level="warning")
