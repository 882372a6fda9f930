"""Clinician sessions for the form and answer pages: a browser cannot send a bearer header from a link.

The same approach as the auditors' (service/http/audit/session.py), in a cookie of its own: a sign-in -
with a clinician token (its configured digest is kept, never the token) or with the OIDC provider
(authorization code + PKCE; a hash of `iss` and `sub` is kept) - stores the subject, the time and a random
session id in Flask's signed cookie. The session ends after MAX_AGE, at sign-out (remembered server-side
in the shared revoked-sessions table, so a copied cookie stops working in every worker), or as soon as a
token's digest is removed from CLINICIAN_TOKEN_HASHES. A POST from a signed-in session needs the session's
CSRF token.
"""

from __future__ import annotations

import secrets
import time

from flask import current_app, session

from ..access import roles
from ..access.credentials import Principal
from ..audit import session as auditor_session

MAX_AGE = auditor_session.MAX_AGE
KEY = "clinician"


def signed_in() -> Principal | None:
    """The signed-in clinician, if the session is current, not signed out and (for a token) still configured."""
    who, since, sid = session.get(KEY), session.get("since"), session.get("sid")
    if not isinstance(who, dict) or not isinstance(since, int) or not isinstance(sid, str):
        return None
    subject, digest = who.get("subject"), who.get("digest")
    if not isinstance(subject, str) or not 0 <= time.time() - since < MAX_AGE:
        session.clear()
        return None
    if digest is not None and (
        not isinstance(digest, str) or "clinician" not in roles.access().tokens.roles_of(digest)
    ):
        session.clear()
        return None
    if auditor_session.revocations().is_revoked(sid):
        session.clear()
        return None
    return Principal(frozenset({"clinician"}), subject, "session", digest)


def sign_in(principal: Principal) -> None:
    """Start a fresh session (a new id and CSRF token too) for a clinician."""
    session.clear()
    session[KEY] = {"subject": principal.subject, "digest": principal.digest, "via": principal.via}
    session["since"] = int(time.time())
    session["sid"] = secrets.token_urlsafe(32)
    session["csrf"] = secrets.token_urlsafe(32)
    current_app.logger.info("clinician pages: %s signed in (%s)", principal.subject, principal.via)


def sign_out() -> None:
    auditor_session.sign_out()  # the same: revoke the id until it would have expired, clear the cookie


csrf_token = auditor_session.csrf_token
csrf_ok = auditor_session.csrf_ok
CSRF_FIELD = auditor_session.CSRF_FIELD
