"""Auditor credentials: bearer tokens whose SHA-256 digests are configured in AUDITOR_TOKEN_HASHES, or
OIDC bearer JWTs whose roles claim maps to `auditor` (service/http/access: credentials, roles).

Only digests are configured, so the environment (and anything that dumps it) never holds a usable
token. Every configured digest is compared in constant time, so the response time says nothing about
how close a guess was. A missing or wrong token is 401 with a `WWW-Authenticate: Bearer` challenge
(RFC 6750); the response does not say which.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re

from flask import Response, current_app, g, request

from ...decisions import ConfigurationError
from ..access import roles
from ..errors import problem

REALM = "decision-log"
DIGEST = re.compile(r"^[0-9a-f]{64}$")


@functools.lru_cache(maxsize=8)
def token_hashes(configured: str) -> frozenset[str]:
    """Parse AUDITOR_TOKEN_HASHES (comma-separated lower-case hex SHA-256 digests)."""
    digests = [d.strip().lower() for d in configured.split(",") if d.strip()]
    bad = [d for d in digests if not DIGEST.match(d)]
    if bad:
        raise ConfigurationError(
            "AUDITOR_TOKEN_HASHES must list SHA-256 hex digests of auditor tokens, separated by commas "
            "(make one with `printf %s TOKEN | sha256sum`); "
            f"{len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} not 64 hex characters"
        )
    return frozenset(digests)


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
    for known in token_hashes(current_app.config["AUDITOR_TOKEN_HASHES"]):
        if hmac.compare_digest(digest, known):
            found = known
    return found


def is_configured(digest: str) -> bool:
    """Whether a digest remembered earlier (a signed-in session) is still configured: revoking a token ends it."""
    matched = False
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
