"""Roles: which credential may use which channel.

Four roles: `integration` (POST /v1/evaluations and :batch), `clinician` (the web form and its answers),
`auditor` (the decision log API and pages) and `admin` (the ruleset lifecycle). A request's bearer
credential (credentials.py: a hashed static token or an OIDC bearer JWT) is turned into a Principal once
per request; `require_role(role)` guards a view and `role_guard(role)` a whole blueprint:

    bp.before_request(role_guard("admin"))        # or @require_role("admin") on one view
    bp.before_request(role_guard("auditor", "admin"))   # any one of them

A refused request gets an RFC 9457 problem: 401 with a `WWW-Authenticate: Bearer` challenge (RFC 6750)
without a valid credential, 403 (`error="insufficient_scope"`) for a valid credential without the role.

Open mode: with no access settings at all - none of INTEGRATION_TOKEN_HASHES, CLINICIAN_TOKEN_HASHES and
OIDC_ISSUER - the evaluation channels (integration, clinician) stay open so that `make run` on loopback and
`create_app()` in a test work at once; the pages then say so in a banner and a WARNING is logged at start.
The auditor and admin roles are never open. gunicorn refuses to bind a non-loopback address in open mode
(service/config.py `refuse_open_bind`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from ...config import ROLES, Settings
from .. import app_context
from ..errors import problem
from .credentials import OidcProvider, Principal, ProviderUnavailable, Refused, StaticTokens, looks_like_jwt

log = logging.getLogger(__name__)

EXTENSION = "access"
REALM = "hairloss-rules"
OPEN_WHEN_UNCONFIGURED = frozenset({"integration", "clinician"})
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Access:
    oidc: OidcProvider | None
    open: bool  # no credential is configured for the evaluation channels: they are open to anyone

    @property
    def tokens(self) -> StaticTokens:
        """The static tokens, read per request (parsed once per value, config.token_hashes): an operator
        revokes a token by changing its setting, as with AUDITOR_TOKEN_HASHES before."""
        return StaticTokens(current_app.config)


def build(settings: Settings) -> Access:
    """The access settings of an app (checked when the settings were built)."""
    oidc = None
    if settings.oidc_issuer:
        oidc = OidcProvider(
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.oidc_roles_claim,
            settings.oidc_role_map,
            timeout_s=settings.oidc_timeout,
            ttl_s=settings.oidc_jwks_ttl,
        )
    return Access(oidc, open=not settings.access_configured)


def init_app(app: Flask) -> Access:
    settings = app_context.settings(app)
    access = app.extensions[EXTENSION] = build(settings)
    if access.open:
        log.warning(
            "access is OPEN: no INTEGRATION_TOKEN_HASHES, CLINICIAN_TOKEN_HASHES or OIDC_ISSUER is set, so anyone "
            "who reaches this service can evaluate profiles (JSON API, batch, web form) and fill the decision log. "
            "Fine for a first try on loopback; configure credentials before exposing it (README: Security)."
        )
    else:
        for role in sorted(OPEN_WHEN_UNCONFIGURED):
            if not settings.token_hashes(role) and access.oidc is None:
                log.warning("access: no credential can hold the %s role, so its channel is closed to everyone", role)

    @app.context_processor
    def _banner() -> dict[str, Any]:
        return {"access_open": access.open}

    return access


def access() -> Access:
    return current_app.extensions[EXTENSION]


def channel_open(role: str) -> bool:
    """Whether this role's channel needs no credential (open mode, evaluation channels only)."""
    return role in OPEN_WHEN_UNCONFIGURED and access().open


def bearer_token() -> str | None:
    """The bearer token of the request; None without an Authorization header, "" for a non-bearer one."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate(token: str) -> Principal | None:
    """The principal of a bearer token, or None if no configured credential matches it."""
    found = access().tokens.principal(token)
    if found is not None:
        return found
    provider = access().oidc
    if provider is None or not looks_like_jwt(token):
        return None
    try:
        return provider.principal(provider.verify(token))
    except Refused as exc:
        log.info("access: bearer JWT refused (%s)", exc)
        return None


def bearer_principal() -> tuple[Principal | None, bool]:
    """(the principal, whether a credential was sent) for this request's bearer header, once per request.

    Raises ProviderUnavailable when a JWT cannot be checked because the identity provider is unreachable.
    """
    if "access_principal" not in g:
        token = bearer_token()
        g.access_sent = token is not None
        g.access_principal = authenticate(token) if token else None
    return g.access_principal, g.access_sent


def refusal(role: str, principal: Principal | None, sent: bool) -> Response:
    """401 (no or a bad credential) or 403 (a valid credential without the role), as problem+json.

    `role` may name several, "auditor` or `admin" (check_any), read as one phrase in the detail."""
    if principal is not None:
        log.warning("access: %s without the %s role refused (%s)", principal.subject, role, request.endpoint)
        response = problem(403, "Forbidden", f"This credential does not hold the `{role}` role this needs.")
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="insufficient_scope"'
        return response
    detail = f"Send a credential with the `{role}` role: `Authorization: Bearer <token>`."
    response = problem(401, "Unauthorized", detail)
    response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if sent else "")
    return response


def unavailable() -> Response:
    detail = "The identity provider that issued this token cannot be reached to check it; try again shortly."
    response = problem(503, "Service Unavailable", detail)
    response.headers["Retry-After"] = "10"
    return response


def check(role: str) -> Response | None:
    """None if the request may use this role's channel, else the refusal."""
    return check_any((role,))


def check_any(wanted: tuple[str, ...]) -> Response | None:
    """None if the request's credential holds one of these roles (or one's channel is open), else the refusal."""
    unknown = [r for r in wanted if r not in ROLES]
    if unknown or not wanted:
        raise ValueError(f"unknown role(s) {unknown!r}; roles: {', '.join(ROLES)}")
    if any(channel_open(role) for role in wanted):
        return None
    try:
        principal, sent = bearer_principal()
    except ProviderUnavailable as exc:
        log.warning("access: cannot check a bearer JWT: %s", exc)
        return unavailable()
    if principal is not None and any(principal.has(role) for role in wanted):
        g.principal = principal
        return None
    return refusal("` or `".join(wanted), principal, sent)


def require_role(role: str) -> Callable[[F], F]:
    """A view decorator: the view runs only for a credential holding `role` (or an open channel)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            refused = check(role)
            return refused if refused is not None else view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def role_guard(*wanted: str) -> Callable[[], Response | None]:
    """A before_request hook for a whole blueprint: `bp.before_request(role_guard("admin"))`; with several
    roles, a credential holding any one of them passes (`role_guard("auditor", "admin")`)."""
    return functools.partial(check_any, wanted)
