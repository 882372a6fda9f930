"""Response headers every channel needs (issue 16, item 8): no caching of patient data, no sniffing, HSTS,
and no redirect that names a host the client chose.

Profiles, decisions and audit records travel as JSON, problem+json (which may quote what was sent), FHIR
JSON and CSV: a shared cache or the browser's disk must not keep them (`no-store`), and a browser must not
guess another type for them (`nosniff`). A view that set its own Cache-Control (the rulesets' ETags) keeps it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, request

from . import app_context

PATIENT_DATA_TYPES = frozenset({"application/json", "application/problem+json", "application/fhir+json", "text/csv"})
HSTS = "max-age=31536000"  # one year; browsers then refuse plain http to this host


def _relative(location: str) -> str:
    """A Location built from the request's own Host (werkzeug's merge-slashes and trailing-slash 308s),
    as a path: the client stays on the host it used, and an attacker's Host header is never echoed."""
    parts = urlsplit(location)
    if parts.scheme and parts.netloc.lower() == request.host.lower():
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    return location


def init_app(app: Flask) -> None:
    settings = app_context.settings(app)
    https = settings.public_base_url.startswith("https://")
    # Flask's own check: a request for another Host is answered 400 (SecurityError) before routing.
    app.config["TRUSTED_HOSTS"] = list(settings.trusted_hosts) or None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        if resp.mimetype in PATIENT_DATA_TYPES:
            resp.headers.setdefault("Cache-Control", "no-store")
        if https or request.is_secure:
            resp.headers.setdefault("Strict-Transport-Security", HSTS)
        if 300 <= resp.status_code < 400 and "Location" in resp.headers:
            resp.headers["Location"] = _relative(resp.headers["Location"])
        return resp
