"""Rate limits on evaluations, sign-in and token checks (Flask-Limiter), shared across workers and replicas.

Each limit counts per credential when the request carries one (the SHA-256 of its bearer token, so no
token is kept) and per client address otherwise; failed token checks and sign-ins count per address, so a
guesser is slowed down whatever tokens it tries. A request over a limit gets `429` problem+json with
`Retry-After`. Counters live in Redis when RATE_LIMIT_STORAGE_URI names one (every gunicorn worker and
replica then shares them) and in the worker's memory otherwise - the embedded default for a single
instance, and the fallback while Redis is unreachable, so an outage of the limiter's store never stops
the service. Behind a reverse proxy, TRUSTED_PROXY_COUNT says how many proxies' X-Forwarded-For entries to
trust for the client address (werkzeug's ProxyFix); with 0 the socket's peer address is the client.
"""

from __future__ import annotations

import hashlib
import logging

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from .. import app_context

log = logging.getLogger(__name__)

EXTENSION = "rate_limiter"
_OWN_RETRY_AFTER = "own_retry_after"


def client_address() -> str:
    return request.remote_addr or "unknown"


def credential_or_address() -> str:
    """The key of a request: its bearer credential (hashed) if it sends one, else its client address."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "credential:" + hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
    return "address:" + client_address()


def _address() -> str:
    return "address:" + client_address()


# Endpoints that evaluate a profile on an open channel (JSON API, batch, the clinician form).
EVALUATING = ("api.evaluate", "api.evaluate_batch", "pages.answer_form", "pages.answer")
# Blueprints whose refused credentials (401, 403) count against the client address.
CHECKING_TOKENS = ("audit", "decision_pages", "cds_hooks", "api", "pages", "clinician", "admin", "lifecycle_readers")
SIGN_IN = ("decision_pages.sign_in_submit", "clinician.sign_in_submit")


def init_app(app: Flask) -> Limiter:
    """Limits for this app, after its blueprints are registered (one Limiter per app keeps tests apart)."""
    settings = app_context.settings(app)
    if settings.trusted_proxy_count:
        count = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=0)  # type: ignore[method-assign]

    @app.after_request
    def _restore_retry_after(resp: Response) -> Response:
        """Registered before the limiter's own hook, so it runs after it (Flask runs them in reverse).

        Flask-Limiter sets Retry-After on every limited response to the end of its window (60 s for a
        per-minute limit): a 503's "retry in 5 s" became 60, and a 200 told clients to wait. Only a 429
        keeps the limiter's value; any other response keeps its own, or none.
        """
        if resp.status_code != 429:
            own = g.pop(_OWN_RETRY_AFTER, None)
            if own is None:
                resp.headers.pop("Retry-After", None)
            else:
                resp.headers["Retry-After"] = own
        return resp

    storage = settings.rate_limit_storage_uri
    options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5} if storage.startswith("redis") else {}
    limiter = Limiter(
        key_func=credential_or_address,
        app=app,
        storage_uri=storage,
        storage_options=options,
        key_prefix=settings.rate_limit_key_prefix,
        headers_enabled=True,
        in_memory_fallback_enabled=True,
        strategy="moving-window",
    )

    @app.after_request
    def _remember_retry_after(resp: Response) -> Response:  # runs before the limiter's hook
        if "Retry-After" in resp.headers:
            g.setdefault(_OWN_RETRY_AFTER, resp.headers["Retry-After"])
        return resp

    # A limit set to "off" is not declared at all (settings are fixed at start, service/config.py).
    if settings.rate_limit_evaluations != "off":
        evaluations = limiter.shared_limit(settings.rate_limit_evaluations, scope="evaluations")
        for endpoint in EVALUATING:
            if endpoint in app.view_functions:
                app.view_functions[endpoint] = evaluations(app.view_functions[endpoint])
    if settings.rate_limit_sign_in != "off":
        sign_in = limiter.shared_limit(
            settings.rate_limit_sign_in, scope="sign-in", key_func=_address, override_defaults=False
        )
        for endpoint in SIGN_IN:
            if endpoint in app.view_functions:
                app.view_functions[endpoint] = sign_in(app.view_functions[endpoint])
    if settings.rate_limit_auth_failures != "off":
        failures = limiter.shared_limit(
            settings.rate_limit_auth_failures,
            scope="token-failures",
            key_func=_address,
            deduct_when=lambda response: response.status_code in (401, 403),
        )
        for name in CHECKING_TOKENS:
            if name in app.blueprints:
                failures(app.blueprints[name])
    app.extensions[EXTENSION] = limiter
    return limiter
