"""The Authlib server as most deployments run it: Flask, Authlib's Flask integration, gunicorn.

The same grant, client and tokens as ``authlib_server.py`` (client_credentials, client_secret_basic, RFC 9068 JWT
access tokens signed ES256, everything in memory); only the web stack differs. Its own virtual environment
(``bench/peers/authlib_flask/requirements.txt``), so that Flask never lands in frontdesk's.

    BENCH_ISSUER=http://127.0.0.1:PORT BENCH_SECRET=… gunicorn -k gthread --threads 8 -w 1 app:app
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Flask
from joserfc.jwk import ECKey, KeySet

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


class TokenGenerator(JWTBearerTokenGenerator):
    def __init__(self, issuer: str) -> None:
        super().__init__(issuer, alg="ES256")
        self.keys = KeySet([ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256"}, private=True)])

    def get_jwks(self) -> KeySet:
        return self.keys

    def get_audiences(self, client: Any, user: Any, scope: str) -> str:
        return RESOURCE


clients = {"bench": Client("bench", os.environ["BENCH_SECRET"])}
tokens: dict[str, Any] = {}


def save_token(token: dict[str, Any], request: Any) -> None:
    if len(tokens) > 100_000:
        tokens.clear()
    tokens[token["access_token"][-16:]] = token


app = Flask(__name__)
server = AuthorizationServer(app, query_client=clients.get, save_token=save_token)
server.register_grant(grants.ClientCredentialsGrant)
server.register_token_generator("default", TokenGenerator(os.environ["BENCH_ISSUER"]))


@app.post("/token")
def token() -> Any:
    return server.create_token_response()
