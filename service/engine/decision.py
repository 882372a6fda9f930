"""Turn the fired rules into a decision: candidates, exclusions, referrals, warnings.

The decision semantics are the contract auditors sign, so they live in one place:
- an exclusion always beats a recommendation (an excluded option is never a candidate or referral);
- several strengths for one option give the strongest (strengths are listed strongest first);
- candidates are ordered by strength, then by their order in the file's option catalogue;
- caveats attach to an option only when it is a candidate; a rule's warning is always shown;
- rules that could fire if an unknown input were recorded are reported as warnings naming the inputs.
"""

from __future__ import annotations

from typing import Any

from ..ruleset.model import Option, Rule, Ruleset


def _references(ruleset: Ruleset, ids: list[str]) -> list[dict[str, str]]:
    out = []
    for rid in ids:
        ref = ruleset.references[rid]
        item = {"id": ref.id, "citation": ref.citation}
        if ref.url:
            item["url"] = ref.url
        if ref.evidence:
            item["evidence"] = ref.evidence
        out.append(item)
    return out


def _option_card(ruleset: Ruleset, option: Option) -> dict[str, Any]:
    course = {k: v for k, v in vars(option.course).items() if v}
    card: dict[str, Any] = {
        "option": option.id,
        "label": option.label,
        "kind": option.kind,
        "summary": option.summary,
    }
    if option.regimen:
        card["regimen"] = option.regimen
    if course:
        card["course"] = course
    if option.cost:
        card["cost"] = option.cost
    return card


def assemble(
    ruleset: Ruleset,
    fired: list[str],
    undecided: list[tuple[Rule, list[str]]] | None = None,
) -> dict[str, Any]:
    """Build the decision body from the ids of the fired rules (in file order)."""
    rules = [ruleset.rule(rid) for rid in fired]
    recommended: dict[str, dict[str, Any]] = {}
    excluded: dict[str, list[dict[str, str]]] = {}
    referred: dict[str, dict[str, Any]] = {}
    caveats: dict[str, list[dict[str, str]]] = {}
    warnings: list[dict[str, Any]] = []

    for rule in rules:
        for action in rule.then:
            if action.kind == "warn":
                warnings.append({"kind": "rule", "rule": rule.id, "text": action.text})
                continue
            for oid in action.options:
                if action.kind == "recommend":
                    entry = recommended.setdefault(oid, {"strength": action.strength, "rationale": [], "rules": []})
                    if ruleset.strength_rank(action.strength) < ruleset.strength_rank(entry["strength"]):
                        entry["strength"] = action.strength
                    entry["rationale"].append(action.text)
                    if rule.id not in entry["rules"]:
                        entry["rules"].append(rule.id)
                elif action.kind == "exclude":
                    excluded.setdefault(oid, []).append({"rule": rule.id, "text": action.text})
                elif action.kind == "refer":
                    entry = referred.setdefault(oid, {"rationale": [], "rules": []})
                    entry["rationale"].append(action.text)
                    if rule.id not in entry["rules"]:
                        entry["rules"].append(rule.id)
                elif action.kind == "caveat":
                    caveats.setdefault(oid, []).append({"rule": rule.id, "text": action.text})

    candidates = []
    for oid, entry in recommended.items():
        if oid in excluded:
            continue
        option = ruleset.options[oid]
        card = _option_card(ruleset, option)
        card["strength"] = entry["strength"]
        card["rationale"] = entry["rationale"]
        card["caveats"] = [*option.caveats, *(c["text"] for c in caveats.get(oid, []))]
        card["evidence"] = {
            "level": option.evidence_level,
            "note": option.evidence_note,
            "references": _references(ruleset, list(option.references)),
        }
        card["rules"] = entry["rules"] + [c["rule"] for c in caveats.get(oid, []) if c["rule"] not in entry["rules"]]
        candidates.append(card)
    candidates.sort(key=lambda c: (ruleset.strength_rank(c["strength"]), ruleset.option_index(c["option"])))

    referrals = []
    for oid in sorted(referred, key=ruleset.option_index):
        if oid in excluded:
            continue
        option = ruleset.options[oid]
        card = _option_card(ruleset, option)
        card["rationale"] = referred[oid]["rationale"]
        card["rules"] = referred[oid]["rules"]
        referrals.append(card)

    excluded_out = [
        {"option": oid, "label": ruleset.options[oid].label, "reasons": excluded[oid]}
        for oid in sorted(excluded, key=ruleset.option_index)
    ]

    for rule, fields in undecided or []:
        labels = ", ".join(ruleset.inputs[f].label for f in fields)
        warnings.append(
            {
                "kind": "unknown_inputs",
                "rule": rule.id,
                "fields": fields,
                "text": f"Not recorded: {labels}. Rule “{rule.title}” could apply once recorded.",
            }
        )

    return {
        "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": ruleset.sha256},
        "candidates": candidates,
        "excluded": excluded_out,
        "referrals": referrals,
        "warnings": warnings,
        "fired_rules": list(fired),
    }
