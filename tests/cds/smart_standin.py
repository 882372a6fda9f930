"""A loopback SMART on FHIR EHR for tests: its `.well-known/smart-configuration`, an authorization endpoint
(EHR launch, authorization code with PKCE S256 only) and a token endpoint that checks the code verifier,
the redirect URI, the client and the launch, and the FHIR server (FhirStandIn) behind the bearer token.

It speaks the protocol over real HTTP on 127.0.0.1: the service under test is an ordinary client of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .helpers import FhirStandIn


class SmartEhr:
    def __init__(self, client_id: str, patient_id: str, resources: list[dict[str, Any]]) -> None:
        self.client_id = client_id
        self.patient_id = patient_id
        self.access_token = secrets.token_urlsafe(24)
        self.fhir = FhirStandIn(self.access_token, resources)
        self.launches: set[str] = set()
        self.codes: dict[str, dict[str, str]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.fhir_requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def iss(self) -> str:
        return self.base + "/fhir"

    def new_launch(self) -> str:
        launch = secrets.token_urlsafe(12)
        self.launches.add(launch)
        return launch

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.fhir.close()

    # ---- the protocol ---------------------------------------------------------------------------------

    def configuration(self) -> dict[str, Any]:
        return {
            "authorization_endpoint": self.base + "/auth/authorize",
            "token_endpoint": self.base + "/auth/token",
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient", "permission-v1"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["launch", "openid", "fhirUser", "patient/*.read"],
        }

    def authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str]]:
        """302 back to the redirect URI with a code, or with `error` (RFC 6749 §4.1.2.1)."""
        self.authorize_requests.append(q)
        redirect = q.get("redirect_uri", "")
        ok = (
            q.get("response_type") == "code"
            and q.get("client_id") == self.client_id
            and q.get("launch") in self.launches
            and q.get("aud") == self.iss
            and {"launch", "patient/Patient.read"} <= set(q.get("scope", "").split())
            and q.get("code_challenge_method") == "S256"
            and len(q.get("code_challenge", "")) >= 43
            and bool(q.get("state"))
        )
        if not ok:
            return 302, {
                "Location": f"{redirect}?{urlencode({'error': 'invalid_request', 'state': q.get('state', '')})}"
            }
        self.launches.discard(q["launch"])
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": redirect, "scope": q["scope"]}
        return 302, {"Location": f"{redirect}?{urlencode({'code': code, 'state': q['state']})}"}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)  # a code is good once
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if digest != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        return 200, {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": grant["scope"],
            "patient": self.patient_id,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ehr = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/fhir/.well-known/smart-configuration":
                    self._send(200, ehr.configuration())
                elif parts.path == "/auth/authorize":
                    status, headers = ehr.authorize({k: v[0] for k, v in parse_qs(parts.query).items()})
                    self._send(status, None, headers)
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    ehr.fhir_requests.append({"path": self.path, "headers": headers})
                    status, body = ehr.fhir._handle(self.path, headers)
                    self._send(status, body)

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/auth/token":
                    self._send(404, {"error": "not_found"})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = ehr.token(form)
                self._send(status, body, {"Cache-Control": "no-store"})

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
