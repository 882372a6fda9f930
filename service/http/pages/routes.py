"""Server-rendered pages: the clinician's form and answer, and the auditor's view of the rulesets.

The pages only translate. A submitted form is read into a raw profile (forms.py) and answered by
`make_decision` like every other channel, so a web answer is validated, stamped and recorded exactly
like an API answer. Invalid input re-renders the form with each problem next to its field (422).

Errors are pages for browsers, which ask for text/html by name; any other client (curl, an integration,
a CDS Hooks client following a link) gets the service's problem+json instead, field problems included.

Routes: `/` and `/rulesets/<id>/try` (the form; GET prefills it from the query string, POST answers),
`/rulesets/<id>/answer` (the permalink: the profile in the query string), `/rulesets`, `/rulesets/<id>`
and `/rulesets/<id>/source` (auditors).

The form and answer pages need the clinician role once access is configured (service/http/access/
roles.py): a bearer credential, or a session from /clinician/sign-in (sign_in.py); a browser without
either is sent to sign in. The ruleset pages stay public.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from ...answering import DecisionNotRecorded, InvalidProfile, make_decision
from ...errors import ServiceError
from ...registry import Active
from ...render import tests_by_rule
from ...ruleset.profile import FieldProblem
from .. import app_context
from ..access import roles
from ..errors import problem
from ..html import presenting
from ..html.common import add_frameable_security_headers, error_page, render_error, wants_html
from . import clinician_session, forms

log = logging.getLogger(__name__)
bp = Blueprint("pages", __name__)

bp.after_request(add_frameable_security_headers)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    presenting.register(state.app)


# The clinicians' pages: they evaluate (and record) profiles. The ruleset pages below stay public.
CLINICIAN_PAGES = {"pages.index", "pages.try_form", "pages.answer_form", "pages.answer"}


@bp.before_request
def _clinicians_only() -> ResponseReturnValue | None:
    """The clinician role: a bearer credential (scripts) or a signed-in session (browsers); open mode lets all in."""
    if request.endpoint not in CLINICIAN_PAGES or roles.channel_open("clinician"):
        return None
    if roles.bearer_token() is not None:
        return roles.check("clinician")
    principal = clinician_session.signed_in()
    if principal is not None:
        g.principal = principal
        g.clinician_csrf = clinician_session.csrf_token()
        if request.method == "POST" and not clinician_session.csrf_ok():
            log.warning("clinician pages: a form without a valid CSRF token was refused")
            detail = "The form was not sent from this service's own page, or the page is stale. Open it again."
            return error_page(403, "Form refused", detail)
        return None
    if wants_html():
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("clinician.sign_in", next=target), 303)
    return roles.check("clinician")


@bp.context_processor
def _clinician_globals() -> dict[str, object]:
    return {"clinician_csrf": g.get("clinician_csrf"), "csrf_field": clinician_session.CSRF_FIELD}


def _active(ruleset_id: str) -> Active:
    """The ruleset a page names: its id (production), or `<id>@<version>` / a sha256 (a testing revision too)."""
    active = app_context.registry().get(ruleset_id) or app_context.registry().lookup(ruleset_id)
    if active is None:
        raise _NotFound(ruleset_id)
    return active


class _NotFound(ServiceError):
    status = 404
    title = "Not Found"

    def __init__(self, ruleset_id: str) -> None:
        super().__init__(ruleset_id)
        self.ruleset_id = ruleset_id


@bp.errorhandler(_NotFound)
def _unknown_ruleset(exc: _NotFound) -> ResponseReturnValue:
    actives = app_context.registry().all()
    if not wants_html():
        loaded = ", ".join(a.ruleset.id for a in actives) or "none"
        return problem(404, "Not Found", f"unknown ruleset `{exc.ruleset_id}`; loaded: {loaded}")
    return render_template("not_found.html", ruleset_id=exc.ruleset_id, actives=actives), 404


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return error_page(exc.code or 500, exc.name, exc.description or "")


@bp.errorhandler(DecisionNotRecorded)
def _not_recorded(exc: DecisionNotRecorded) -> ResponseReturnValue:
    # The same 503 (with Retry-After) as every other channel; the page says that no answer was given.
    log.error("page: decision not recorded (%s); answered 503", exc.log_text)
    return render_error(exc)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> ResponseReturnValue:
    # The stack without the message: messages of engine or storage errors can quote the profile.
    log.error("page failed: %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    detail = "The error was logged. No answer was given; please try again or use another channel."
    if not wants_html():
        return problem(500, "Internal Server Error", detail)
    return render_template("error.html", title="Something went wrong", detail=detail), 500


# ---- clinicians ------------------------------------------------------------------------------


def _form(active: Active, submitted: forms.Submitted, problems: list[FieldProblem], status: int) -> ResponseReturnValue:
    if problems and not wants_html():
        errors = [{"field": p.field, "message": p.message, "allowed": list(p.allowed)} for p in problems]
        detail = f"{len(problems)} problem(s): " + "; ".join(p.message for p in problems[:5])
        return problem(status, "Invalid profile", detail, errors=errors)
    by_field, general = forms.problems_by_field(active.ruleset, submitted, problems)
    page = render_template(
        "form.html",
        ruleset=active.ruleset,
        fieldsets=presenting.fieldsets(active.ruleset),
        entered=submitted.entered,
        errors=by_field,
        general_errors=general,
        action=url_for("pages.answer_form", ruleset_id=_ref(active)),
        stage=active.stage,
    )
    return page, status


def prefilled_form(ruleset_id: str, profile: dict[str, Any]) -> ResponseReturnValue:
    """The form prefilled with a raw (possibly partial) profile, rendered here: nothing goes into a URL
    (the SMART launch, service/http/pages/smart.py)."""
    active = _active(ruleset_id)
    params = MultiDict(forms.query_items(active.ruleset, profile))
    submitted = forms.read_params(active.ruleset, params)
    return _form(active, submitted, forms.check_values(active.ruleset, submitted, require=False), 200)


def _ref(active: Active) -> str:
    """How pages name a revision: a testing one by `<id>@<version>`, so the form keeps evaluating it."""
    return active.ruleset.id if active.stage == "production" else f"{active.ruleset.id}@{active.ruleset.version}"


def _answer(active: Active, params: MultiDict[str, str]) -> ResponseReturnValue:
    """Read, decide and show - or show the form again with every problem at once."""
    submitted = forms.read_params(active.ruleset, params)
    if submitted.problems:
        return _form(active, submitted, forms.check_values(active.ruleset, submitted, require=True), 422)
    try:
        decision = make_decision(
            app_context.registry(),
            _ref(active),
            submitted.profile,
            channel="web",
            explain=True,
            recorder=app_context.recorder(),
        )
    except InvalidProfile as exc:
        return _form(active, submitted, exc.errors, 422)
    ruleset = app_context.registry().revisions.get(decision.ruleset.sha256, active.ruleset)
    explanation = decision.explanation
    assert explanation is not None  # asked for with explain=True
    profile = dict(explanation.profile)
    query = forms.query_string(ruleset, profile)
    return render_template(
        "answer.html",
        ruleset=ruleset,
        decision=decision,
        profile_rows=presenting.profile_rows(ruleset, profile),
        not_recorded=[ruleset.inputs[f].label for f in explanation.unknown_inputs],
        strengths={s.id: s.label for s in ruleset.strengths},
        counts=Counter(str(r.status) for r in explanation.rules),
        permalink=url_for("pages.answer", ruleset_id=_ref(active)) + "?" + query,
        edit_link=url_for("pages.try_form", ruleset_id=_ref(active)) + "?" + query,
        stage=active.stage,
    )


@bp.get("/")
def index() -> ResponseReturnValue:
    active = app_context.registry().default()
    if active is None:
        return render_template("choose.html", actives=app_context.registry().all())
    return try_form(active.ruleset.id)


@bp.get("/rulesets/<ruleset_id>/try")
def try_form(ruleset_id: str) -> ResponseReturnValue:
    """The form, prefilled from the query string (CDS Hooks cards link here)."""
    active = _active(ruleset_id)
    submitted = forms.read_params(active.ruleset, request.args)
    problems = forms.check_values(active.ruleset, submitted, require=False)
    return _form(active, submitted, problems, 400 if problems else 200)


@bp.post("/rulesets/<ruleset_id>/try")
def answer_form(ruleset_id: str) -> ResponseReturnValue:
    fields = MultiDict([(k, v) for k, v in request.form.items(multi=True) if k != clinician_session.CSRF_FIELD])
    return _answer(_active(ruleset_id), fields)


@bp.get("/rulesets/<ruleset_id>/answer")
def answer(ruleset_id: str) -> ResponseReturnValue:
    """The permalink of an answer: the same profile gives the same answer (as a new, recorded decision)."""
    return _answer(_active(ruleset_id), request.args)


# ---- auditors --------------------------------------------------------------------------------


@bp.get("/rulesets")
def rulesets() -> ResponseReturnValue:
    registry = app_context.registry()
    folder = str(registry.folder)
    failures = [
        {
            "file": presenting.relative_paths(f.path, folder),
            "problems": [presenting.relative_paths(p, folder) for p in f.problems],
            "kept": f.kept_sha256,
        }
        for f in registry.failures.values()
    ]
    return render_template("rulesets.html", actives=registry.all(), failures=failures)


@bp.get("/rulesets/<ruleset_id>")
def ruleset(ruleset_id: str) -> ResponseReturnValue:
    active = _active(ruleset_id)
    lifecycle = app_context.lifecycle_or_none()
    return render_template(
        "ruleset.html",
        **(lifecycle.document(active.ruleset) if lifecycle is not None else {}),
        ruleset=active.ruleset,
        report=active.report,
        covering=tests_by_rule(active.report),
        test_numbers={t.name: n for n, t in enumerate(active.report.tests, 1)},
    )


@bp.get("/rulesets/<ruleset_id>/source")
def source(ruleset_id: str) -> ResponseReturnValue:
    rs = _active(ruleset_id).ruleset
    return render_template("source.html", ruleset=rs, file=Path(rs.path).name, lines=rs.source_text.splitlines())
