"""Turn the fired rules into a decision: candidates, exclusions, referrals, warnings.

The decision semantics are the contract auditors sign, so they live in one place:
- an exclusion always beats a recommendation (an excluded option is never a candidate or referral);
- several strengths for one option give the strongest (strengths are listed strongest first);
- candidates are ordered by strength, then by their order in the file's option catalogue;
- caveats attach to an option only when it is a candidate; a rule's warning is always shown;
- rules that could fire if an unknown input were recorded are reported as warnings naming the inputs.

Everything that depends only on the ruleset (option texts, references, ranks) is prepared once per
ruleset; per request only the parts that depend on the fired rules are built.
"""

from __future__ import annotations

from typing import Any

from ..ruleset.model import Option, Rule, Ruleset


def _references(ruleset: Ruleset, ids: tuple[str, ...]) -> list[dict[str, str]]:
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


def _option_card(option: Option) -> dict[str, Any]:
    course = {k: v for k, v in vars(option.course).items() if v}
    card: dict[str, Any] = {"option": option.id, "label": option.label, "kind": option.kind, "summary": option.summary}
    if option.regimen:
        card["regimen"] = option.regimen
    if course:
        card["course"] = course
    if option.cost:
        card["cost"] = option.cost
    return card


class Assembler:
    """Decision assembly for one ruleset."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset
        self.rules = {r.id: r for r in ruleset.rules}
        self.strength_rank = {s.id: i for i, s in enumerate(ruleset.strengths)}
        self.option_index = {o: i for i, o in enumerate(ruleset.options)}
        self.cards = {o.id: _option_card(o) for o in ruleset.options.values()}
        self.evidence = {
            o.id: {
                "level": o.evidence_level,
                "note": o.evidence_note,
                "references": _references(ruleset, o.references),
            }
            for o in ruleset.options.values()
        }

    def assemble(self, fired: list[str], undecided: list[tuple[Rule, list[str]]] | None = None) -> dict[str, Any]:
        """Build the decision body from the ids of the fired rules (in file order)."""
        rs, rank = self.rs, self.strength_rank
        recommended: dict[str, dict[str, Any]] = {}
        excluded: dict[str, list[dict[str, str]]] = {}
        referred: dict[str, dict[str, Any]] = {}
        caveats: dict[str, list[dict[str, str]]] = {}
        warnings: list[dict[str, Any]] = []

        for rid in fired:
            rule = self.rules[rid]
            for action in rule.then:
                kind = action.kind
                if kind == "warn":
                    warnings.append({"kind": "rule", "rule": rid, "text": action.text})
                    continue
                for oid in action.options:
                    if kind == "recommend":
                        entry = recommended.get(oid)
                        if entry is None:
                            entry = recommended[oid] = {"strength": action.strength, "rationale": [], "rules": []}
                        elif rank[action.strength] < rank[entry["strength"]]:
                            entry["strength"] = action.strength
                        entry["rationale"].append(action.text)
                        if rid not in entry["rules"]:
                            entry["rules"].append(rid)
                    elif kind == "exclude":
                        excluded.setdefault(oid, []).append({"rule": rid, "text": action.text})
                    elif kind == "refer":
                        entry = referred.setdefault(oid, {"rationale": [], "rules": []})
                        entry["rationale"].append(action.text)
                        if rid not in entry["rules"]:
                            entry["rules"].append(rid)
                    else:  # caveat
                        caveats.setdefault(oid, []).append({"rule": rid, "text": action.text})

        candidates = []
        for oid, entry in recommended.items():
            if oid in excluded:
                continue
            extra = caveats.get(oid, [])
            card = dict(self.cards[oid])
            card["strength"] = entry["strength"]
            card["rationale"] = entry["rationale"]
            card["caveats"] = [*rs.options[oid].caveats, *(c["text"] for c in extra)]
            ev = self.evidence[oid]
            card["evidence"] = {**ev, "references": [dict(r) for r in ev["references"]]}
            card["rules"] = entry["rules"] + [c["rule"] for c in extra if c["rule"] not in entry["rules"]]
            candidates.append(card)
        candidates.sort(key=lambda c: (rank[c["strength"]], self.option_index[c["option"]]))

        referrals = []
        for oid in sorted(referred, key=self.option_index.__getitem__):
            if oid in excluded:
                continue
            card = dict(self.cards[oid])
            card["rationale"] = referred[oid]["rationale"]
            card["rules"] = referred[oid]["rules"]
            referrals.append(card)

        excluded_out = [
            {"option": oid, "label": rs.options[oid].label, "reasons": excluded[oid]}
            for oid in sorted(excluded, key=self.option_index.__getitem__)
        ]

        decision = {
            "ruleset": {"id": rs.id, "version": rs.version, "sha256": rs.sha256},
            "candidates": candidates,
            "excluded": excluded_out,
            "referrals": referrals,
            "warnings": warnings,
            "fired_rules": list(fired),
        }
        self.add_pending(decision, undecided or [])
        return decision

    def add_pending(self, decision: dict[str, Any], undecided: list[tuple[Rule, list[str]]]) -> None:
        """Warn about each rule that could still change this decision once the facts it names are recorded."""
        for rule, fields in undecided:
            labels = ", ".join(self.rs.inputs[f].label for f in fields)
            decision["warnings"].append(
                {
                    "kind": "unknown_inputs",
                    "rule": rule.id,
                    "fields": fields,
                    "text": f"Not recorded: {labels}. Rule “{rule.title}” could apply once recorded.",
                }
            )

    @staticmethod
    def outcome_sets(decision: dict[str, Any]) -> tuple[set[str], set[str]]:
        """(offered, excluded) option ids of a decision."""
        offered = {c["option"] for c in decision["candidates"]} | {r["option"] for r in decision["referrals"]}
        return offered, {e["option"] for e in decision["excluded"]}

    @staticmethod
    def could_change(rule: Rule, offered: set[str], excluded: set[str]) -> bool:
        """Would this rule, if it fired, change the decision? (Not if it only excludes what is not offered.)"""
        for action in rule.then:
            if action.kind == "warn":
                return True
            for option in action.options:
                if action.kind in ("recommend", "refer") and option not in excluded:
                    return True
                if action.kind in ("exclude", "caveat") and option in offered:
                    return True
        return False


def assemble(
    ruleset: Ruleset, fired: list[str], undecided: list[tuple[Rule, list[str]]] | None = None
) -> dict[str, Any]:
    """One-off assembly (verification, tools); the engine keeps an Assembler per ruleset."""
    return Assembler(ruleset).assemble(fired, undecided)
