"""The ruleset language as Python objects.

Everything downstream (engines, verifier, HTTP schemas, form, FHIR mapping) reads these objects, never
the YAML, so the file stays the single source of truth and the rest of the code never re-parses it.
Objects are frozen: an activated ruleset is shared by every request of a worker and must not change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, Union

FieldType = Literal["enum", "ordered_enum", "boolean", "integer", "set"]
FIELD_TYPES: tuple[str, ...] = ("enum", "ordered_enum", "boolean", "integer", "set")
STATUSES: tuple[str, ...] = ("draft", "testing", "production", "retired")
OPTION_KINDS: tuple[str, ...] = ("treatment", "referral")
EVIDENCE_LEVELS: tuple[str, ...] = ("high", "moderate", "low", "very_low", "not_applicable")


@dataclass(frozen=True)
class Value:
    code: str
    label: str
    help: str = ""


@dataclass(frozen=True)
class InputField:
    id: str
    type: FieldType
    label: str
    help: str
    required: bool
    group: str = ""
    values: tuple[Value, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    unit: str = ""
    line: int | None = None
    applies_when: Condition | None = None  # None: always applies; else asked only when not false

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(v.code for v in self.values)

    def rank(self, code: str) -> int:
        """Position of a code in an ordered enum (0 = first listed)."""
        return self.codes.index(code)

    def value_label(self, code: Any) -> str:
        for v in self.values:
            if v.code == code:
                return v.label
        return str(code)


@dataclass(frozen=True)
class Reference:
    id: str
    citation: str
    url: str = ""
    evidence: str = ""


@dataclass(frozen=True)
class Person:
    name: str
    role: str = ""
    date: dt.date | None = None


@dataclass(frozen=True)
class Strength:
    id: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class Course:
    sessions: str = ""
    time_to_response: str = ""
    maintenance: str = ""


PATIENT_KEYS: tuple[str, ...] = (
    "what",
    "how",
    "results",
    "maintenance",
    "cost",
    "common_effects",
    "serious_effects",
    "tell",
)


@dataclass(frozen=True)
class PatientText:
    """Plain-language texts of an option for the patient handout (every key optional)."""

    what: str = ""
    how: str = ""
    results: str = ""
    maintenance: str = ""
    cost: str = ""
    common_effects: str = ""
    serious_effects: str = ""
    tell: str = ""


@dataclass(frozen=True)
class Caveat:
    """A caveat in its layers: the short text, a longer detail, the auditors' evidence, and when it applies."""

    text: str
    detail: str = ""
    evidence: str = ""
    when: Condition | None = None
    line: int | None = None


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    kind: str
    summary: str
    regimen: str = ""
    course: Course = field(default_factory=Course)
    cost: str = ""
    evidence_level: str = "not_applicable"
    evidence_note: str = ""
    caveats: tuple[str, ...] = ()  # the short texts of `caveat_items`, in file order
    references: tuple[str, ...] = ()
    line: int | None = None
    detail: str = ""
    caveat_items: tuple[Caveat, ...] = ()
    patient: PatientText = field(default_factory=PatientText)


# ---- conditions -------------------------------------------------------------------------------

# Comparison operators as written in files, with their negation (used to push `not` down to the
# leaves, which is how an unknown input keeps failing under negation).
OPERATORS: dict[str, str] = {
    "equals": "not_equals",
    "not_equals": "equals",
    "in": "not_in",
    "not_in": "in",
    "below": "at_least",
    "at_least": "below",
    "above": "at_most",
    "at_most": "above",
    "contains": "not_contains",
    "not_contains": "contains",
    "contains_any": "contains_none",
    "contains_none": "contains_any",
}
ORDERED_OPERATORS = ("below", "at_least", "above", "at_most")
SET_OPERATORS = ("contains", "not_contains", "contains_any", "contains_none")
LIST_OPERATORS = ("in", "not_in", "contains_any", "contains_none")


@dataclass(frozen=True)
class Compare:
    """`field` `op` `value`; false whenever the field is unknown, whatever the operator."""

    field: str
    op: str
    value: Any
    line: int | None = None


@dataclass(frozen=True)
class Presence:
    """`known: field` / `unknown: field` - the only conditions that look at missing inputs."""

    field: str
    known: bool
    line: int | None = None


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]
    line: int | None = None


@dataclass(frozen=True)
class Any_:
    items: tuple[Condition, ...]
    line: int | None = None


@dataclass(frozen=True)
class Not:
    item: Condition
    line: int | None = None


Condition = Union[Compare, Presence, All, Any_, Not]


def condition_leaves(cond: Condition) -> list[Compare | Presence]:
    """The comparisons and presence tests of a condition, in reading order."""
    if isinstance(cond, (Compare, Presence)):
        return [cond]
    if isinstance(cond, Not):
        return condition_leaves(cond.item)
    return [leaf for item in cond.items for leaf in condition_leaves(item)]


# ---- rules, invariants, tests -----------------------------------------------------------------

ACTION_KINDS = ("recommend", "exclude", "caveat", "refer", "warn")


@dataclass(frozen=True)
class Action:
    kind: str  # one of ACTION_KINDS
    options: tuple[str, ...] = ()
    strength: str = ""
    text: str = ""
    detail: str = ""
    evidence: str = ""
    when: Condition | None = None  # caveats only: shown only when true for the profile


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    when: Condition
    then: tuple[Action, ...]
    description: str = ""
    references: tuple[str, ...] = ()
    line: int | None = None


INVARIANT_KINDS = (
    "never_candidate",
    "always_excluded",
    "always_referral",
    "at_most",
    "some_candidate_or_referral",
)


@dataclass(frozen=True)
class Invariant:
    id: str
    title: str
    when: Condition | None
    kind: str
    options: tuple[str, ...] = ()
    line: int | None = None
    strength: str = ""  # `at_most`: the strongest strength the options may have as candidates


@dataclass(frozen=True)
class Expectation:
    candidates: tuple[str, ...] | None = None  # exact set when given
    includes: tuple[str, ...] = ()  # candidates that must be present
    not_candidates: tuple[str, ...] = ()
    excluded: tuple[str, ...] | None = None  # `excluded` must contain these (superset check)
    referrals: tuple[str, ...] | None = None  # exact set when given
    strengths: tuple[tuple[str, str], ...] = ()  # (option, strength)
    fired: tuple[str, ...] = ()  # rules that must fire
    not_fired: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestCase:
    name: str
    profile: dict[str, Any]
    expect: Expectation
    line: int | None = None


@dataclass(frozen=True)
class Ruleset:
    id: str
    version: str
    title: str
    status: str
    institution: str
    authors: tuple[Person, ...]
    reviewers: tuple[Person, ...]
    effective: dt.date
    review_due: dt.date
    purpose: str
    explanation: str
    keywords: tuple[str, ...]
    references: dict[str, Reference]
    strengths: tuple[Strength, ...]
    inputs: dict[str, InputField]
    groups: tuple[tuple[str, str], ...]
    options: dict[str, Option]
    rules: tuple[Rule, ...]
    invariants: tuple[Invariant, ...]
    tests: tuple[TestCase, ...]
    path: str
    source_text: str
    sha256: str
    tests_path: str = ""

    def strength_rank(self, strength: str) -> int:
        """0 = strongest; strengths are listed strongest first in the file."""
        return [s.id for s in self.strengths].index(strength)

    def option_index(self, option: str) -> int:
        return list(self.options).index(option)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def summary(self) -> dict[str, str]:
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "status": self.status,
            "sha256": self.sha256,
        }
