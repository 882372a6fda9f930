"""Clinician sign-in to the form and answer pages: a clinician token, or the institution's OIDC provider.

With OIDC_ISSUER and OIDC_CLIENT_ID set, "Sign in with your institution" runs the OAuth2 authorization
code flow with PKCE (S256) through Authlib's Flask client: the state, nonce and code verifier live in the
signed session, the code is exchanged at the provider's token endpoint, and the id_token is checked by
Authlib (signature, `iss`, `aud` = OIDC_CLIENT_ID, nonce) and again by our own verifier (RS256/ES256 only,
exact issuer); its roles claim must map to `clinician`. The redirect URI is PUBLIC_BASE_URL's when set, so
no address is built from the Host header. With CLINICIAN_TOKEN_HASHES, a clinician token works too.

Routes: `/clinician/sign-in` (GET the page, POST a token), `/clinician/sign-in/oidc` (to the provider),
`/clinician/callback` (back from it), POST `/clinician/sign-out`.
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from .. import app_context
from ..access import roles
from ..access.credentials import ProviderUnavailable, Refused
from ..html.common import add_frameable_security_headers
from . import clinician_session, links

log = logging.getLogger(__name__)
bp = Blueprint("clinician", __name__, url_prefix="/clinician")
CLIENT = "clinician_oidc"
NEXT_KEY = "clinician_next"
OPEN = {"clinician.sign_in", "clinician.callback"}


def init_app(app: Flask) -> None:
    """The OIDC client, when the provider and a client id are configured."""
    app.register_blueprint(bp)
    settings = app_context.settings(app)
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return
    secret = settings.oidc_client_secret or None
    oauth = OAuth(app)
    app.extensions[CLIENT] = oauth.register(
        "institution",
        client_id=settings.oidc_client_id,
        client_secret=secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": settings.oidc_scopes,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic" if secret else "none",
            "default_timeout": settings.oidc_timeout,
        },
    )


def _client() -> Any:
    return current_app.extensions.get(CLIENT)


def safe_next(value: str | None) -> str | None:
    """Only a path of the clinician pages (the form, an answer, the start page): nowhere else."""
    if not value or any(c in value for c in "\\\r\n") or "//" in value or not value.startswith("/"):
        return None
    path = value.split("?", 1)[0]
    root = request.script_root.rstrip("/")
    if path == root + "/" or (path.startswith(root + "/rulesets/") and path.endswith(("/try", "/answer"))):
        return value
    return None


@bp.before_request
def _csrf() -> ResponseReturnValue | None:
    if request.method == "POST" and not clinician_session.csrf_ok():
        log.warning("clinician pages: a form without a valid CSRF token was refused (%s)", request.endpoint)
        return _page(None, "The form was stale (its security token does not match your session). Try again.", 403)
    return None


bp.after_request(add_frameable_security_headers)


def _page(target: str | None, error: str | None, status: int) -> ResponseReturnValue:
    page = render_template(
        "clinician_sign_in.html",
        next=safe_next(target),
        error=error,
        signed_out="signed_out" in request.args,
        sign_in_csrf=clinician_session.csrf_token(),
        oidc=_client() is not None,
        tokens=roles.access().tokens.configured("clinician"),
        max_hours=clinician_session.MAX_AGE // 3600,
    )
    return page, status


@bp.get("/sign-in")
def sign_in() -> ResponseReturnValue:
    return _page(request.args.get("next"), None, 200)


@bp.post("/sign-in")
def sign_in_submit() -> ResponseReturnValue:
    token = request.form.get("token", "").strip()
    target = safe_next(request.form.get("next"))
    if not roles.access().tokens.configured("clinician"):
        return _page(target, "No clinician token is configured on this service (CLINICIAN_TOKEN_HASHES).", 403)
    if not token:
        return _page(target, "Enter your clinician token.", 400)
    principal = roles.access().tokens.principal(token)
    if principal is None or not principal.has("clinician"):
        log.warning("clinician pages: sign-in refused (not a clinician token)")
        response = current_app.make_response(
            _page(target, "This is not a clinician token of this service. Check it and try again.", 401)
        )
        response.headers["WWW-Authenticate"] = f'Bearer realm="{roles.REALM}"'
        return response
    clinician_session.sign_in(principal)
    return redirect(target or url_for("pages.index"), 303)


def _redirect_uri() -> str:
    """PUBLIC_BASE_URL's callback when set, like every absolute link of the pages (links.py)."""
    return links.base_url() + "/clinician/callback"


@bp.get("/sign-in/oidc")
def sign_in_oidc() -> ResponseReturnValue:
    client = _client()
    if client is None:
        return _page(None, "Sign-in with an identity provider is not configured (OIDC_ISSUER, OIDC_CLIENT_ID).", 404)
    target = safe_next(request.args.get("next"))
    try:
        response = client.authorize_redirect(_redirect_uri())
    except Exception as exc:  # the provider's discovery document cannot be had
        log.warning("clinician pages: cannot start the OIDC sign-in (%s)", type(exc).__name__)
        return _page(target, "The identity provider cannot be reached just now. Try again shortly.", 503)
    session[NEXT_KEY] = target
    return response


@bp.get("/callback")
def callback() -> ResponseReturnValue:
    client = _client()
    target = safe_next(session.pop(NEXT_KEY, None))
    if client is None:
        return _page(None, "Sign-in with an identity provider is not configured.", 404)
    if "error" in request.args:
        log.warning("clinician pages: the identity provider refused the sign-in (%s)", request.args["error"][:60])
        return _page(target, "The identity provider did not sign you in.", 401)
    try:
        token = client.authorize_access_token()
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Refused("no id_token in the token response")
        provider = roles.access().oidc
        assert provider is not None
        claims = provider.verify(id_token, audience=app_context.settings().oidc_client_id)
    except ProviderUnavailable as exc:
        log.warning("clinician pages: cannot check the id_token (%s)", exc)
        return _page(target, "The identity provider cannot be reached just now. Try again shortly.", 503)
    except Exception as exc:  # a state that does not match, a refused code, an id_token that fails a check
        log.warning("clinician pages: OIDC sign-in refused (%s: %s)", type(exc).__name__, str(exc)[:120])
        return _page(target, "The sign-in could not be completed. Start it again.", 401)
    principal = provider.principal(claims)
    if not principal.has("clinician"):
        log.warning("clinician pages: %s signed in without the clinician role; refused", principal.subject)
        return _page(target, "Your account does not hold the clinician role for this service.", 403)
    clinician_session.sign_in(principal)
    return redirect(target or url_for("pages.index"), 303)


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    clinician_session.sign_out()
    return redirect(url_for(".sign_in", signed_out=1), 303)
