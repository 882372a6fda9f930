"""Turn the fired rules into a decision: candidates, exclusions, referrals, warnings.

The decision semantics are the contract auditors sign, so they live in one place:
- an exclusion always beats a recommendation (an excluded option is never a candidate or referral);
- several strengths for one option give the strongest (strengths are listed strongest first);
- candidates are ordered by strength, then by their order in the file's option catalogue;
- caveats attach to an option only when it is a candidate; a rule's warning is always shown;
- a caveat is shown only when its `when` is true for the patient, and each text once per option;
- every reason carries the patient's facts that made its rule fire (generated from the conditions);
- an unrecorded input that applies to the patient and could change the decision is one warning naming
  the options it could change.

Everything that depends only on the ruleset (option texts, references, ranks) is prepared once per
ruleset; per request only the parts that depend on the fired rules are built.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from ..ruleset.model import Option, Rule, Ruleset
from ..ruleset.words import fact_words
from . import reference
from .answer import (
    Candidate,
    CaveatNote,
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
from .partly import is_known


def _references(ruleset: Ruleset, ids: tuple[str, ...]) -> tuple[Citation, ...]:
    out = []
    for rid in ids:
        ref = ruleset.references[rid]
        out.append(Citation(id=ref.id, citation=ref.citation, url=ref.url or None, evidence=ref.evidence or None))
    return tuple(out)


class _Card:
    """The parts of an option's entry that depend only on the ruleset: `common` holds the fields a candidate
    and a referral share, built once and passed as keywords."""

    __slots__ = ("common",)

    def __init__(self, option: Option) -> None:
        course = {k: v for k, v in vars(option.course).items() if v}
        self.common: dict[str, Any] = {
            "label": option.label,
            "kind": option.kind,
            "summary": option.summary,
            "regimen": option.regimen or None,
            "course": MappingProxyType(course) if course else None,
            "cost": option.cost or None,
            "detail": option.detail or None,
        }


VERBS = (
    ("wait", "needed to consider"),
    ("exclude", "rule out"),
    ("recommend", "add"),
    ("refer", "refer to"),
    ("caveat", "add a caveat to"),
)


def _lower_first(label: str) -> str:
    """`Relevant conditions` -> `relevant conditions`; acronyms (`PRP`, `LLLT`) stay as they are."""
    first = label.split(" ", 1)[0]
    if first.isupper():
        return label
    return label[:1].lower() + label[1:]


class Assembler:
    """Decision assembly for one ruleset."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset
        self.rules = {r.id: r for r in ruleset.rules}
        self.strength_rank = {s.id: i for i, s in enumerate(ruleset.strengths)}
        self.option_index = {o: i for i, o in enumerate(ruleset.options)}
        self.input_index = {f: i for i, f in enumerate(ruleset.inputs)}
        self.cards = {o.id: _Card(o) for o in ruleset.options.values()}
        self.evidence = {
            o.id: Evidence(level=o.evidence_level, note=o.evidence_note, references=_references(ruleset, o.references))
            for o in ruleset.options.values()
        }
        self.ref = RulesetRef(id=ruleset.id, version=ruleset.version, sha256=ruleset.sha256)
        # The leaves behind each rule's firing, compiled on first use (only fired rules ever need them).
        self._why: dict[str, Callable[[dict[str, Any]], list[Any]]] = {}
        compile_ = reference.compile_condition
        self.standing = {
            o.id: tuple(
                (
                    CaveatNote(text=c.text, detail=c.detail or None, evidence=c.evidence or None),
                    compile_(ruleset, c.when) if c.when is not None else None,
                )
                for c in o.caveat_items
            )
            for o in ruleset.options.values()
        }
        self.action_when = {
            (r.id, i): compile_(ruleset, a.when)
            for r in ruleset.rules
            for i, a in enumerate(r.then)
            if a.when is not None
        }
        self.applies = {
            f.id: compile_(ruleset, f.applies_when) for f in ruleset.inputs.values() if f.applies_when is not None
        }

    def applicable(self, field: str, profile: dict[str, Any]) -> bool:
        """Does an input apply to this patient? Only a false `applies_when` says no (unknown still asks)."""
        test = self.applies.get(field)
        return test is None or test(profile) is not False

    def _facts(self, rid: str, profile: dict[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the facts behind a fired rule, the unrecorded inputs among them)."""
        if profile is None:
            return (), ()
        why = self._why.get(rid)
        if why is None:
            why = self._why[rid] = reference.compile_reasons(self.rs, self.rules[rid].when)
        facts: list[str] = []
        unrecorded: list[str] = []
        for leaf in why(profile):
            text = fact_words(self.rs, leaf, profile)
            if text not in facts:
                facts.append(text)
            if not is_known(profile, leaf.field) and leaf.field not in unrecorded:
                unrecorded.append(leaf.field)
        return tuple(facts), tuple(unrecorded)

    def assemble(
        self,
        fired: list[str],
        undecided: list[tuple[Rule, list[str]]] | None = None,
        pending: Callable[[set[str], set[str]], list[tuple[Rule, list[str]]]] | None = None,
        profile: dict[str, Any] | None = None,
    ) -> Decision:
        """Build the decision from the ids of the fired rules (in file order).

        `pending(offered, excluded)` names the rules still waiting for unrecorded facts, given the option
        ids the decision offers and excludes; they become one `unknown_inputs` warning per input (as
        `undecided`). With the `profile`, each reason carries the facts that made its rule fire, caveats
        are filtered by their `when`, and only inputs that apply to the patient are prompted for.
        """
        rs, rank = self.rs, self.strength_rank
        seen = profile if profile is not None else {}
        recommended: dict[str, list[Any]] = {}  # option -> [strength, rationale, rules, reasons]
        excluded: dict[str, list[Reason]] = {}
        unrecorded: dict[str, list[str]] = {}
        settled: set[str] = set()  # options excluded by at least one reason that rests on recorded facts only
        referred: dict[str, tuple[list[str], list[str], list[Reason]]] = {}
        caveats: dict[str, list[CaveatNote]] = defaultdict(list)
        warnings: list[Warning] = []

        for rid in fired:
            rule = self.rules[rid]
            facts, missing = self._facts(rid, profile)
            for index, action in enumerate(rule.then):
                kind = action.kind
                if kind == "warn":
                    warnings.append(Warning(kind=WarningKind.RULE, rule=rid, text=action.text))
                    continue
                if kind == "caveat":
                    test = self.action_when.get((rid, index))
                    if test is not None and test(seen) is not True:
                        continue
                    note = CaveatNote(
                        text=action.text, detail=action.detail or None, evidence=action.evidence or None, rule=rid
                    )
                    for oid in action.options:
                        caveats[oid].append(note)
                    continue
                reason = Reason(
                    rule=rid,
                    text=action.text,
                    facts=facts,
                    detail=action.detail or None,
                    evidence=action.evidence or None,
                )
                for oid in action.options:
                    if kind == "recommend":
                        entry = recommended.get(oid)
                        if entry is None:
                            entry = recommended[oid] = [action.strength, [], [], []]
                        elif rank[action.strength] < rank[entry[0]]:
                            entry[0] = action.strength
                        entry[1].append(action.text)
                        entry[3].append(reason)
                        if rid not in entry[2]:
                            entry[2].append(rid)
                    elif kind == "exclude":
                        excluded.setdefault(oid, []).append(reason)
                        # It may lift once recorded only if every reason for it waits for a fact.
                        if not missing:
                            settled.add(oid)
                        bucket = unrecorded.setdefault(oid, [])
                        bucket.extend(f for f in missing if f not in bucket)
                    else:  # refer
                        texts, rules, reasons = referred.setdefault(oid, ([], [], []))
                        texts.append(action.text)
                        reasons.append(reason)
                        if rid not in rules:
                            rules.append(rid)

        candidates = []
        for oid, (strength, rationale, rules, reasons) in recommended.items():
            if oid in excluded:
                continue
            notes: list[CaveatNote] = []
            texts: list[str] = []
            for note, test in self.standing[oid]:
                if (test is None or test(seen) is True) and note.text not in texts:
                    notes.append(note)
                    texts.append(note.text)
            extra_rules = []
            for note in caveats.get(oid, ()):
                if note.rule not in rules and note.rule not in extra_rules:
                    extra_rules.append(note.rule)
                if note.text not in texts:
                    notes.append(note)
                    texts.append(note.text)
            card = self.cards[oid]
            candidates.append(
                Candidate(
                    option=oid,
                    **card.common,
                    strength=strength,
                    rationale=tuple(rationale),
                    caveats=tuple(texts),
                    evidence=self.evidence[oid],
                    rules=(*rules, *extra_rules),
                    reasons=tuple(reasons),
                    caveat_notes=tuple(notes),
                )
            )
        candidates.sort(key=lambda c: (rank[c.strength], self.option_index[c.option]))

        referrals = []
        for oid in sorted(referred, key=self.option_index.__getitem__):
            if oid in excluded:
                continue
            card = self.cards[oid]
            texts, rules, reasons = referred[oid]
            referrals.append(
                Referral(
                    option=oid,
                    **card.common,
                    rationale=tuple(texts),
                    rules=tuple(rules),
                    reasons=tuple(reasons),
                )
            )

        excluded_out = tuple(
            Exclusion(
                option=oid,
                label=rs.options[oid].label,
                reasons=tuple(excluded[oid]),
                until_recorded=None
                if oid in settled
                else tuple(sorted(unrecorded[oid], key=self.input_index.__getitem__)) or None,
            )
            for oid in sorted(excluded, key=self.option_index.__getitem__)
        )
        offered = {c.option for c in candidates} | {r.option for r in referrals}
        excluded_ids = {e.option for e in excluded_out}
        if pending is not None:
            undecided = [*(undecided or ()), *pending(offered, excluded_ids)]
        waiting = {e.option: e.until_recorded for e in excluded_out if e.until_recorded}
        warnings.extend(self.prompts(undecided or [], offered, excluded_ids, profile, waiting))
        return Decision(
            ruleset=self.ref,
            candidates=tuple(candidates),
            excluded=excluded_out,
            referrals=tuple(referrals),
            warnings=tuple(warnings),
            fired_rules=tuple(fired),
        )

    def prompts(
        self,
        undecided: list[tuple[Rule, list[str]]],
        offered: set[str],
        excluded: set[str],
        profile: dict[str, Any] | None = None,
        waiting: dict[str, tuple[str, ...]] | None = None,
    ) -> list[Warning]:
        """One warning per unrecorded input that applies to the patient and could change the decision,
        naming the options it could change (most options first): "Record relevant conditions: needed to
        consider oral minoxidil; could rule out PRP". `waiting` maps the options withheld until facts are
        recorded (the exclusions' `until_recorded`) to those facts."""
        seen = profile if profile is not None else {}
        changes: dict[str, dict[str, list[str]]] = {}
        for oid, fields in (waiting or {}).items():
            for field in fields:
                if profile is None or self.applicable(field, seen):
                    changes.setdefault(field, {}).setdefault("wait", []).append(oid)
        for rule, fields in undecided:
            for field in fields:
                if profile is not None and not self.applicable(field, seen):
                    continue
                by_verb = changes.setdefault(field, {})
                for action in rule.then:
                    if action.kind == "warn":
                        by_verb.setdefault("warn", [])
                        continue
                    for oid in action.options:
                        wanted = (
                            oid in offered if action.kind in ("exclude", "caveat") else oid not in offered | excluded
                        )
                        bucket = by_verb.setdefault(action.kind, [])
                        if wanted and oid not in bucket:
                            bucket.append(oid)
        out = []
        for field, by_verb in changes.items():
            options: list[str] = []
            parts = []
            for kind, verb in VERBS:
                ids = by_verb.get(kind) or []
                if ids:
                    options.extend(o for o in ids if o not in options)
                    parts.append(f"{verb} " + ", ".join(_lower_first(self.rs.options[o].label) for o in ids))
            if "warn" in by_verb:
                parts.append("add a warning")
            if not parts:
                continue
            label = _lower_first(self.rs.inputs[field].label)
            first, *rest = parts
            could = "; ".join(rest)
            if first.startswith("needed"):
                text = f"Record {label}: {first}" + (f"; could {could}" if could else "")
            else:
                text = f"Record {label}: could " + "; ".join(parts)
            out.append(Warning(kind=WarningKind.UNKNOWN_INPUTS, fields=(field,), text=text, options=tuple(options)))
        out.sort(key=lambda w: (-len(w.options or ()), self.input_index[w.fields[0]]))  # type: ignore[index]
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


def assemble(
    ruleset: Ruleset,
    fired: list[str],
    undecided: list[tuple[Rule, list[str]]] | None = None,
    profile: dict[str, Any] | None = None,
) -> Decision:
    """One-off assembly (verification, tools); the engine keeps an Assembler per ruleset."""
    return Assembler(ruleset).assemble(fired, undecided, profile=profile)
