"""GET /docs: Swagger UI over /openapi.json, its files served from the installed PyPI package (no CDN).

The assets come from the `flask-swagger-ui` wheel, which bundles Swagger UI 5 - the first major version
that renders OpenAPI 3.1 (the `swagger-ui-bundle` wheel ships 4.15, which refuses `openapi: 3.1.0`). Only
its static files are used; the page and its start-up script are ours, so a strict Content-Security-Policy
(no inline script, nothing from another origin) holds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory

from ..openapi import SpecContext, document

bp = Blueprint("docs", __name__)

ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "index.css", "favicon-32x32.png", "favicon-16x16.png"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Hair-loss treatment decision support - API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="stylesheet" href="/docs/index.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null
  });
});
"""


def assets_dir() -> Path:
    """The Swagger UI files inside the installed wheel, found without importing it."""
    spec = importlib.util.find_spec("flask_swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("flask-swagger-ui is not installed (see requirements.txt)")
    return Path(spec.origin).parent / "dist"


def _secured(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/docs")
def page() -> Response:
    return _secured(Response(PAGE, mimetype="text/html"))


@bp.get("/docs/init.js")
def init_script() -> Response:
    return _secured(Response(INIT, mimetype="text/javascript"))


@bp.get("/docs/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    return _secured(send_from_directory(assets_dir(), name, max_age=86400))


@document(bp)
def _paths(ctx: SpecContext) -> None:
    ctx.spec.path(
        "/docs",
        operations={
            "get": {
                "tags": ["service"],
                "operationId": "docs",
                "summary": "Interactive API documentation (Swagger UI) of this document",
                "responses": {
                    "200": {"description": "HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
                },
            }
        },
    )
