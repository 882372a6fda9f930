"""What the decision pages show, shaped from a log record and the ruleset revision it was made with.

Labels come from the revision the decision names (its words then, not today's); links to rules go to the
ruleset page, which documents the active revision, so a rule is linked only when that page has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import url_for

from ...registry import Active
from ...ruleset.model import Ruleset
from ..html import presenting


@dataclass(frozen=True)
class RuleRef:
    id: str
    title: str
    url: str | None  # the rule on /rulesets/<id>, when the active revision documents it


def rule_refs(rule_ids: list[str], ruleset_id: str, revision: Ruleset | None, active: Active | None) -> list[RuleRef]:
    titles = {r.id: r.title for r in revision.rules} if revision is not None else {}
    documented = {r.id for r in active.ruleset.rules} if active is not None else set()
    if active is not None and not titles:
        titles = {r.id: r.title for r in active.ruleset.rules}
    page = url_for("pages.ruleset", ruleset_id=ruleset_id) if active is not None else ""
    return [RuleRef(rid, titles.get(rid, ""), f"{page}#rule-{rid}" if rid in documented else None) for rid in rule_ids]


def profile_facts(revision: Ruleset | None, profile: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, value) of each recorded fact, and the labels of the facts not recorded."""
    if revision is None:  # the revision cannot be loaded: show the stored ids and values as they are
        return [(fid, _plain(value)) for fid, value in profile.items()], []
    rows = presenting.profile_rows(revision, profile)
    missing = [f.label for fid, f in revision.inputs.items() if fid not in profile]
    return rows, missing


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "None of these"
    return str(value)


def option_labels(revisions: list[Ruleset]) -> dict[str, str]:
    """Option id -> label across the given revisions (for lists that show ids)."""
    labels: dict[str, str] = {}
    for revision in revisions:
        for oid, option in revision.options.items():
            labels.setdefault(oid, option.label)
    return labels


def feedback_by_card(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in record.get("feedback", []):
        out.setdefault(item["card"], []).append(item)
    return out


def detail(record: dict[str, Any], revision: Ruleset | None, active: Active | None) -> dict[str, Any]:
    """Everything decision.html needs beyond the record itself."""
    decision = record["decision"]
    rid = record["ruleset"]["id"]
    facts, missing = profile_facts(revision, record["profile"])
    strengths = {s.id: s.label for s in revision.strengths} if revision is not None else {}
    return {
        "facts": facts,
        "not_recorded": missing,
        "strengths": strengths,
        "option_labels": option_labels([revision] if revision is not None else []),
        "fired": rule_refs(record["fired_rules"], rid, revision, active),
        "rule": {r.id: r for r in rule_refs(_every_rule(decision, record), rid, revision, active)},
        "feedback": feedback_by_card(record),
        "partial": decision.get("partial"),
        "missing_labels": _labels(revision, (decision.get("partial") or {}).get("missing", [])),
        "current_version": active.ruleset.version if active is not None else None,
        "same_revision": active is not None and active.ruleset.sha256 == record["ruleset"]["sha256"],
    }


def _every_rule(decision: dict[str, Any], record: dict[str, Any]) -> list[str]:
    ids = list(record["fired_rules"])
    for item in (*decision["candidates"], *decision["referrals"]):
        ids += item.get("rules", [])
    for item in decision["excluded"]:
        ids += [r["rule"] for r in item["reasons"]]
    ids += [w["rule"] for w in decision.get("warnings", []) if w.get("rule")]
    for card in record.get("cards", []):
        ids += card["rules"]
    return list(dict.fromkeys(ids))


def _labels(revision: Ruleset | None, field_ids: list[str]) -> list[str]:
    if revision is None:
        return list(field_ids)
    return [revision.inputs[f].label if f in revision.inputs else f for f in field_ids]
