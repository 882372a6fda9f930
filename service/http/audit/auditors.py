"""Auditor credentials: bearer tokens whose SHA-256 digests are configured in AUDITOR_TOKEN_HASHES, or
OIDC bearer JWTs whose roles claim maps to `auditor` (service/http/access: credentials, roles).

Only digests are configured, so the environment (and anything that dumps it) never holds a usable
token. Every configured digest is compared in constant time, so the response time says nothing about
how close a guess was. A missing or wrong token is 401 with a `WWW-Authenticate: Bearer` challenge
(RFC 6750); the response does not say which.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Response, current_app, g, request

from ...config import token_hashes
from ..access import roles
from ..errors import problem

REALM = "decision-log"


def challenge(error: str | None) -> Response:
    """401 with the RFC 6750 challenge; it never says whether a token was close or which part was wrong."""
    detail = "Send an auditor token: `Authorization: Bearer <token>`."
    response = problem(401, "Unauthorized", detail)
    header = f'Bearer realm="{REALM}"'
    if error:
        header += f', error="{error}"'
    response.headers["WWW-Authenticate"] = header
    return response


def matching_digest(token: str) -> str | None:
    """The configured digest this token hashes to, or None; every digest is compared, in constant time."""
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    found = None
    # Read per request (parsed once per value): an operator can revoke a token by changing the setting.
    for known in token_hashes(current_app.config["AUDITOR_TOKEN_HASHES"]):
        if hmac.compare_digest(digest, known):
            found = known
    return found


def is_configured(digest: str) -> bool:
    """Whether a digest remembered earlier (a signed-in session) is still configured: revoking a token ends it."""
    matched = False
    # Read per request (parsed once per value): an operator can revoke a token by changing the setting.
    for known in token_hashes(current_app.config["AUDITOR_TOKEN_HASHES"]):
        matched |= hmac.compare_digest(digest, known)
    return matched


def bearer_token() -> str | None:
    """The bearer token of the request; "" for an Authorization header that is not a bearer token."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def check_bearer() -> Response | None:
    """None if the request's bearer credential (a static auditor token or an OIDC JWT with the auditor role)
    holds the auditor role, else the response: the bare 401 challenge, or 503 if the identity provider
    that must check a JWT cannot be reached."""
    token = bearer_token()
    if not token:
        return challenge(None)
    try:
        principal, _ = roles.bearer_principal()
    except roles.ProviderUnavailable:
        return roles.unavailable()
    if principal is None or not principal.has("auditor"):
        return challenge("invalid_token")
    g.principal = principal
    return None


def require_auditor() -> Response | None:
    """A before_request hook: None lets the request through, else the 401 response."""
    return check_bearer()
