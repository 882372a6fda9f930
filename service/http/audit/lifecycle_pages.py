"""Auditor pages of the ruleset lifecycle: revisions and stages, diff, impact on past decisions, shadow.

Nested under the decision pages (/decisions/rulesets/...): the same access rule applies (an auditor bearer
token, or the signed-in auditor session, whose cookie is scoped to /decisions), without touching that module.
Imported by create_app before the decision pages are registered.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ...lifecycle import LifecycleError
from ...lifecycle import diff as diffs
from ...lifecycle import impact as impacts
from ...lifecycle.gate import run_gate
from ...ruleset import Ruleset
from .. import app_context
from ..html.common import render_error
from . import pages as decision_pages

bp = Blueprint("lifecycle_pages", __name__, url_prefix="/rulesets")
IMPACT_PAGE_LIMIT = 20_000  # a page answers within a request; the CLI has no such bound


def _revision(ruleset_id: str, ref: str) -> Ruleset:
    lifecycle = app_context.lifecycle()
    stored = lifecycle.resolve(ruleset_id, ref)
    gate = run_gate(stored.files, lifecycle.workdir, expected_sha256=stored.sha256)
    if gate.ruleset is None:
        raise LifecycleError(f"revision {ref} does not load: {'; '.join(gate.problems[:3])}", 422)
    return gate.ruleset


@bp.errorhandler(LifecycleError)
def _refused(exc: LifecycleError) -> ResponseReturnValue:
    back = {"url": url_for("decision_pages.search"), "text": "Back to the decision log"}
    return render_error(exc, back=back)


@bp.get("/<ruleset_id>")
def revisions(ruleset_id: str) -> ResponseReturnValue:
    return render_template("lifecycle_status.html", status=app_context.lifecycle().status(ruleset_id))


@bp.get("/<ruleset_id>/diff")
def diff(ruleset_id: str) -> ResponseReturnValue:
    lifecycle = app_context.lifecycle()
    production = lifecycle.store.production().get(ruleset_id, "")
    old = _revision(ruleset_id, request.args.get("old") or production)
    new = _revision(ruleset_id, request.args.get("new") or production)
    return render_template("lifecycle_diff.html", diff=diffs.diff(old, new))


@bp.get("/<ruleset_id>/impact")
def impact(ruleset_id: str) -> ResponseReturnValue:
    candidate = _revision(ruleset_id, request.args.get("candidate", ""))
    since = None
    if request.args.get("since"):
        try:
            since = dt.datetime.fromisoformat(request.args["since"].replace("Z", "+00:00"))
        except ValueError:
            raise LifecycleError("`since` must be a date (YYYY-MM-DD) or an RFC 3339 time", 400) from None
        since = since.replace(tzinfo=dt.UTC) if since.tzinfo is None else since.astimezone(dt.UTC)
    asked = request.args.get("limit", IMPACT_PAGE_LIMIT, type=int) or IMPACT_PAGE_LIMIT
    limit = max(1, min(asked, IMPACT_PAGE_LIMIT))
    db = app_context.decision_log().engine
    result = impacts.impact(db, candidate, since=since, limit=limit)
    return render_template("lifecycle_impact.html", impact=result.as_dict(), limit=limit)


@bp.get("/<ruleset_id>/shadow")
def shadow(ruleset_id: str) -> ResponseReturnValue:
    return render_template("lifecycle_shadow.html", report=app_context.lifecycle().store.divergences(ruleset_id))


decision_pages.bp.register_blueprint(bp)  # nested: /decisions/rulesets/..., the decision pages' guard applies
