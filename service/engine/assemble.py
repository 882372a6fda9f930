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

from collections import defaultdict
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from ..ruleset.model import Option, Rule, Ruleset
from .answer import (
    Candidate,
    Citation,
    Decision,
    Evidence,
    Exclusion,
    Reason,
    Referral,
    RulesetRef,
    Warning,
    WarningKind,
)


def _references(ruleset: Ruleset, ids: tuple[str, ...]) -> tuple[Citation, ...]:
    out = []
    for rid in ids:
        ref = ruleset.references[rid]
        out.append(Citation(id=ref.id, citation=ref.citation, url=ref.url or None, evidence=ref.evidence or None))
    return tuple(out)


class _Card:
    """The parts of an option's entry that depend only on the ruleset."""

    __slots__ = ("cost", "course", "kind", "label", "option", "regimen", "summary")

    def __init__(self, option: Option) -> None:
        course = {k: v for k, v in vars(option.course).items() if v}
        self.option, self.label, self.kind, self.summary = option.id, option.label, option.kind, option.summary
        self.regimen = option.regimen or None
        self.course = MappingProxyType(course) if course else None
        self.cost = option.cost or None


class Assembler:
    """Decision assembly for one ruleset."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset
        self.rules = {r.id: r for r in ruleset.rules}
        self.strength_rank = {s.id: i for i, s in enumerate(ruleset.strengths)}
        self.option_index = {o: i for i, o in enumerate(ruleset.options)}
        self.cards = {o.id: _Card(o) for o in ruleset.options.values()}
        self.evidence = {
            o.id: Evidence(level=o.evidence_level, note=o.evidence_note, references=_references(ruleset, o.references))
            for o in ruleset.options.values()
        }
        self.ref = RulesetRef(id=ruleset.id, version=ruleset.version, sha256=ruleset.sha256)

    def assemble(
        self,
        fired: list[str],
        undecided: list[tuple[Rule, list[str]]] | None = None,
        pending: Callable[[set[str], set[str]], list[tuple[Rule, list[str]]]] | None = None,
    ) -> Decision:
        """Build the decision from the ids of the fired rules (in file order).

        `pending(offered, excluded)` names the rules still waiting for unrecorded facts, given the option
        ids the decision offers and excludes; each becomes an `unknown_inputs` warning (as `undecided`).
        """
        rs, rank = self.rs, self.strength_rank
        recommended: dict[str, list[Any]] = {}  # option -> [strength, rationale, rules]
        excluded: dict[str, list[Reason]] = {}
        referred: dict[str, tuple[list[str], list[str]]] = {}
        caveats: dict[str, list[Reason]] = defaultdict(list)
        warnings: list[Warning] = []

        for rid in fired:
            rule = self.rules[rid]
            for action in rule.then:
                kind = action.kind
                if kind == "warn":
                    warnings.append(Warning(kind=WarningKind.RULE, rule=rid, text=action.text))
                    continue
                for oid in action.options:
                    if kind == "recommend":
                        entry = recommended.get(oid)
                        if entry is None:
                            entry = recommended[oid] = [action.strength, [], []]
                        elif rank[action.strength] < rank[entry[0]]:
                            entry[0] = action.strength
                        entry[1].append(action.text)
                        if rid not in entry[2]:
                            entry[2].append(rid)
                    elif kind == "exclude":
                        excluded.setdefault(oid, []).append(Reason(rule=rid, text=action.text))
                    elif kind == "refer":
                        texts, rules = referred.setdefault(oid, ([], []))
                        texts.append(action.text)
                        if rid not in rules:
                            rules.append(rid)
                    else:  # caveat
                        caveats[oid].append(Reason(rule=rid, text=action.text))

        candidates = []
        for oid, (strength, rationale, rules) in recommended.items():
            if oid in excluded:
                continue
            extra = caveats.get(oid, ())
            card = self.cards[oid]
            candidates.append(
                Candidate(
                    option=oid,
                    label=card.label,
                    kind=card.kind,
                    summary=card.summary,
                    regimen=card.regimen,
                    course=card.course,
                    cost=card.cost,
                    strength=strength,
                    rationale=tuple(rationale),
                    caveats=(*rs.options[oid].caveats, *(c.text for c in extra)),
                    evidence=self.evidence[oid],
                    rules=(*rules, *(c.rule for c in extra if c.rule not in rules)),
                )
            )
        candidates.sort(key=lambda c: (rank[c.strength], self.option_index[c.option]))

        referrals = []
        for oid in sorted(referred, key=self.option_index.__getitem__):
            if oid in excluded:
                continue
            card = self.cards[oid]
            texts, rules = referred[oid]
            referrals.append(
                Referral(
                    option=oid,
                    label=card.label,
                    kind=card.kind,
                    summary=card.summary,
                    regimen=card.regimen,
                    course=card.course,
                    cost=card.cost,
                    rationale=tuple(texts),
                    rules=tuple(rules),
                )
            )

        excluded_out = tuple(
            Exclusion(option=oid, label=rs.options[oid].label, reasons=tuple(excluded[oid]))
            for oid in sorted(excluded, key=self.option_index.__getitem__)
        )
        if pending is not None:
            offered = {c.option for c in candidates} | {r.option for r in referrals}
            undecided = [*(undecided or ()), *pending(offered, {e.option for e in excluded_out})]
        warnings.extend(self.pending(undecided or []))
        return Decision(
            ruleset=self.ref,
            candidates=tuple(candidates),
            excluded=excluded_out,
            referrals=tuple(referrals),
            warnings=tuple(warnings),
            fired_rules=tuple(fired),
        )

    def pending(self, undecided: list[tuple[Rule, list[str]]]) -> list[Warning]:
        """A warning for each rule that could still change this decision once the facts it names are recorded."""
        out = []
        for rule, fields in undecided:
            labels = ", ".join(self.rs.inputs[f].label for f in fields)
            out.append(
                Warning(
                    kind=WarningKind.UNKNOWN_INPUTS,
                    rule=rule.id,
                    fields=tuple(fields),
                    text=f"Not recorded: {labels}. Rule “{rule.title}” could apply once recorded.",
                )
            )
        return out

    def outcome_ids(self, fired: list[str] | tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
        """(candidates, excluded, referrals) option ids of the decision `assemble(fired)` would build.

        Without building it: the impact analysis (lifecycle/impact.py) needs only the ids, for up to
        100,000 logged profiles. Same rule as assemble: exclusion beats recommendation and referral.
        """
        recommended: set[str] = set()
        excluded: set[str] = set()
        referred: set[str] = set()
        for rid in fired:
            for action in self.rules[rid].then:
                if action.kind == "recommend":
                    recommended.update(action.options)
                elif action.kind == "exclude":
                    excluded.update(action.options)
                elif action.kind == "refer":
                    referred.update(action.options)
        return recommended - excluded, excluded, referred - excluded

    @staticmethod
    def outcome_sets(decision: Decision) -> tuple[set[str], set[str]]:
        """(offered, excluded) option ids of a decision."""
        return decision.offered(), decision.excluded_ids()

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


def assemble(ruleset: Ruleset, fired: list[str], undecided: list[tuple[Rule, list[str]]] | None = None) -> Decision:
    """One-off assembly (verification, tools); the engine keeps an Assembler per ruleset."""
    return Assembler(ruleset).assemble(fired, undecided)
