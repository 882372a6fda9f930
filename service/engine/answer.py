"""The decision as a type: what the engine answers, whatever the channel that shows it.

The engine builds these frozen objects; every channel (JSON API, CDS Hooks cards, pages, CLI, decision
log, replay, verification) reads their attributes; `to_json` is the one place that turns them into JSON,
at the edge. The OpenAPI schemas of the answer are generated from these same definitions
(service/dataschema.py), so the document cannot drift from what is sent: a field's `metadata` holds
its description and the values it allows.

JSON rules (they keep the decision log's stored text byte-identical to what it always was): fields are
written in declaration order, tuples become lists, enumerations their value, and a field that is None
is left out (e.g. an option without a regimen, a warning that names no rule).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from ..ruleset.model import EVIDENCE_LEVELS, OPTION_KINDS

__all__ = [
    "Candidate",
    "CaveatNote",
    "Citation",
    "Decision",
    "Evidence",
    "Exclusion",
    "Explanation",
    "Partial",
    "Reason",
    "Referral",
    "RuleExplanation",
    "RuleStatus",
    "RulesetRef",
    "Warning",
    "WarningKind",
    "to_json",
]

_frozen = dataclasses.dataclass(frozen=True, slots=True, kw_only=True)


def doc(description: str = "", *, one_of: tuple[str, ...] = (), required: bool = False, **extra: Any) -> Any:
    """Field metadata for the generated schema: description, allowed values, `required` for an optional
    attribute that every answer a client receives carries (the stamp), other JSON Schema keywords."""
    meta: dict[str, Any] = {"description": description} if description else {}
    if one_of:
        meta["one_of"] = one_of
    if required:
        meta["required"] = True
    meta.update(extra)
    return meta


def _field(description: str = "", **kw: Any) -> Any:
    default = kw.pop("default", dataclasses.MISSING)
    return dataclasses.field(default=default, metadata=doc(description, **kw))


class WarningKind(StrEnum):
    """Every kind of warning a decision can carry (one list for the engine and the OpenAPI document)."""

    RULE = "rule"  # a rule's own warning text
    UNKNOWN_INPUTS = "unknown_inputs"  # an unrecorded optional fact that could change the answer (one per input)
    MISSING_REQUIRED = "missing_required"  # required facts missing: only what holds for every value is certain
    REVIEW_OVERDUE = "review_overdue"  # the ruleset is past its review date (it keeps answering, and says so)


class RuleStatus(StrEnum):
    FIRED = "fired"
    NOT_FIRED = "not_fired"
    UNDECIDED = "undecided"


@_frozen
class RulesetRef:
    id: str
    version: str
    sha256: str
    stage: str | None = _field(
        "Set when the answer comes from a revision that is not production (e.g. testing).", default=None
    )


@_frozen
class Citation:
    id: str
    citation: str | None = _field(
        "Left out in the default view: the catalogue is at GET /v1/rulesets/<id>.", default=None
    )
    url: str | None = None
    evidence: str | None = None


@_frozen
class Evidence:
    level: str = _field(one_of=EVIDENCE_LEVELS)
    note: str | None = _field("The auditors' evidence note; only in the full view.", default=None)
    references: tuple[Citation, ...]


@_frozen
class Reason:
    rule: str
    text: str | None = _field(
        "The rule's short text. Left out of a candidate's or referral's reasons in the default view, where"
        " `rationale` holds the same texts in the same order.",
        default=None,
    )
    facts: tuple[str, ...] = _field(
        "The patient's facts that made the rule fire, in the inputs' labels (generated, not written).", default=()
    )
    detail: str | None = None
    evidence: str | None = _field("The rule's evidence note; only in the full view.", default=None)


@_frozen
class CaveatNote:
    text: str
    detail: str | None = None
    evidence: str | None = None
    rule: str | None = _field("The rule that adds the caveat (none for the option's standing caveats).", default=None)


@_frozen
class Candidate:
    option: str = _field("Option id from the ruleset's catalogue.")
    label: str
    kind: str = _field(one_of=OPTION_KINDS)
    summary: str
    regimen: str | None = None
    course: Mapping[str, str] | None = None
    cost: str | None = None
    strength: str = _field("Strongest strength given by the rules (see the ruleset's strengths).")
    rationale: tuple[str, ...] = _field("Why, one entry per rule that recommends it.")
    caveats: tuple[str, ...] = _field("The short caveat texts that apply to this patient, each once.")
    evidence: Evidence
    rules: tuple[str, ...] = _field("Ids of the rules behind this entry.")
    reasons: tuple[Reason, ...] = _field("One per recommending rule: its short text and the facts.", default=())
    detail: str | None = None
    caveat_notes: tuple[CaveatNote, ...] | None = _field(
        "The caveats with their detail and evidence; only in the full view.", default=None
    )


@_frozen
class Referral:
    option: str = _field("Option id from the ruleset's catalogue.")
    label: str
    kind: str = _field(one_of=OPTION_KINDS)
    summary: str
    regimen: str | None = None
    course: Mapping[str, str] | None = None
    cost: str | None = None
    rationale: tuple[str, ...] = _field("Why, one entry per rule that refers.")
    rules: tuple[str, ...] = _field("Ids of the rules behind this entry.")
    reasons: tuple[Reason, ...] = _field("One per referring rule: its short text and the facts.", default=())
    detail: str | None = None


@_frozen
class Exclusion:
    option: str
    label: str
    reasons: tuple[Reason, ...]
    until_recorded: tuple[str, ...] | None = _field(
        "Inputs not recorded among the facts behind the exclusion: to consider once recorded.", default=None
    )


@_frozen
class Warning:
    kind: WarningKind
    rule: str | None = _field("The rule behind the warning (none for missing required facts).", default=None)
    fields: tuple[str, ...] | None = _field("Inputs not recorded.", default=None)
    text: str
    options: tuple[str, ...] | None = _field(
        "Options the unrecorded input could change (unknown_inputs).", default=None
    )


@_frozen
class Partial:
    """Present when required facts were missing: the decision then holds for every way to fill them in."""

    missing: tuple[str, ...] = _field("Required inputs that were not recorded.")
    completions: int = _field("How many ways of filling them in were decided over.")
    possible_candidates: tuple[str, ...] = _field("Options that are candidates in some completions only.")
    possible_referrals: tuple[str, ...] = _field("Referrals made in some completions only.")
    possibly_excluded: Mapping[str, tuple[Reason, ...]] = _field("Options excluded in some completions only.")


@_frozen
class RuleExplanation:
    rule: str
    title: str
    status: RuleStatus
    condition: Mapping[str, Any] = _field("The condition's tree, each node with its result for this profile.")
    when: str = _field("The condition in plain words.")
    then: tuple[str, ...] = _field("The actions in plain words.")


@_frozen
class Explanation:
    profile: Mapping[str, Any] = _field("The validated profile the rules saw.")
    unknown_inputs: tuple[str, ...] = _field("Inputs not recorded.")
    rules: tuple[RuleExplanation, ...]


@_frozen
class Decision:
    decision_id: str | None = _field(
        "Quote it to find the decision in the log.", default=None, required=True, format="uuid"
    )
    evaluated_at: str | None = _field("RFC 3339, UTC.", default=None, required=True, format="date-time")
    ruleset: RulesetRef
    candidates: tuple[Candidate, ...]
    excluded: tuple[Exclusion, ...]
    referrals: tuple[Referral, ...]
    warnings: tuple[Warning, ...]
    fired_rules: tuple[str, ...]
    partial: Partial | None = _field(
        "Only when required facts were missing (CDS Hooks): what holds in some completions only.", default=None
    )
    explanation: Explanation | None = _field("Rule-by-rule explanation; only when `explain` is true.", default=None)

    def offered(self) -> set[str]:
        """Ids of the options offered: candidates and referrals."""
        return {c.option for c in self.candidates} | {r.option for r in self.referrals}

    def excluded_ids(self) -> set[str]:
        return {e.option for e in self.excluded}


# ---- JSON -------------------------------------------------------------------------------------------
# One encoder per class, compiled from the type hints on first use: this runs twice per answer (the
# response and the decision log), so it does no type dispatch on values it can know from the type.

Encoder = Callable[[Any], Any] | None  # None: the value is JSON as it is (text, numbers, booleans)
_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {}


def _plain(value: Any) -> Any:
    """Any JSON-like value (the explanation's condition trees, profiles): tuples become lists."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _encoder(hint: Any) -> Encoder:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: None is left out by the class
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if hint in (str, int, bool, float):
        return None
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return str
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _class_encoder(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        inner = _encoder(args[0])
        if inner is None:
            return list
        return lambda items: [inner(x) for x in items]
    if origin in (Mapping, dict) and args and args[1] is not Any:
        inner = _encoder(args[1])
        if inner is None:
            return dict
        return lambda mapping: {k: inner(v) for k, v in mapping.items()}
    return _plain


def _class_encoder(cls: type) -> Callable[[Any], dict[str, Any]]:
    found = _ENCODERS.get(cls)
    if found is not None:
        return found
    hints = typing.get_type_hints(cls)
    plan = [(f.name, _encoder(hints[f.name])) for f in dataclasses.fields(cls)]

    def encode(obj: Any) -> dict[str, Any]:
        out = {}
        for name, inner in plan:
            value = getattr(obj, name)
            if value is not None:
                out[name] = value if inner is None else inner(value)
        return out

    _ENCODERS[cls] = encode
    return encode


def to_json(decision: Decision) -> dict[str, Any]:
    """The decision as JSON (dicts, lists and scalars): the one serialiser, used at every edge."""
    return _class_encoder(Decision)(decision)
