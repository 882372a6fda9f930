"""What every HTML page of the service shares: its security headers and telling browsers from other clients.

Both the clinicians' pages (http/pages) and the auditors' decision pages (http/audit) are served with these
headers, and both answer errors as a page only to a client that asks for text/html by name.
"""

from __future__ import annotations

from flask import Response, request

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


def wants_html() -> bool:
    """Whether the client names text/html (browsers do); curl, integrations and CDS clients get problem+json."""
    return any(mime == "text/html" and quality > 0 for mime, quality in request.accept_mimetypes)
