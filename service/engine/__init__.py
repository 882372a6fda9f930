"""Evaluation: durable_rules decides, the reference evaluator explains and checks it.

`Engine` is the only entry point the rest of the service uses. It knows nothing of HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ServiceError
from ..ruleset.model import Compare, Rule, Ruleset, condition_leaves
from ..ruleset.validator import FieldProblem, ProfileCheck, profile_validator
from ..ruleset.words import describe, describe_action
from . import reference
from .answer import Decision, Explanation, RuleExplanation, RuleStatus, Warning, WarningKind
from .assemble import Assembler
from .durable import DurableRuleset
from .partial import TooManyCompletions, decide_partial
from .partly import PartlyKnown, is_known, mark

__all__ = ["Engine", "InvalidProfile", "PartlyKnown", "TooManyCompletions"]


class InvalidProfile(ServiceError, ValueError):
    """A profile the ruleset's validator refused: `errors` one problem per field, `problems` all of them."""

    status = 422
    slug = "validation-error"
    title = "Invalid profile"

    def __init__(self, check: ProfileCheck) -> None:
        super().__init__("; ".join(e.message for e in check.errors))
        self.errors = check.errors
        self.problems = check.problems
        self.ruleset_id = check.ruleset_id

    @property
    def detail(self) -> str:
        count = len(self.errors)
        return f"{count} problem(s): " + "; ".join(e.message for e in self.errors[:5])

    @property
    def field_problems(self) -> Sequence[FieldProblem]:
        return self.errors


class _Pending:
    """A rule that reads optional inputs, prepared for the undecided analysis (see Engine._undecided)."""

    __slots__ = ("cond", "fields", "offers", "rule", "touches", "warns")

    def __init__(self, rule: Rule, cond: reference.Compiled, fields: tuple[str, ...]) -> None:
        self.rule, self.cond, self.fields = rule, cond, fields
        self.warns = any(a.kind == "warn" for a in rule.then)
        self.offers = frozenset(o for a in rule.then if a.kind in ("recommend", "refer") for o in a.options)
        self.touches = frozenset(o for a in rule.then if a.kind in ("exclude", "caveat") for o in a.options)

    def could_change(self, offered: set[str], excluded: set[str]) -> bool:
        """Assembler.could_change, on sets prepared once."""
        return self.warns or not self.offers <= excluded or not self.touches.isdisjoint(offered)


class Engine:
    """A ruleset compiled for evaluation: the durable_rules network plus the reference closures."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.durable = DurableRuleset(ruleset)
        self.assembler = Assembler(ruleset)
        self.validator = profile_validator(ruleset)
        optional = {f.id for f in ruleset.inputs.values() if not f.required}
        # The undecided analysis, prepared once per revision: per rule that reads optional inputs, its
        # closure, those inputs (in reading order) and what its firing could change; and for each optional
        # input the rules that read it, so a request looks only at rules whose inputs it lacks.
        self._kleene: list[_Pending] = []
        self._readers: dict[str, tuple[int, ...]] = {}
        for rule in ruleset.rules:
            fields = []
            for leaf in condition_leaves(rule.when):
                if isinstance(leaf, Compare) and leaf.field in optional and leaf.field not in fields:
                    fields.append(leaf.field)
            if fields:
                index = len(self._kleene)
                self._kleene.append(_Pending(rule, reference.compile_condition(ruleset, rule.when), tuple(fields)))
                for f in fields:
                    self._readers[f] = (*self._readers.get(f, ()), index)
        self._optional = frozenset(self._readers)

    def check(
        self, profile: Any, partial: bool = False, partly_known: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """Validate and type a raw profile (the ruleset's validator); raises InvalidProfile with its problems.

        `partly_known` names set inputs whose listed values are only those found (field -> how many items
        could not be classified): they are marked PartlyKnown, so no rule reads them as the whole set.
        The decision methods take only what this returns: the engine never validates a second time.
        """
        result = self.validator.check(profile, partial=partial)
        if not result.ok:
            raise InvalidProfile(result)
        if not partly_known:
            return result.profile
        sets = [f.id for f in self.ruleset.inputs.values() if f.type == "set"]
        return mark(result.profile, partly_known, sets)

    def fired(self, profile: dict[str, Any]) -> list[str]:
        return self.durable.fired(profile)

    def undecided(
        self, profile: dict[str, Any], fired: list[str], decision: Decision | None = None
    ) -> list[tuple[Rule, list[str]]]:
        """Rules that did not fire but might, once the unknown inputs they use are recorded.

        Given the decision, only rules that would change it are kept: a rule that could only exclude an
        option that is not offered anyway is no reason to ask for more facts.
        """
        return self._undecided(profile, fired, Assembler.outcome_sets(decision) if decision is not None else None)

    def _undecided(
        self, profile: dict[str, Any], fired: list[str], sets: tuple[set[str], set[str]] | None
    ) -> list[tuple[Rule, list[str]]]:
        absent = {f for f in self._optional if not is_known(profile, f)}  # a set known in part is not known
        if not absent:
            return []
        readers = self._readers
        candidates = sorted({i for f in absent for i in readers[f]})
        out = []
        for i in candidates:
            pending = self._kleene[i]
            rule = pending.rule
            if rule.id in fired:
                continue
            if sets is not None and not pending.could_change(*sets):
                continue
            if pending.cond(profile) is None:
                out.append((rule, [f for f in pending.fields if f in absent]))
        return out

    def evaluate(self, raw_profile: Any, explain: bool = False) -> Decision:
        """Validate, evaluate on durable_rules and assemble the decision (without id or timestamp)."""
        profile = self.check(raw_profile)
        return self.decide(profile, explain)

    def decide(self, profile: dict[str, Any], explain: bool = False) -> Decision:
        fired = self.durable.fired(profile)
        decision = self.assembler.assemble(
            fired,
            pending=lambda offered, excluded: self._undecided(profile, fired, (offered, excluded)),
            profile=profile,
        )
        partly = self._partly_warnings(profile)
        if partly:
            decision = dataclasses.replace(decision, warnings=(*decision.warnings, *partly))
        if explain:
            decision = dataclasses.replace(decision, explanation=self.explain(profile, fired))
        return decision

    def _partly_warnings(self, profile: dict[str, Any]) -> list[Warning]:
        """Say which set inputs are known only in part, and how many items were not classified."""
        out = []
        for fid, value in profile.items():
            if not isinstance(value, PartlyKnown):
                continue
            f = self.ruleset.inputs[fid]
            found = ", ".join(f.value_label(v) for v in value) or "none"
            n = value.unclassified
            items = f"{n} item{'s' if n != 1 else ''} could not be classified" if n else "it was not read in full"
            out.append(
                Warning(
                    kind=WarningKind.UNKNOWN_INPUTS,
                    fields=(fid,),
                    text=f"{f.label} known only in part ({items}); found: {found}. Record the full list.",
                )
            )
        return out

    def decide_partial(self, profile: dict[str, Any], explain: bool = False) -> Decision:
        """A decision over every completion of the missing required facts (see partial.py)."""
        decision = decide_partial(self.ruleset, self.decide, profile)
        if decision.partial is None:
            return self.decide(profile, explain)
        if explain:
            decision = dataclasses.replace(decision, explanation=self.explain(profile, list(decision.fired_rules)))
        return decision

    def explain(self, profile: dict[str, Any], fired: list[str]) -> Explanation:
        rs = self.ruleset
        fired_set = set(fired)
        rules = []
        for rule in rs.rules:
            tree = reference.explain_condition(rs, rule.when, profile)
            if rule.id in fired_set:
                status = RuleStatus.FIRED
            else:
                status = RuleStatus.UNDECIDED if tree["result"] == "unknown" else RuleStatus.NOT_FIRED
            rules.append(
                RuleExplanation(
                    rule=rule.id,
                    title=rule.title,
                    status=status,
                    condition=tree,
                    when=describe(rs, rule.when),
                    then=tuple(describe_action(rs, a) for a in rule.then),
                )
            )
        return Explanation(
            profile={k: list(v) if isinstance(v, tuple) else v for k, v in profile.items()},
            unknown_inputs=tuple(
                f for f in rs.inputs if not is_known(profile, f) and self.assembler.applicable(f, profile)
            ),
            rules=tuple(rules),
        )

    def close(self) -> None:
        self.durable.close()
