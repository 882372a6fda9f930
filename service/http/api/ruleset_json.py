"""A loaded ruleset as JSON: what an integration needs to build its own form and to show the rules.

Conditions are written back in the file's own form (`{"field": "age", "at_least": 18}`, `{"all": [...]}`)
next to the plain words auditors read, so the JSON, the YAML and the rendered document say the same thing.
"""

from __future__ import annotations

from typing import Any

from ...registry import Active
from ...ruleset.model import Action, All, Any_, Compare, Condition, InputField, Invariant, Not, Presence, Ruleset
from ...ruleset.words import describe, describe_action


def condition_json(cond: Condition) -> dict[str, Any]:
    if isinstance(cond, Compare):
        value = list(cond.value) if isinstance(cond.value, tuple) else cond.value
        return {"field": cond.field, cond.op: value}
    if isinstance(cond, Presence):
        return {"known" if cond.known else "unknown": cond.field}
    if isinstance(cond, Not):
        return {"not": condition_json(cond.item)}
    key = "all" if isinstance(cond, All) else "any"
    assert isinstance(cond, (All, Any_))
    return {key: [condition_json(c) for c in cond.items]}


def _action(rs: Ruleset, action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": action.kind, "text": action.text, "words": describe_action(rs, action)}
    if action.options:
        out["options"] = list(action.options)
    if action.strength:
        out["strength"] = action.strength
    return out


def input_json(f: InputField) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.id,
        "type": f.type,
        "label": f.label,
        "help": f.help,
        "required": f.required,
        "group": f.group or None,
    }
    if f.type == "integer":
        out.update(minimum=f.minimum, maximum=f.maximum, unit=f.unit)
    if f.values:
        out["values"] = [{"code": v.code, "label": v.label, **({"help": v.help} if v.help else {})} for v in f.values]
    return out


def _invariant(rs: Ruleset, inv: Invariant, status: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": inv.id,
        "title": inv.title,
        "kind": inv.kind,
        "options": list(inv.options),
        **({"strength": inv.strength} if inv.strength else {}),
        "when": condition_json(inv.when) if inv.when is not None else None,
        "when_words": describe(rs, inv.when) if inv.when is not None else None,
    }
    result = status.get(inv.id)
    if result is not None:
        out["status"] = result.status
        out["method"] = result.method
    return out


def ruleset_json(active: Active) -> dict[str, Any]:
    """Metadata, inputs, options, rules and invariants (with their proof status) of an active ruleset."""
    rs, report = active.ruleset, active.report
    statuses = {r.id: r for r in report.invariants}
    return {
        **rs.summary,
        "institution": rs.institution,
        "effective": rs.effective.isoformat(),
        "review_due": rs.review_due.isoformat(),
        "purpose": rs.purpose,
        "explanation": rs.explanation,
        "keywords": list(rs.keywords),
        "authors": [{"name": p.name, "role": p.role} for p in rs.authors],
        "reviewers": [
            {"name": p.name, "role": p.role, "date": p.date.isoformat() if p.date else None} for p in rs.reviewers
        ],
        "groups": [{"id": gid, "label": label} for gid, label in rs.groups],
        "inputs": [input_json(f) for f in rs.inputs.values()],
        "strengths": [{"id": s.id, "label": s.label, "description": s.description} for s in rs.strengths],
        "options": [
            {
                "id": o.id,
                "label": o.label,
                "kind": o.kind,
                "summary": o.summary,
                "regimen": o.regimen or None,
                "course": {k: v for k, v in vars(o.course).items() if v},
                "cost": o.cost or None,
                "evidence": {"level": o.evidence_level, "note": o.evidence_note},
                "caveats": list(o.caveats),
                "references": list(o.references),
            }
            for o in rs.options.values()
        ],
        "rules": [
            {
                "id": r.id,
                "title": r.title,
                "description": r.description or None,
                "when": condition_json(r.when),
                "when_words": describe(rs, r.when),
                "then": [_action(rs, a) for a in r.then],
                "references": list(r.references),
            }
            for r in rs.rules
        ],
        "invariants": [_invariant(rs, inv, statuses) for inv in rs.invariants],
        "references": [
            {"id": ref.id, "citation": ref.citation, "url": ref.url or None, "evidence": ref.evidence or None}
            for ref in rs.references.values()
        ],
        "verification": {
            "tests": len(report.tests),
            "tests_passed": sum(1 for t in report.tests if t.passed),
            "coverage_percent": round(report.coverage, 1),
            "crosscheck_profiles": report.crosscheck_profiles,
        },
    }
