"""Evaluation: durable_rules decides, the reference evaluator explains and checks it.

`Engine` is the only entry point the rest of the service uses. It knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ServiceError
from ..ruleset.model import Compare, Rule, Ruleset, condition_leaves
from ..ruleset.profile import FieldProblem, ProfileCheck, validate_profile
from ..ruleset.words import describe, describe_action
from . import reference
from .assemble import Assembler
from .durable import DurableRuleset
from .partial import TooManyCompletions, decide_partial

__all__ = ["Engine", "InvalidProfile", "TooManyCompletions"]


class InvalidProfile(ServiceError, ValueError):
    """The profile does not fit the ruleset's inputs; `errors` name each field and what it accepts."""

    status = 422
    slug = "validation-error"
    title = "Invalid profile"

    def __init__(self, check: ProfileCheck) -> None:
        super().__init__("; ".join(e.message for e in check.errors))
        self.errors = check.errors

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

    def check(self, profile: Any, partial: bool = False) -> dict[str, Any]:
        """Validate and type a raw profile; raises InvalidProfile with per-field problems."""
        result = validate_profile(self.ruleset, profile, partial=partial)
        if not result.ok:
            raise InvalidProfile(result)
        return result.profile

    def fired(self, profile: dict[str, Any]) -> list[str]:
        return self.durable.fired(profile)

    def undecided(
        self, profile: dict[str, Any], fired: list[str], decision: dict[str, Any] | None = None
    ) -> list[tuple[Rule, list[str]]]:
        """Rules that did not fire but might, once the unknown inputs they use are recorded.

        Given the decision, only rules that would change it are kept: a rule that could only exclude an
        option that is not offered anyway is no reason to ask for more facts.
        """
        out = []
        sets = Assembler.outcome_sets(decision) if decision is not None else None
        for rule, cond, fields in self._kleene:
            missing = [f for f in fields if f not in profile]
            if not missing or rule.id in fired:
                continue
            if sets is not None and not Assembler.could_change(rule, *sets):
                continue
            if cond(profile) is None:
                out.append((rule, missing))
        return out

    def evaluate(self, raw_profile: Any, explain: bool = False) -> dict[str, Any]:
        """Validate, evaluate on durable_rules and assemble the decision (without id or timestamp)."""
        profile = self.check(raw_profile)
        return self.decide(profile, explain)

    def decide(self, profile: dict[str, Any], explain: bool = False) -> dict[str, Any]:
        fired = self.durable.fired(profile)
        decision = self.assembler.assemble(fired)
        self.assembler.add_pending(decision, self.undecided(profile, fired, decision))
        if explain:
            decision["explanation"] = self.explain(profile, fired)
        return decision

    def decide_partial(self, profile: dict[str, Any], explain: bool = False) -> dict[str, Any]:
        """A decision over every completion of the missing required facts (see partial.py)."""
        decision = decide_partial(self.ruleset, self.decide, profile)
        if "partial" not in decision:
            return self.decide(profile, explain)
        if explain:
            decision["explanation"] = self.explain(profile, decision["fired_rules"])
        return decision

    def explain(self, profile: dict[str, Any], fired: list[str]) -> dict[str, Any]:
        rs = self.ruleset
        fired_set = set(fired)
        rules = []
        for rule in rs.rules:
            tree = reference.explain_condition(rs, rule.when, profile)
            status = "fired" if rule.id in fired_set else ("undecided" if tree["result"] == "unknown" else "not_fired")
            rules.append(
                {
                    "rule": rule.id,
                    "title": rule.title,
                    "status": status,
                    "condition": tree,
                    "when": describe(rs, rule.when),
                    "then": [describe_action(rs, a) for a in rule.then],
                }
            )
        return {
            "profile": {k: list(v) if isinstance(v, tuple) else v for k, v in profile.items()},
            "unknown_inputs": [f for f in rs.inputs if f not in profile],
            "rules": rules,
        }

    def close(self) -> None:
        self.durable.close()
