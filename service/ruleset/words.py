"""Plain words for a ruleset: what auditors and clinicians read instead of YAML.

Conditions, actions, invariants, evidence levels and the engine's semantics, in the words shared by every
place that shows them (the Markdown document, the web pages, the CDS Hooks cards), so they cannot differ.
"""

from __future__ import annotations

from typing import Any

from .model import Action, All, Compare, Condition, InputField, Invariant, Not, Presence, Ruleset

OP_WORDS = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "below": "is below",
    "at_most": "is at most",
    "above": "is above",
    "at_least": "is at least",
    "contains": "includes",
    "not_contains": "does not include",
    "contains_any": "includes any of",
    "contains_none": "includes none of",
}


def _value_words(f: InputField, value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(_value_words(f, v) for v in value)
    if f.type == "boolean":
        return "yes" if value else "no"
    if f.type == "integer":
        return f"{value} {f.unit}".strip()
    return f"{f.value_label(value)} (`{value}`)"


def describe(ruleset: Ruleset, cond: Condition, depth: int = 0) -> str:
    """Plain words for a condition, for auditors and clinicians."""
    if isinstance(cond, Compare):
        f = ruleset.inputs[cond.field]
        return f"{f.label} {OP_WORDS[cond.op]} {_value_words(f, cond.value)}"
    if isinstance(cond, Presence):
        f = ruleset.inputs[cond.field]
        return f"{f.label} is {'recorded' if cond.known else 'not recorded'}"
    if isinstance(cond, Not):
        return f"it is not the case that ({describe(ruleset, cond.item, depth + 1)})"
    joiner = " and " if isinstance(cond, All) else " or "
    parts = [describe(ruleset, c, depth + 1) for c in cond.items]
    if len(parts) == 1:
        return parts[0]
    text = joiner.join(f"({p})" if (" and " in p or " or " in p) else p for p in parts)
    return text


def describe_action(rs: Ruleset, action: Action) -> str:
    labels = ", ".join(rs.options[o].label for o in action.options)
    if action.kind == "recommend":
        strength = next(s.label for s in rs.strengths if s.id == action.strength)
        return f"recommend {labels} ({strength}): {action.text}"
    if action.kind == "exclude":
        return f"exclude {labels}: {action.text}"
    if action.kind == "caveat":
        return f"add a caveat to {labels}: {action.text}"
    if action.kind == "refer":
        return f"refer to {labels}: {action.text}"
    return f"warn: {action.text}"


LEVEL_WORDS = {
    "high": "High",
    "moderate": "Moderate",
    "low": "Low",
    "very_low": "Very low",
    "not_applicable": "Not applicable",
}

COURSE_LABELS = (("sessions", "Sessions"), ("time_to_response", "Time to response"), ("maintenance", "Maintenance"))
SEMANTICS = (
    "An exclusion always beats a recommendation: an excluded option is never shown as a candidate.",
    "A comparison on an input that is not recorded is never satisfied, whatever the operator; "
    "rules that must act on missing facts say so with *is not recorded*.",
    "Candidates are ordered by strength, then by the order of the option catalogue below.",
)


def allowed_words(f: InputField) -> str:
    """What an input accepts, as written in the document's inputs table."""
    if f.type == "integer":
        return f"{f.minimum}-{f.maximum} {f.unit}"
    if f.type == "boolean":
        return "yes / no"
    return ", ".join(f"`{v.code}` ({v.label})" for v in f.values)


def _strength_label(rs: Ruleset, sid: str) -> str:
    return next((s.label for s in rs.strengths if s.id == sid), sid).lower()


def invariant_words(rs: Ruleset, inv: Invariant) -> str:
    """The statement an invariant makes, in words (its scope, then its claim)."""
    scope = f"when {describe(rs, inv.when)}, " if inv.when is not None else "for every valid profile, "
    opts = ", ".join(rs.options[o].label for o in inv.options)
    claim = {
        "never_candidate": f"{opts} is never a candidate",
        "always_excluded": f"{opts} is always excluded",
        "always_referral": f"{opts} is always a referral",
        "at_most": f"{opts} is never a candidate stronger than {_strength_label(rs, inv.strength)}",
        "some_candidate_or_referral": "there is at least one candidate or referral",
    }[inv.kind]
    return scope + claim


BOUND_WORDS = {"below": "under {}", "at_most": "{} or under", "above": "over {}", "at_least": "{} or over"}


def fact_words(ruleset: Ruleset, leaf: Compare | Presence, profile: dict[str, Any]) -> str:
    """The patient's fact behind one deciding leaf, in the input's label: "Trying to conceive: yes",
    "Relevant conditions include Heart failure", "Age: 16 (under 18)", "Relevant conditions: not recorded".

    The words come from the profile's own value and the leaf the rule tested, never from a rule's text.
    """
    f = ruleset.inputs[leaf.field]
    actual = profile.get(leaf.field)
    if isinstance(leaf, Presence) or actual is None:
        return f"{f.label}: not recorded" if actual is None else f"{f.label}: recorded"
    if f.type == "set":
        wanted = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
        if leaf.op in ("contains", "contains_any"):
            present = [f.value_label(v) for v in f.codes if v in wanted and v in actual]
            return f"{f.label} include {', '.join(present)}"
        return f"{f.label}: none of {', '.join(f.value_label(v) for v in f.codes if v in wanted)}"
    if f.type == "boolean":
        return f"{f.label}: {'yes' if actual else 'no'}"
    if f.type == "integer":
        bound = BOUND_WORDS.get(leaf.op)
        return f"{f.label}: {actual} ({bound.format(leaf.value)})" if bound else f"{f.label}: {actual}"
    return f"{f.label}: {f.value_label(actual)}"
