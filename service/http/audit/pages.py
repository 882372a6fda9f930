"""The decision log as pages for auditors: a searchable list, one decision in full, its replay, feedback.

These pages only translate: the filters are the JSON audit list's (query.parse, same names, same
checks), the reading is service/decisions (queries, replay). Every page requires the auditor credential:
a signed-in session (session.py) or an `Authorization: Bearer` header. Without either, a browser
is sent to the sign-in form (303) and any other client gets the 401 problem of the JSON endpoints.

Routes: `/decisions` (list), `/decisions/<id>` (one decision), POST `/decisions/<id>/replay`,
`/decisions/feedback` (per-rule CDS Hooks feedback), `/decisions/sign-in`, POST `/decisions/sign-out`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from ...decisions import LogError, queries
from ...decisions.replay import replay as replay_decision
from ...decisions.replay import stored_ruleset
from ...errors import ServiceError
from ...ruleset.model import Ruleset
from .. import app_context
from ..html.common import add_security_headers, error_page, render_error, wants_html
from . import auditors
from . import session as auditor_session
from . import views as decision_views
from .query import BadQuery, ParamProblem, parse

log = logging.getLogger(__name__)
bp = Blueprint("decision_pages", __name__, url_prefix="/decisions")
bp.after_request(add_security_headers)

FILTERS = ("ruleset", "option", "role", "channel", "since", "until")
OPEN = {"decision_pages.sign_in", "decision_pages.sign_in_submit"}


class _NoDecision(ServiceError):
    status = 404
    title = "No such decision"

    def __init__(self, decision_id: str) -> None:
        super().__init__(decision_id)
        self.decision_id = decision_id

    @property
    def detail(self) -> str:
        return f"The decision log holds no decision `{self.decision_id}`."


# ---- access ----------------------------------------------------------------------------------------


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    if request.endpoint in OPEN:
        return None if request.method != "POST" or auditor_session.csrf_ok() else _csrf_refused()
    token = auditors.bearer_token()
    if token is not None:  # a script's bearer header: no cookie involved, so no CSRF check either
        refused = auditors.check_bearer()
        if refused is None:
            g.auditor_via = "bearer"
        return refused
    if auditor_session.signed_in():
        g.auditor_via = "session"
        return None if request.method != "POST" or auditor_session.csrf_ok() else _csrf_refused()
    if wants_html():
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("decision_pages.sign_in", next=target), 303)  # also from nested blueprints
    return auditors.challenge(None)


def _csrf_refused() -> ResponseReturnValue:
    detail = (
        "The form was not sent from this service's own page, or the page is stale (its security token "
        "does not match your session). Open the page again and resubmit."
    )
    log.warning("decision pages: a form without a valid CSRF token was refused (%s)", request.endpoint)
    return _error(403, "Form refused", detail)


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    via = g.get("auditor_via")
    return {
        "csrf": auditor_session.csrf_token() if via == "session" else None,
        "csrf_field": auditor_session.CSRF_FIELD,
        "auditor_via": via,
    }


# ---- errors ----------------------------------------------------------------------------------------


def _back() -> dict[str, str]:
    return {"url": url_for(".search"), "text": "Back to the decision log"}


def _error(status: int, title: str, detail: str) -> ResponseReturnValue:
    return error_page(status, title, detail, back=_back())


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> ResponseReturnValue:
    if isinstance(exc, LogError):
        log.error("decision pages: %s", exc)
        # These pages only read the log: say so rather than the answer paths' "no answer is given".
        detail = "The decision log could not be read. Try again later; if it persists, check the database (/readyz)."
        return error_page(exc.status, exc.title, detail, back=_back(), headers=exc.headers)
    return render_error(exc, back=_back())


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return _error(exc.code or 500, exc.name, exc.description or "")


# ---- helpers ---------------------------------------------------------------------------------------


def _record(decision_id: str) -> dict[str, Any]:
    try:
        canonical = str(uuid.UUID(decision_id))
    except ValueError:
        raise _NoDecision(decision_id) from None
    record = queries.get(app_context.decision_log(), canonical)
    if record is None:
        raise _NoDecision(canonical)
    return record


def _revision(sha256: str) -> tuple[Ruleset | None, str]:
    """The revision a decision was made with: in memory if active, else loaded from the log."""
    loaded = app_context.registry().revisions.get(sha256)
    return (loaded, "") if loaded is not None else stored_ruleset(app_context.decision_log(), sha256)


def _safe_next(value: str | None) -> str | None:
    """Only a path of the decision pages: a sign-in link must not send anyone elsewhere."""
    base = url_for(".search")
    if not value or not value.startswith(base) or any(c in value for c in "\\\r\n") or "//" in value:
        return None
    return value if len(value) == len(base) or value[len(base)] in "/?" else None


# ---- the list --------------------------------------------------------------------------------------


@bp.get("")
def search() -> ResponseReturnValue:
    args = MultiDict([(k, v) for k, v in request.args.items(multi=True) if v != ""])  # an empty box: no filter
    cursors = args.poplist("cursor")
    problems: list[ParamProblem] = []
    if "format" in args:
        problems.append(ParamProblem("format", "this page lists decisions; the CSV export is GET /v1/evaluations"))
        args.poplist("format")
    if len(cursors) > 1:
        problems.append(ParamProblem("cursor", "give `cursor` once"))
    query = None
    try:
        query = parse(args, app_context.decision_log(), wants_csv=False)
    except BadQuery as exc:
        problems += exc.problems
    cursor = cursors[0] if len(cursors) == 1 else None
    if query is not None and cursor is not None and not problems:
        try:
            queries.decode_position(query.filters, cursor)
        except queries.BadCursor as exc:
            problems.append(ParamProblem("cursor", str(exc)))
    if problems or query is None:
        return _list_page(args, None, problems), 400
    window = queries.browse(app_context.decision_log(), query.filters, limit=query.limit, cursor=cursor)
    return _list_page(args, window, [])


def _list_page(args: MultiDict[str, str], window: queries.Window | None, problems: list[ParamProblem]) -> str:
    log_ = app_context.decision_log()
    known = queries.known_options(log_)
    actives = [a.ruleset for a in app_context.registry().all()]
    kept = {k: v for k, v in args.items() if k != "cursor"}
    return render_template(
        "decisions.html",
        entered=kept,
        errors={p.parameter: p for p in problems},
        problems=problems,
        rulesets=sorted(known),
        options=sorted(set().union(*known.values())) if known else [],
        roles=queries.ROLES,
        channels=queries.known_channels(log_),
        labels=decision_views.option_labels(actives),
        window=window,
        older=url_for(".search", **kept, cursor=window.older) if window and window.older else None,
        newer=url_for(".search", **kept, cursor=window.newer) if window and window.newer else None,
        newest=url_for(".search", **kept) if request.args.get("cursor") else None,
        extra={k: v for k, v in kept.items() if k not in FILTERS},
    )


# ---- one decision and its replay -----------------------------------------------------------------


@bp.get("/<decision_id>")
def decision(decision_id: str) -> ResponseReturnValue:
    record = _record(decision_id)
    revision, unavailable = _revision(record["ruleset"]["sha256"])
    active = app_context.registry().get(record["ruleset"]["id"])
    return render_template(
        "decision.html",
        record=record,
        d=record["decision"],
        view=decision_views.detail(record, revision, active),
        revision_problem=unavailable,
    )


@bp.post("/<decision_id>/replay")
def replay(decision_id: str) -> ResponseReturnValue:
    record = _record(decision_id)
    report = replay_decision(app_context.decision_log(), app_context.registry(), record["decision_id"])
    if report is None:  # cannot happen for a record just read: the log is append-only
        raise _NoDecision(record["decision_id"])
    return render_template("replay.html", record=record, report=report)


# ---- feedback --------------------------------------------------------------------------------------


@bp.get("/feedback")
def feedback() -> ResponseReturnValue:
    log_ = app_context.decision_log()
    known = queries.known_options(log_)
    problems = [ParamProblem(n, f"unknown parameter `{n}`", ("ruleset",)) for n in request.args if n != "ruleset"]
    ruleset = request.args.get("ruleset") or None
    if ruleset is not None and ruleset not in known:
        problems.append(
            ParamProblem("ruleset", f"no decisions were made with ruleset `{ruleset}`", tuple(sorted(known)))
        )
    report = queries.feedback_report(log_, ruleset) if not problems else {"rules": [], "without_rule": []}
    refs: dict[tuple[str, str], decision_views.RuleRef] = {}
    for item in report["rules"]:
        active = app_context.registry().get(item["ruleset"])
        revision = active.ruleset if active is not None else None
        (ref,) = decision_views.rule_refs([item["rule"]], item["ruleset"], revision, active)
        refs[(item["ruleset"], item["rule"])] = ref
    page = render_template(
        "decision_feedback.html",
        report=report,
        refs=refs,
        rulesets=sorted(known),
        chosen=ruleset,
        problems=problems,
        errors={p.parameter: p for p in problems},
    )
    return page, 400 if problems else 200


# ---- signing in and out ----------------------------------------------------------------------------


@bp.get("/sign-in")
def sign_in() -> ResponseReturnValue:
    return _sign_in_page(request.args.get("next"), None, 200)


@bp.post("/sign-in")
def sign_in_submit() -> ResponseReturnValue:
    token = request.form.get("token", "").strip()
    target = _safe_next(request.form.get("next"))
    if not auditors.token_hashes(current_app.config["AUDITOR_TOKEN_HASHES"]):
        return _sign_in_page(target, "No auditor token is configured on this service (AUDITOR_TOKEN_HASHES).", 403)
    if not token:
        return _sign_in_page(target, "Enter your auditor token.", 400)
    digest = auditors.matching_digest(token)
    if digest is None:
        log.warning("decision pages: sign-in refused (not an auditor token)")
        response = current_app.make_response(
            _sign_in_page(target, "This is not an auditor token of this service. Check it and try again.", 401)
        )
        response.headers["WWW-Authenticate"] = f'Bearer realm="{auditors.REALM}"'
        return response
    auditor_session.sign_in(digest)
    log.info("decision pages: auditor signed in (token %s...)", digest[:8])
    return redirect(target or url_for(".search"), 303)


def _sign_in_page(target: str | None, error: str | None, status: int) -> ResponseReturnValue:
    page = render_template(
        "sign_in.html",
        next=_safe_next(target),
        error=error,
        signed_out="signed_out" in request.args,
        sign_in_csrf=auditor_session.csrf_token(),
        max_hours=auditor_session.MAX_AGE // 3600,
    )
    return page, status


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    auditor_session.sign_out()
    return redirect(url_for(".sign_in", signed_out=1), 303)
