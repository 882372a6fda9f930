"""Auditor sessions for the decision pages: a browser cannot send a bearer header from a link.

Signing in with an auditor token puts the token's configured SHA-256 digest (never the token) and the
time in Flask's signed session cookie. The session ends after MAX_AGE, at sign-out, or as soon as the
digest is removed from AUDITOR_TOKEN_HASHES, so revoking a token also revokes the sessions it opened.

The cookie is HttpOnly, SameSite=Strict, Secure when the request came over https (or PUBLIC_BASE_URL is
https behind a proxy), and scoped to the decision pages' path: no other page ever receives it. Forms
that change something carry a per-session CSRF token, compared in constant time.

The key that signs the cookie is SECRET_KEY, or one generated into the instance folder on first run
(mode 0600), like the decision log's HMAC key.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from pathlib import Path

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface

from ... import keyfiles
from ...decisions import ConfigurationError
from .. import app_context
from . import auditors

log = logging.getLogger(__name__)

KEY_FILE = "session-secret.key"
MIN_SECRET_CHARS = 32
MAX_AGE = 12 * 60 * 60  # seconds a sign-in lasts, whatever the browser does with its cookie
COOKIE_NAME = "auditor_session"
PATH = "/decisions"
CSRF_FIELD = "csrf_token"


def secret_key(configured: str, instance_path: str | Path) -> str:
    """SECRET_KEY, or the instance folder's generated one; ConfigurationError for a short one."""
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"SECRET_KEY must be at least {MIN_SECRET_CHARS} characters, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return configured
    path = Path(instance_path) / KEY_FILE
    key, created = keyfiles.read_or_create(path)
    if created:
        log.warning(
            "SECRET_KEY is not set: generated a key for signing auditor sessions in %s. Set SECRET_KEY when "
            "several replicas serve the pages, so that a session signed by one is valid on the others.",
            path,
        )
    if len(key) < MIN_SECRET_CHARS:
        raise ConfigurationError(f"{path} does not hold a key of at least {MIN_SECRET_CHARS} characters")
    return key


class AuditorSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure per request and limited to the decision pages' path."""

    def get_cookie_secure(self, app: Flask) -> bool:
        behind_https = app_context.settings(app).public_base_url.startswith("https://")
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure or behind_https

    def get_cookie_path(self, app: Flask) -> str:
        return request.script_root.rstrip("/") + PATH


def init_app(app: Flask) -> None:
    app.secret_key = secret_key(app_context.settings(app).secret_key, app.instance_path)
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.session_interface = AuditorSessionInterface()


def signed_in() -> bool:
    """Whether the session belongs to a signed-in auditor whose token is still configured and not expired."""
    digest, since = session.get("auditor"), session.get("since")
    if not isinstance(digest, str) or not isinstance(since, int):
        return False
    if not 0 <= time.time() - since < MAX_AGE or not auditors.is_configured(digest):
        sign_out()
        return False
    return True


def sign_in(digest: str) -> None:
    """Start a fresh session (a new CSRF token too) for the token with this configured digest."""
    session.clear()
    session["auditor"] = digest
    session["since"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def csrf_token() -> str:
    """The session's CSRF token, created on first use (the sign-in form needs one before any sign-in)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    expected, given = session.get("csrf"), request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())
