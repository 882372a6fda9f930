"""The pure-Python evaluator: three-valued (Kleene) logic over the ruleset's conditions.

It has two jobs. It is the oracle that durable_rules must agree with before a ruleset is accepted, so
it is written independently of the durable compiler (it evaluates the conditions as written, without
pushing `not` down). And it explains: for every rule, which conditions held, which failed and which
could not be decided because an input is unknown.

Semantics (documented for auditors in rulesets/README.md): a comparison on an unknown input is
*unknown*; `not unknown` is unknown; `all` is false if any part is false, else unknown if any part is
unknown; `any` is true if any part is true, else unknown if any part is unknown. A rule fires only
when its condition is *true*. `known`/`unknown` are the only conditions that are never unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ruleset.model import (
    OPERATORS,
    All,
    Compare,
    Condition,
    InputField,
    Not,
    Presence,
    Ruleset,
    condition_leaves,
)
from ..ruleset.words import describe
from .partly import PartlyKnown, is_known, partly

Tri = bool | None  # True, False, or None for "unknown"
Profile = dict[str, Any]


def compare(f: InputField, op: str, expected: Any, actual: Any) -> bool:
    """One comparison on a known value. `actual` is already validated for the field's type."""
    if op == "equals":
        return actual == expected
    if op == "not_equals":
        return actual != expected
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if op == "contains":
        return expected in actual
    if op == "not_contains":
        return expected not in actual
    if op == "contains_any":
        return any(v in actual for v in expected)
    if op == "contains_none":
        return not any(v in actual for v in expected)
    if f.type == "ordered_enum":
        actual, expected = f.rank(actual), f.rank(expected)
    if op == "below":
        return actual < expected
    if op == "at_most":
        return actual <= expected
    if op == "above":
        return actual > expected
    if op == "at_least":
        return actual >= expected
    raise ValueError(f"unknown operator {op}")


def evaluate(ruleset: Ruleset, cond: Condition, profile: Profile) -> Tri:
    """Kleene value of a condition for a validated profile."""
    if isinstance(cond, Compare):
        actual = profile.get(cond.field)
        if actual is None:
            return None
        result = compare(ruleset.inputs[cond.field], cond.op, cond.value, actual)
        return partly(cond.op, result) if isinstance(actual, PartlyKnown) else result
    if isinstance(cond, Presence):
        return is_known(profile, cond.field) == cond.known
    if isinstance(cond, Not):
        inner = evaluate(ruleset, cond.item, profile)
        return None if inner is None else not inner
    results = [evaluate(ruleset, c, profile) for c in cond.items]
    if isinstance(cond, All):
        if False in results:
            return False
        return None if None in results else True
    if True in results:
        return True
    return None if None in results else False


Compiled = Callable[[Profile], Tri]


def _test(f: InputField, op: str, expected: Any) -> Callable[[Any], bool]:
    """`compare` specialised once per leaf, so per-request evaluation skips the operator dispatch."""
    if f.type == "ordered_enum" and op in ("below", "at_most", "above", "at_least"):
        rank = {code: i for i, code in enumerate(f.codes)}
        k = rank[expected]
        return {
            "below": lambda a: rank[a] < k,
            "at_most": lambda a: rank[a] <= k,
            "above": lambda a: rank[a] > k,
            "at_least": lambda a: rank[a] >= k,
        }[op]
    values = frozenset(expected) if isinstance(expected, tuple) else None
    table: dict[str, Callable[[Any], bool]] = {
        "equals": lambda a: a == expected,
        "not_equals": lambda a: a != expected,
        "in": lambda a: a in values,
        "not_in": lambda a: a not in values,
        "contains": lambda a: expected in a,
        "not_contains": lambda a: expected not in a,
        "contains_any": lambda a: not values.isdisjoint(a),
        "contains_none": lambda a: values.isdisjoint(a),
        "below": lambda a: a < expected,
        "at_most": lambda a: a <= expected,
        "above": lambda a: a > expected,
        "at_least": lambda a: a >= expected,
    }
    return table[op]


def compile_condition(ruleset: Ruleset, cond: Condition) -> Compiled:
    """The same semantics as `evaluate`, as closures: used on every request to find undecided rules.

    Parts of an `all` that use only required fields are tested first: they are never unknown, so a
    false one ends the evaluation early. Order does not change the three-valued result.
    """
    if isinstance(cond, Compare):
        name, op = cond.field, cond.op
        test = _test(ruleset.inputs[name], op, cond.value)

        def leaf(p: Profile) -> Tri:
            actual = p.get(name)
            if actual is None:
                return None
            return partly(op, test(actual)) if isinstance(actual, PartlyKnown) else test(actual)

        return leaf
    if isinstance(cond, Presence):
        name, known = cond.field, cond.known
        return lambda p: is_known(p, name) == known
    if isinstance(cond, Not):
        inner = compile_condition(ruleset, cond.item)

        def negate(p: Profile) -> Tri:
            v = inner(p)
            return None if v is None else not v

        return negate
    items = list(cond.items)
    if isinstance(cond, All):
        items.sort(key=lambda c: not all(ruleset.inputs[leaf.field].required for leaf in condition_leaves(c)))
    parts = [compile_condition(ruleset, c) for c in items]
    if isinstance(cond, All):

        def all_(p: Profile) -> Tri:
            unknown = False
            for part in parts:
                v = part(p)
                if v is False:
                    return False
                if v is None:
                    unknown = True
            return None if unknown else True

        return all_

    def any_(p: Profile) -> Tri:
        unknown = False
        for part in parts:
            v = part(p)
            if v is True:
                return True
            if v is None:
                unknown = True
        return None if unknown else False

    return any_


def fired_rules(ruleset: Ruleset, profile: Profile) -> list[str]:
    """Rules whose condition is true, in file order (the oracle's answer)."""
    return [r.id for r in ruleset.rules if evaluate(ruleset, r.when, profile) is True]


def explain_condition(ruleset: Ruleset, cond: Condition, profile: Profile) -> dict[str, Any]:
    """A tree of the condition with each part's result and the patient's values that decided it."""
    result = evaluate(ruleset, cond, profile)
    status = {True: "true", False: "false", None: "unknown"}[result]
    if isinstance(cond, Compare):
        f = ruleset.inputs[cond.field]
        actual = profile.get(cond.field)
        return {
            "type": "compare",
            "field": cond.field,
            "label": f.label,
            "operator": cond.op,
            "value": list(cond.value) if isinstance(cond.value, tuple) else cond.value,
            "actual": list(actual) if isinstance(actual, tuple) else actual,
            "known": is_known(profile, cond.field),
            "result": status,
            "text": describe(ruleset, cond),
        }
    if isinstance(cond, Presence):
        return {
            "type": "known" if cond.known else "unknown",
            "field": cond.field,
            "label": ruleset.inputs[cond.field].label,
            "known": is_known(profile, cond.field),
            "result": status,
            "text": describe(ruleset, cond),
        }
    if isinstance(cond, Not):
        return {"type": "not", "result": status, "item": explain_condition(ruleset, cond.item, profile)}
    return {
        "type": "all" if isinstance(cond, All) else "any",
        "result": status,
        "items": [explain_condition(ruleset, c, profile) for c in cond.items],
    }


Leaf = Compare | Presence


def _flip(leaf: Leaf) -> Leaf:
    if isinstance(leaf, Compare):
        return Compare(leaf.field, OPERATORS[leaf.op], leaf.value, leaf.line)
    return Presence(leaf.field, not leaf.known, leaf.line)


def compile_reasons(ruleset: Ruleset, cond: Condition) -> Callable[[Profile], list[Leaf]]:
    """For a condition that is true: the leaves that made it true, with `not` pushed down to them.

    `all` needs every part, so every part's leaves; `any` is made true by its true parts only. Under a
    negation the roles swap (a false `all` is made false by its false parts), and each leaf is given in
    the form that held (e.g. `not pregnant = true` becomes `pregnant = false`). The facts of a reason are
    worded from these leaves, so a reason can only state what its rule actually tested.
    """

    def build(c: Condition, positive: bool) -> Callable[[Profile], list[Leaf]]:
        if isinstance(c, (Compare, Presence)):
            leaf = c if positive else _flip(c)
            return lambda p: [leaf]
        if isinstance(c, Not):
            return build(c.item, not positive)
        parts = [(compile_condition(ruleset, item), build(item, positive)) for item in c.items]
        every = isinstance(c, All) == positive  # all (or a negated any): every part holds
        wanted = positive

        def reasons(p: Profile) -> list[Leaf]:
            out: list[Leaf] = []
            for test, why in parts:
                if every or test(p) is wanted:
                    out.extend(why(p))
            return out

        return reasons

    return build(cond, True)
