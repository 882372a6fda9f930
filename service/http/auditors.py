"""Auditor credentials: bearer tokens whose SHA-256 digests are configured in AUDITOR_TOKEN_HASHES.

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

from flask import Response, current_app, request

from ..decisions import ConfigurationError
from .errors import problem

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


def _challenge(error: str | None) -> Response:
    detail = "Send an auditor token: `Authorization: Bearer <token>`."
    response = problem(401, "Unauthorized", detail)
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def require_auditor() -> Response | None:
    """A before_request hook: None lets the request through, else the 401 response."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _challenge(None)
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    matched = False
    for known in token_hashes(current_app.config["AUDITOR_TOKEN_HASHES"]):
        matched |= hmac.compare_digest(digest, known)
    return None if matched else _challenge("invalid_token")
