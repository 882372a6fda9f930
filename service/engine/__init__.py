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


class Engine:
    """A ruleset compiled for evaluation: the durable_rules network plus the reference closures."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.durable = DurableRuleset(ruleset)
        self.assembler = Assembler(ruleset)
        self.validator = profile_validator(ruleset)
        optional = {f.id for f in ruleset.inputs.values() if not f.required}
        # Per rule: its closure, and the optional fields its comparisons read (in reading order).
        self._kleene = []
        for rule in ruleset.rules:
            fields = []
            for leaf in condition_leaves(rule.when):
                if isinstance(leaf, Compare) and leaf.field in optional and leaf.field not in fields:
                    fields.append(leaf.field)
            if fields:
                self._kleene.append((rule, reference.compile_condition(ruleset, rule.when), tuple(fields)))

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
        out = []
        for rule, cond, fields in self._kleene:
            missing = [f for f in fields if not is_known(profile, f)]
            if not missing or rule.id in fired:
                continue
            if sets is not None and not Assembler.could_change(rule, *sets):
                continue
            if cond(profile) is None:
                out.append((rule, missing))
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
