"""What every HTML page of the service shares: its security headers and telling browsers from other clients.

Both the clinicians' pages (http/pages) and the auditors' decision pages (http/audit) are served with these
headers, and both answer errors as a page only to a client that asks for text/html by name: this module
is the HTML renderer of the error taxonomy (service/errors.py).
"""

from __future__ import annotations

from flask import Response, make_response, render_template, request

from ...errors import ServiceError
from .. import app_context
from ..errors import problem, problem_response

# Everything is served by the service itself; answers carry patient facts, so nothing is cached or
# sent on to the sites of the references.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def add_security_headers(response: Response) -> Response:
    """An `after_request` hook for a blueprint of pages; headers a view set itself are kept."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def add_frameable_security_headers(response: Response) -> Response:
    """The same for the clinician pages an EHR may frame: `frame-ancestors` names the configured EHR
    origins (EHR_FRAME_ORIGINS), and stays 'none' when there are none. The auditors' pages never frame."""
    origins = app_context.settings().ehr_frame_origins
    if origins and "Content-Security-Policy" not in response.headers:
        policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "frame-ancestors 'none'", "frame-ancestors " + " ".join(origins)
        )
        response.headers["Content-Security-Policy"] = policy
    return add_security_headers(response)


def wants_html() -> bool:
    """Whether the client names text/html (browsers do); curl, integrations and CDS clients get problem+json."""
    return any(mime == "text/html" and quality > 0 for mime, quality in request.accept_mimetypes)


def error_page(
    status: int, title: str, detail: str, *, back: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """An error as a page for a browser, as problem+json for any other client (field problems aside)."""
    if wants_html():
        response = make_response(render_template("error.html", title=title, detail=detail, back=back), status)
    else:
        response = problem(status, title, detail)
    response.headers.update(headers or {})
    return response


def render_error(exc: ServiceError, *, back: dict[str, str] | None = None) -> Response:
    """The HTML renderer of the error taxonomy; other clients get the problem+json renderer's document."""
    if not wants_html():
        return problem_response(exc)
    return error_page(exc.status, exc.title, exc.detail, back=back, headers=exc.headers)
