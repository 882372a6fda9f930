"""Peers of the durable_rules path for bench/engine.py: GoRules ZEN and a generated-Python floor.

Both take a validated profile (ruleset.profile: known fields only, sets as tuples) and return the ids of
the rules that fire, in file order - the same answer as `DurableRuleset.fired` and `reference.fired_rules`.
They are written from the parsed ruleset (service.ruleset.model), never from the YAML text or from user
input, and independently of the durable compiler, so that agreement between all of them means something.

Semantics: a rule fires only when its condition is *true* under three-valued logic (reference.py). With
`not` pushed down to the comparisons (De Morgan; each comparison flips to its complement, `known` to
`unknown`), the formula has no negation left, and it is true exactly when it is true with every
comparison on an unknown input read as false - so each comparison becomes "the field is known and the
test holds", which both peers can express directly.

ZEN: one JDM decision table with the `collect` hit policy, one row per rule (in file order), whose output
is the rule's index. A top-level conjunct on a single field goes into that field's column as a unary
test on `$`; what spans several fields (an `any` across fields, say) goes into one expression column.
The table is served by a ZenEngine with a static loader, which caches the compiled decision (evaluating a
`ZenDecision` from `create_decision` re-prepares it on every call: about 15 times slower here).

Floor: Python source with one `if` per rule, compiled once. Literals are written with repr() after a type
check (str, int, bool only; codes and ids are checked against the loader's patterns), so no text from a
file can become code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from service.ruleset.model import OPERATORS, All, Any_, Compare, Condition, Not, Presence, Ruleset

Profile = dict[str, Any]
# What ZEN's expression language reserves or could read as something else than a field name.
_ZEN_WORDS = {"and", "or", "not", "in", "true", "false", "null", "some", "none", "all", "one", "contains", "len"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE = re.compile(r"^[A-Za-z0-9_.:-]+$")
ORDERED_TESTS: dict[str, Callable[[int, int], bool]] = {
    "below": lambda r, k: r < k,
    "at_most": lambda r, k: r <= k,
    "above": lambda r, k: r > k,
    "at_least": lambda r, k: r >= k,
}


class Untranslatable(ValueError):
    """A condition this peer cannot express (the benchmark then skips the peer for that ruleset)."""


def nnf(cond: Condition, negated: bool = False) -> Condition:
    """Negation normal form: no `Not` left; negated comparisons use their complement operator."""
    if isinstance(cond, Not):
        return nnf(cond.item, not negated)
    if isinstance(cond, Compare):
        return Compare(cond.field, OPERATORS[cond.op], cond.value, cond.line) if negated else cond
    if isinstance(cond, Presence):
        return Presence(cond.field, cond.known != negated, cond.line)
    items = tuple(nnf(c, negated) for c in cond.items)
    conjunction = isinstance(cond, All) != negated
    return All(items, cond.line) if conjunction else Any_(items, cond.line)


def _scalar(value: Any) -> Any:
    """A literal that may be written into generated code: str (a code), int or bool, nothing else."""
    if isinstance(value, bool) or type(value) is int:
        return value
    if isinstance(value, str) and _CODE.match(value):
        return value
    raise Untranslatable(f"literal {value!r} is not a code, a whole number or a boolean")


def _values(c: Compare) -> tuple[Any, ...]:
    return tuple(_scalar(v) for v in (c.value if isinstance(c.value, tuple) else (c.value,)))


def _ordered_codes(rs: Ruleset, c: Compare) -> tuple[str, ...]:
    """An ordered comparison as the codes that satisfy it (so neither peer needs the ranks)."""
    f = rs.inputs[c.field]
    k = f.rank(c.value)
    return tuple(code for i, code in enumerate(f.codes) if ORDERED_TESTS[c.op](i, k))


# ---- GoRules ZEN -------------------------------------------------------------------------------------


def _zen_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f"'{value}'"


def _zen_list(values: tuple[Any, ...]) -> str:
    return "[" + ", ".join(_zen_literal(v) for v in values) + "]"


def _zen_name(field: str) -> str:
    if not _NAME.match(field) or field in _ZEN_WORDS:
        raise Untranslatable(f"field `{field}` is not a plain name in ZEN's expression language")
    return field


def _zen_test(rs: Ruleset, c: Compare, x: str) -> str:
    """The test of one comparison on subject `x` (a field name or `$`), assuming the field is known."""
    f = rs.inputs[c.field]
    op = c.op
    if f.type == "ordered_enum" and op in ORDERED_TESTS:
        return f"{x} in {_zen_list(_ordered_codes(rs, c))}"
    values = _values(c)
    if op == "equals":
        return f"{x} == {_zen_literal(values[0])}"
    if op == "not_equals":
        return f"{x} != {_zen_literal(values[0])}"
    if op == "in":
        return f"{x} in {_zen_list(values)}"
    if op == "not_in":
        return f"not({x} in {_zen_list(values)})"
    if op == "contains":
        return f"contains({x}, {_zen_literal(values[0])})"
    if op == "not_contains":
        return f"not contains({x}, {_zen_literal(values[0])})"
    if op == "contains_any":
        return f"some({x}, # in {_zen_list(values)})"
    if op == "contains_none":
        return f"none({x}, # in {_zen_list(values)})"
    symbol = {"below": "<", "at_most": "<=", "above": ">", "at_least": ">="}[op]
    return f"{x} {symbol} {_zen_literal(values[0])}"


def _zen_leaf(rs: Ruleset, leaf: Compare | Presence, x: str) -> str:
    """One comparison or presence test. Not parenthesised: ZEN's unary cells do not parse `(...)`."""
    if isinstance(leaf, Presence):
        return f"{x} != null" if leaf.known else f"{x} == null"
    return f"{x} != null and {_zen_test(rs, leaf, x)}"


def _zen_expression(rs: Ruleset, cond: Condition) -> str:
    """A negation-free condition as one ZEN expression over the whole context."""
    if isinstance(cond, (Compare, Presence)):
        return "(" + _zen_leaf(rs, cond, _zen_name(cond.field)) + ")"
    if isinstance(cond, Not):  # pragma: no cover - nnf() removed them
        raise Untranslatable("`not` left after normal form")
    joiner = " and " if isinstance(cond, All) else " or "
    return "(" + joiner.join(_zen_expression(rs, c) for c in cond.items) + ")"


def jdm_table(rs: Ruleset) -> dict[str, Any]:
    """The ruleset as a JDM graph: request -> one `collect` decision table -> response."""
    columns: dict[str, dict[str, str]] = {}  # field -> input column
    rows: list[dict[str, str]] = []
    expression_column = {"id": "when", "name": "when (several fields)"}
    for index, rule in enumerate(rs.rules):
        cond = nnf(rule.when)
        conjuncts = cond.items if isinstance(cond, All) else (cond,)
        cells: dict[str, list[str]] = {}
        rest: list[str] = []
        for part in conjuncts:
            if isinstance(part, (Compare, Presence)):
                _zen_name(part.field)
                column = columns.setdefault(part.field, {"id": f"in_{part.field}", "name": part.field})
                column["field"] = part.field
                cells.setdefault(column["id"], []).append(_zen_leaf(rs, part, "$"))
            else:
                rest.append(_zen_expression(rs, part))
        row = {"_id": f"row{index}", "out_rule": str(index)}
        row.update({cid: " and ".join(tests) for cid, tests in cells.items()})
        if rest:
            row["when"] = " and ".join(rest)
        rows.append(row)
    inputs = [*columns.values(), expression_column]
    for row in rows:  # an empty cell matches anything
        for column in inputs:
            row.setdefault(column["id"], "")
    table = {
        "hitPolicy": "collect",
        "inputs": inputs,
        "outputs": [{"id": "out_rule", "name": "rule", "field": "rule"}],
        "rules": rows,
        "passThrough": False,
        "inputField": None,
        "outputPath": None,
        "executionMode": "single",
    }
    at = {"x": 0, "y": 0}
    return {
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "request", "position": at},
            {"id": "rules", "type": "decisionTableNode", "name": rs.id, "position": at, "content": table},
            {"id": "response", "type": "outputNode", "name": "response", "position": at},
        ],
        "edges": [
            {"id": "e1", "sourceId": "request", "targetId": "rules", "type": "edge"},
            {"id": "e2", "sourceId": "rules", "targetId": "response", "type": "edge"},
        ],
    }


class ZenEvaluator:
    """The ruleset as a ZEN decision table; `fired(profile)` like DurableRuleset.fired."""

    def __init__(self, rs: Ruleset) -> None:
        import zen  # a benchmark-only dependency (requirements-dev.txt)

        self.rule_ids = [r.id for r in rs.rules]
        self.content = jdm_table(rs)
        self.engine = zen.ZenEngine({"loader": {"type": "static", "content": {rs.id: self.content}}})
        self.key = rs.id
        self.engine.evaluate(self.key, {})  # compile and cache now, not on the first measured call

    def fired(self, profile: Profile) -> list[str]:
        rows = self.engine.evaluate(self.key, profile)["result"]
        ids = self.rule_ids
        return [ids[row["rule"]] for row in rows]


# ---- generated Python (the floor) --------------------------------------------------------------------


class _Source:
    """Builds the floor's source: fields read once into locals, frozensets as named constants."""

    def __init__(self, rs: Ruleset) -> None:
        self.rs = rs
        self.locals: dict[str, str] = {}
        self.constants: dict[str, frozenset[Any]] = {}

    def var(self, field: str) -> str:
        if field not in self.locals:
            self.locals[field] = f"v{len(self.locals)}"
        return self.locals[field]

    def frozen(self, values: tuple[Any, ...]) -> str:
        name = f"K{len(self.constants)}"
        self.constants[name] = frozenset(values)
        return name

    def test(self, c: Compare, x: str) -> str:
        f = self.rs.inputs[c.field]
        op = c.op
        if f.type == "ordered_enum" and op in ORDERED_TESTS:
            return f"{x} in {self.frozen(_ordered_codes(self.rs, c))}"
        values = _values(c)
        if op == "equals":
            return f"{x} == {values[0]!r}"
        if op == "not_equals":
            return f"{x} != {values[0]!r}"
        if op == "in":
            return f"{x} in {self.frozen(values)}"
        if op == "not_in":
            return f"{x} not in {self.frozen(values)}"
        if op == "contains":
            return f"{values[0]!r} in {x}"
        if op == "not_contains":
            return f"{values[0]!r} not in {x}"
        if op == "contains_any":
            return f"not {self.frozen(values)}.isdisjoint({x})"
        if op == "contains_none":
            return f"{self.frozen(values)}.isdisjoint({x})"
        symbol = {"below": "<", "at_most": "<=", "above": ">", "at_least": ">="}[op]
        return f"{x} {symbol} {values[0]!r}"

    def expression(self, cond: Condition) -> str:
        if isinstance(cond, Presence):
            x = self.var(cond.field)
            return f"{x} is not None" if cond.known else f"{x} is None"
        if isinstance(cond, Compare):
            x = self.var(cond.field)
            return f"({x} is not None and {self.test(cond, x)})"
        if isinstance(cond, Not):  # pragma: no cover - nnf() removed them
            raise Untranslatable("`not` left after normal form")
        joiner = " and " if isinstance(cond, All) else " or "
        return "(" + joiner.join(self.expression(c) for c in cond.items) + ")"

    def function(self) -> str:
        body = []
        for rule in self.rs.rules:
            if not isinstance(rule.id, str) or not _CODE.match(rule.id):
                raise Untranslatable(f"rule id {rule.id!r}")
            body.append(f"    if {self.expression(nnf(rule.when))}:\n        out.append({rule.id!r})")
        head = ["def fired(p):", "    get = p.get"]
        for field, x in self.locals.items():
            if not _NAME.match(field):
                raise Untranslatable(f"field `{field}`")
            head.append(f"    {x} = get({field!r})")
        return "\n".join([*head, "    out = []", *body, "    return out", ""])


class FloorEvaluator:
    """Generated Python: one `if` per rule, compiled once from the parsed ruleset."""

    def __init__(self, rs: Ruleset) -> None:
        source = _Source(rs)
        self.source = source.function()
        namespace: dict[str, Any] = {"__builtins__": {}, **source.constants}
        exec(compile(self.source, f"<floor of {rs.id}>", "exec"), namespace)  # our own generated code only
        self.fired: Callable[[Profile], list[str]] = namespace["fired"]


def describe_table(content: dict[str, Any]) -> str:
    """A one-line size of the JDM table, for the report."""
    table = content["nodes"][1]["content"]
    cells = sum(1 for row in table["rules"] for k, v in row.items() if k != "_id" and v)
    size = len(json.dumps(content))
    return f"{len(table['rules'])} rows x {len(table['inputs'])} input columns, {cells} filled cells, {size} B JDM"
