"""A loopback OpenID Connect provider for the tests: a stand-in for an institution's identity server.

It speaks the real protocol over real HTTP: discovery (/.well-known/openid-configuration), a JWKS with
an RSA (RS256) and an EC P-256 (ES256) key generated with `cryptography`, an authorization endpoint that
issues a code for the user the test chose, and a token endpoint for `authorization_code` (with the PKCE
S256 check) and `client_credentials`. Every request is counted by path, so a test can see how often the
service fetched the keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "hairloss-pages"
AUDIENCE = "https://hairloss.example/api"


@dataclass
class Provider:
    issuer: str = ""
    rsa_key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec_key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    user_roles: list[str] = field(default_factory=lambda: ["hairloss-clinician"])
    clients: dict[str, list[str]] = field(default_factory=dict)  # client id -> roles for client_credentials
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key, alg in (("rsa-1", self.rsa_key, "RS256"), ("ec-1", self.ec_key, "ES256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        }

    def token(self, alg: str = "RS256", kid: str | None = None, key: Any = None, **claims: Any) -> str:
        """A signed JWT of this provider; claims override the defaults (None removes one)."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        signing = key if key is not None else (self.rsa_key if alg.startswith("RS") else self.ec_key)
        kid = kid if kid is not None else ("rsa-1" if alg.startswith("RS") else "ec-1")
        return jwt.encode(body, signing, algorithm=alg, headers={"kid": kid})


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            provider.hits[url.path] += 1
            if url.path == "/.well-known/openid-configuration":
                return self._json(200, provider.metadata())
            if url.path == "/jwks":
                return self._json(200, provider.jwks())
            if url.path == "/authorize":
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
                    return self._json(400, {"error": "invalid_request"})
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {**q, "roles": list(provider.user_roles)}
                target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            provider.hits[self.path] += 1
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            provider.token_requests.append(form)
            if self.path != "/token":
                return self._json(404, {"error": "not_found"})
            if form.get("grant_type") == "client_credentials":
                client = form.get("client_id", "")
                if client not in provider.clients:
                    return self._json(401, {"error": "invalid_client"})
                access = provider.token(sub=client, roles=provider.clients[client])
                return self._json(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300})
            grant = provider.codes.pop(form.get("code", ""), None)
            if form.get("grant_type") != "authorization_code" or grant is None:
                return self._json(400, {"error": "invalid_grant"})
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if challenge != grant["code_challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
                return self._json(400, {"error": "invalid_grant", "error_description": "PKCE or redirect_uri"})
            claims = {"aud": grant["client_id"], "nonce": grant.get("nonce"), "roles": grant["roles"], "sub": "dr-1"}
            id_token = provider.token(**claims)
            access = provider.token(roles=grant["roles"], sub="dr-1")
            return self._json(
                200, {"access_token": access, "id_token": id_token, "token_type": "Bearer", "expires_in": 300}
            )

    return Handler


@contextmanager
def running() -> Iterator[Provider]:
    """The provider on 127.0.0.1 and a free port, for the duration of the block."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
