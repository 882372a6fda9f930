"""Replay a recorded decision: re-evaluate its profile with the stored revision and with the current one.

"Identical" compares what the answer consisted of - candidates (in order), excluded options, referrals
and fired rules - not timestamps or wording. Replaying with the stored revision checks that the log and
the engine still reproduce the answer; replaying with the current revision shows what would change.
A stored revision that no longer loads, or a profile the current revision rejects, is reported in the
result, never raised: the auditor asked a question about the past, and that is an answer too.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.exc import SQLAlchemyError

from ..engine import Engine, InvalidProfile, TooManyCompletions
from ..engine.partly import marked_in
from ..registry import Registry
from ..ruleset import RulesetError, load_text
from ..ruleset.model import Ruleset
from .errors import LogError
from .log import DecisionLog, outcome
from .models import Decision, Revision

COMPARED = ("candidates", "excluded", "referrals", "fired_rules")


def replay(log: DecisionLog, registry: Registry, decision_id: str) -> dict[str, Any] | None:
    """The replay report, or None if the log has no such decision."""
    try:
        with log.engine.connect() as conn:
            row = conn.execute(
                select(
                    Decision.profile,
                    Decision.ruleset_id,
                    Decision.ruleset_version,
                    Decision.ruleset_sha256,
                    Decision.decision,
                    *(getattr(Decision, c) for c in COMPARED),
                ).where(Decision.decision_id == decision_id)
            ).first()
            if row is None:
                return None
            revision = conn.execute(select(Revision.__table__).where(Revision.sha256 == row.ruleset_sha256)).one()
    except SQLAlchemyError as exc:
        raise LogError("the decision log cannot be read") from exc

    recorded = {c: json.loads(getattr(row, c)) for c in COMPARED}
    profile = json.loads(row.profile)
    # A decision made with required facts missing (CDS Hooks) is replayed the same way: over every completion.
    stored_decision = json.loads(row.decision)
    partial = "partial" in stored_decision
    # Sets the record gave only in part (engine/partly.py) are replayed as such, not as whole lists.
    partly = marked_in(stored_decision.get("warnings") or ())
    report: dict[str, Any] = {
        "decision_id": decision_id,
        "recorded": {
            "ruleset": {"id": row.ruleset_id, "version": row.ruleset_version, "sha256": row.ruleset_sha256},
            **recorded,
        },
    }
    stored, problem = _stored_ruleset(revision)
    if stored is None:
        report["stored_revision"] = {"available": False, "ruleset": {"sha256": row.ruleset_sha256}, "reason": problem}
    else:
        report["stored_revision"] = _run(stored, registry, profile, recorded, partial, partly)

    current = registry.get(row.ruleset_id)
    if current is None:
        report["current_revision"] = {"available": False, "reason": f"ruleset `{row.ruleset_id}` is not loaded now"}
    else:
        report["current_revision"] = _run(current.ruleset, registry, profile, recorded, partial, partly)
    return report


def stored_ruleset(log: DecisionLog, sha256: str) -> tuple[Ruleset | None, str]:
    """A revision as the log stores it, loaded again (e.g. for the labels of an old decision), or None and why."""
    try:
        with log.engine.connect() as conn:
            revision = conn.execute(select(Revision.__table__).where(Revision.sha256 == sha256)).first()
    except SQLAlchemyError as exc:
        raise LogError("the decision log cannot be read") from exc
    if revision is None:
        return None, f"the decision log holds no revision {sha256[:12]}"
    return _stored_ruleset(revision)


def _stored_ruleset(revision: Row[Any]) -> tuple[Ruleset | None, str]:
    """The stored revision loaded again, or None and why not."""
    name = f"<revision {revision.sha256[:12]}>"
    try:
        ruleset = load_text(
            revision.source_text,
            name,
            tests_text=revision.tests_text,
            tests_file=f"<tests of {name}>" if revision.tests_text is not None else "",
        )
    except RulesetError as exc:
        return None, f"the stored revision no longer loads: {exc}"
    if ruleset.sha256 != revision.sha256:
        return None, "the stored text does not hash to its sha256: the revision was altered (run decisions verify)"
    return ruleset, ""


def _run(
    ruleset: Ruleset,
    registry: Registry,
    profile: Any,
    recorded: dict[str, list[str]],
    partial: bool = False,
    partly: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Evaluate on the active engine if this revision is the active one, else on a fresh engine."""
    active = registry.get(ruleset.id)
    shared = active is not None and active.ruleset.sha256 == ruleset.sha256
    engine = active.engine if shared and active else Engine(ruleset)
    try:
        checked = engine.check(profile, partial=partial, partly_known=partly)
        result = outcome(engine.decide_partial(checked) if partial else engine.decide(checked))
    except TooManyCompletions as exc:
        return {
            "available": False,
            "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": ruleset.sha256},
            "reason": f"the recorded partial profile cannot be decided with this revision: {exc}",
        }
    except InvalidProfile as exc:
        return {
            "available": False,
            "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": ruleset.sha256},
            "reason": "the recorded profile is not valid for this revision",
            "problems": [{"field": e.field, "message": e.message} for e in exc.errors],
        }
    finally:
        if not shared:
            engine.close()
    differences = [
        {"field": field, "recorded": recorded[field], "replayed": result[field]}
        for field in COMPARED
        if recorded[field] != result[field]
    ]
    return {
        "available": True,
        "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": ruleset.sha256},
        "result": result,
        "identical": not differences,
        "differences": differences,
    }
