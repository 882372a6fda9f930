"""Plain words for conditions and actions: what auditors and clinicians read instead of YAML."""

from __future__ import annotations

from typing import Any

from .model import Action, All, Compare, Condition, InputField, Not, Presence, Ruleset

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
