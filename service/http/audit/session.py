"""Auditor sessions for the decision pages: a browser cannot send a bearer header from a link.

Signing in with an auditor token puts the token's configured SHA-256 digest (never the token) and the
time in Flask's signed session cookie. The session ends after MAX_AGE, at sign-out, or as soon as the
digest is removed from AUDITOR_TOKEN_HASHES, so revoking a token also revokes the sessions it opened.

The cookie is HttpOnly, SameSite=Strict, Secure when the request came over https (or PUBLIC_BASE_URL is
https behind a proxy), and scoped to the decision pages' path: no other page ever receives it. Forms
that change something carry a per-session CSRF token, compared in constant time.

Signing out is also remembered server-side: each sign-in gets a random session id, and signing out
stores its SHA-256 in the database (the decision log's, shared by every worker and replica) until the
session would have expired, so a copied cookie stops working at once instead of living out its 12 hours.

The key that signs the cookie is SECRET_KEY, or one generated into the instance folder on first run
(mode 0600), like the decision log's HMAC key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from pathlib import Path

from flask import Flask, current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ... import keyfiles
from ...decisions import ConfigurationError, LogError
from ...decisions.models import RevokedSession
from .. import app_context
from . import auditors

log = logging.getLogger(__name__)

KEY_FILE = "session-secret.key"
MIN_SECRET_CHARS = 32
MAX_AGE = 12 * 60 * 60  # seconds a sign-in lasts, whatever the browser does with its cookie
COOKIE_NAME = "auditor_session"
CLINICIAN_COOKIE_NAME = "clinician_session"
PATH = "/decisions"
CSRF_FIELD = "csrf_token"
REVOCATIONS = "auditor_revocations"


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


def _auditor_request() -> bool:
    path = request.path
    return path == PATH or path.startswith(PATH + "/")


class AuditorSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure per request and limited to the decision pages' path.

    The clinicians' pages have a cookie of their own (CLINICIAN_COOKIE_NAME, service/http/pages/
    clinician_session.py): everywhere but under /decisions the session is that one, so neither kind of
    sign-in is ever sent to, or readable by, the other's pages. The clinicians' cookie is SameSite=Lax,
    not Strict: the OIDC provider's redirect back to the callback is a cross-site navigation, and a Strict
    cookie would not come with it (the sign-in's state and PKCE verifier live in the session); the form's
    POST carries a CSRF token instead.
    """

    def get_cookie_name(self, app: Flask) -> str:
        return COOKIE_NAME if _auditor_request() else CLINICIAN_COOKIE_NAME

    def get_cookie_secure(self, app: Flask) -> bool:
        behind_https = app_context.settings(app).public_base_url.startswith("https://")
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure or behind_https

    def get_cookie_path(self, app: Flask) -> str:
        return request.script_root.rstrip("/") + (PATH if _auditor_request() else "/")

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict" if _auditor_request() else "Lax"


def init_app(app: Flask) -> None:
    app.secret_key = secret_key(app_context.settings(app).secret_key, app.instance_path)
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.session_interface = AuditorSessionInterface()


class Revocations:
    """Session ids ended by signing out, in a table every worker and replica shares."""

    PURGE_EVERY_S = 300.0
    table = RevokedSession.__table__

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._last_purge = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def _key(sid: str) -> str:
        return hashlib.sha256(sid.encode("utf-8")).hexdigest()

    def revoke(self, sid: str, until: int) -> None:
        """Remember until `until` (epoch seconds) that this session has ended; raises LogError if it cannot."""
        try:
            self._purge()
            with self.engine.begin() as conn:
                conn.execute(insert(self.table).values(key=self._key(sid), expires_at=until))
        except IntegrityError:
            return  # signed out twice
        except SQLAlchemyError as exc:
            raise LogError(f"cannot record the sign-out ({type(exc).__name__})") from None

    def is_revoked(self, sid: str) -> bool:
        """Whether the session has ended; a database that cannot answer counts as ended (fail closed)."""
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(self.table.c.key).where(self.table.c.key == self._key(sid))).first()
        except SQLAlchemyError:
            log.warning("decision pages: cannot read the revoked sessions; treating the session as ended")
            return True
        return found is not None

    def _purge(self) -> None:
        now = time.time()
        with self._lock:
            if now - self._last_purge < self.PURGE_EVERY_S:
                return
            self._last_purge = now
        with self.engine.begin() as conn:
            conn.execute(delete(self.table).where(self.table.c.expires_at < int(now)))


def revocations() -> Revocations:
    """The app's record of ended sessions (auditors' and clinicians' alike: session ids are random)."""
    return _revocations()


def _revocations() -> Revocations:
    found = current_app.extensions.get(REVOCATIONS)
    if found is None:
        found = current_app.extensions[REVOCATIONS] = Revocations(app_context.decision_log().engine)
    return found


def signed_in() -> bool:
    """Whether the session belongs to a signed-in auditor whose token is still configured, who has not
    signed out (anywhere) and whose session has not expired."""
    digest, since, sid = session.get("auditor"), session.get("since"), session.get("sid")
    if not isinstance(digest, str) or not isinstance(since, int) or not isinstance(sid, str):
        return False
    if not 0 <= time.time() - since < MAX_AGE or not auditors.is_configured(digest):
        session.clear()
        return False
    if _revocations().is_revoked(sid):
        session.clear()
        return False
    return True


def sign_in(digest: str) -> None:
    """Start a fresh session (a new id and CSRF token too) for the token with this configured digest."""
    session.clear()
    session["auditor"] = digest
    session["since"] = int(time.time())
    session["sid"] = secrets.token_urlsafe(32)
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    """End the session here and everywhere: the cookie is cleared and its id is remembered as ended."""
    sid, since = session.get("sid"), session.get("since")
    if isinstance(sid, str) and isinstance(since, int):
        _revocations().revoke(sid, since + MAX_AGE + 60)
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
