"""SMART App Launch of the clinician form (EHR launch): `/smart/<ruleset>/launch` and `/smart/<ruleset>/callback`.

The work is in service/cds/smart.py (discovery, PKCE, the token exchange) and the CDS Hooks reader and
mapping (service/cds/prefetch.py, extract.py); this module only translates HTTP. The state, the code
verifier and the issuer wait in the signed session between the two requests. Once the EHR has
authenticated the user for this launch, the browser is signed in to the clinician pages (via "smart"), so
the prefilled form can be submitted. Offered only with SMART_CLIENT_ID and SMART_ISSUERS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from flask import Blueprint, Flask, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from ...cds import prefetch, smart
from ...cds.extract import extract
from ...cds.outcome import OutcomeError
from ...errors import ServiceError
from .. import app_context
from ..access.credentials import Principal
from ..html.common import add_frameable_security_headers, render_error
from . import clinician_session, links
from . import routes as pages

log = logging.getLogger(__name__)
bp = Blueprint("smart", __name__, url_prefix="/smart")
bp.after_request(add_frameable_security_headers)
PENDING = "smart_launch"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.context_processor
def _clinician_globals() -> dict[str, object]:
    return {"clinician_csrf": g.get("clinician_csrf"), "csrf_field": clinician_session.CSRF_FIELD}


class _Refused(ServiceError):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self._detail = status, title, detail

    @property
    def detail(self) -> str:
        return self._detail


@bp.errorhandler(ServiceError)
def _error(exc: ServiceError) -> ResponseReturnValue:
    if isinstance(exc, OutcomeError):  # the FHIR server could not give the required data (412)
        exc = _Refused(502, "SMART launch failed", "The patient's data could not be read from the EHR.")
    return render_error(exc)


def _redirect_uri(ruleset_id: str) -> str:
    return links.base_url() + url_for("smart.callback", ruleset_id=ruleset_id)


@bp.get("/<ruleset_id>/launch")
def launch(ruleset_id: str) -> ResponseReturnValue:
    settings = app_context.settings()
    if not settings.smart_client_id:
        raise _Refused(404, "Not Found", "SMART launch is not configured here.")
    iss, token = request.args.get("iss", "").rstrip("/"), request.args.get("launch", "")
    if not iss or not token or len(token) > 2000:
        raise _Refused(400, "Bad launch", "A SMART EHR launch needs `iss` and `launch`.")
    if iss not in settings.smart_issuers:
        log.warning("SMART launch from an untrusted iss refused")
        raise _Refused(403, "Launch refused", "This EHR is not trusted to launch the form (SMART_ISSUERS).")
    pages._active(ruleset_id)  # 404 for an unknown ruleset, before anything is sent to the EHR
    endpoints = smart.discover(iss, settings.cds_hooks_fhir_timeout)
    url, state, verifier = smart.authorization_request(
        endpoints, settings.smart_client_id, _redirect_uri(ruleset_id), iss, token
    )
    session[PENDING] = {
        "state": state,
        "verifier": verifier,
        "iss": iss,
        "token_endpoint": endpoints.token,
        "ruleset": ruleset_id,
    }
    return redirect(url, 302)


@bp.get("/<ruleset_id>/callback")
def callback(ruleset_id: str) -> ResponseReturnValue:
    settings = app_context.settings()
    pending = session.pop(PENDING, None)
    if not settings.smart_client_id or not isinstance(pending, dict):
        raise _Refused(400, "Bad launch", "No SMART launch is waiting in this browser; launch the form from the EHR.")
    if request.args.get("error"):
        raise _Refused(403, "Launch refused", "The EHR did not authorize the launch.")
    code, state = request.args.get("code", ""), request.args.get("state", "")
    if not code or state != pending.get("state") or pending.get("ruleset") != ruleset_id:
        raise _Refused(400, "Bad launch", "The SMART callback does not match the launch (state).")
    iss = str(pending["iss"])
    endpoints = smart.Endpoints(authorize="", token=str(pending["token_endpoint"]))
    grant = smart.exchange(
        endpoints,
        settings.smart_client_id,
        _redirect_uri(ruleset_id),
        code,
        str(pending["verifier"]),
        settings.cds_hooks_fhir_timeout,
    )
    active = pages._active(ruleset_id)
    mapping = app_context.cds_channel().catalog.mapping(active.ruleset)
    if mapping is None:
        raise _Refused(404, "Not Found", "This ruleset has no FHIR mapping to read the record with.")
    data, _keys = prefetch.gather(
        mapping, smart.hook_body(iss, settings.smart_client_id, grant), settings.cds_hooks_fhir_timeout
    )
    extraction = extract(mapping, active.ruleset, data, dt.datetime.now(dt.UTC).date())
    ehr = hashlib.sha256(iss.encode()).hexdigest()[:16]  # a user of that EHR (its own sign-in): safe to log
    clinician_session.sign_in(Principal(frozenset({"clinician"}), f"smart:{ehr}", "smart"))
    g.clinician_csrf = clinician_session.csrf_token()  # the form posts back within that session
    log.info("SMART launch: form prefilled with %d fact(s) from the EHR", len(extraction.profile))
    return pages.prefilled_form(ruleset_id, extraction.profile)
