"""Conditions: `all`, `any`, `not`, comparisons and `known`/`unknown`, type-checked against the inputs."""

from __future__ import annotations

from typing import Any

from .errors import suggest
from .model import (
    LIST_OPERATORS,
    OPERATORS,
    ORDERED_OPERATORS,
    SET_OPERATORS,
    All,
    Any_,
    Compare,
    Condition,
    InputField,
    Not,
    Presence,
    Ruleset,
)
from .reader import Path, TreeReader, kind_of


def parse_condition(r: TreeReader, node: Any, path: Path, rs: Ruleset) -> Condition | None:
    """Parse one condition; see rulesets/README.md for the forms."""
    line = r.src.line(path)
    if not isinstance(node, dict) or not node:
        r.error(path, f"a condition must be a mapping such as `{{field: age, at_least: 18}}`, not {kind_of(node)}")
        return None
    keys = set(node)
    for combinator in ("all", "any"):
        if combinator in keys:
            if keys != {combinator}:
                r.error(
                    path, f"`{combinator}` must stand alone in its condition; found also {sorted(keys - {combinator})}"
                )
            items = node[combinator]
            if not isinstance(items, list) or not items:
                r.error((*path, combinator), f"`{combinator}` needs a non-empty list of conditions")
                return None
            parsed = [parse_condition(r, c, (*path, combinator, i), rs) for i, c in enumerate(items)]
            if any(c is None for c in parsed):
                return None
            cls = All if combinator == "all" else Any_
            return cls(tuple(parsed), line)  # type: ignore[arg-type]
    if "not" in keys:
        if keys != {"not"}:
            r.error(path, "`not` must stand alone in its condition")
        inner = parse_condition(r, node["not"], (*path, "not"), rs)
        return Not(inner, line) if inner is not None else None
    for presence in ("known", "unknown"):
        if presence in keys:
            if keys != {presence}:
                r.error(path, f"`{presence}` must stand alone in its condition, e.g. `{{{presence}: pregnant}}`")
            fid = node[presence]
            if fid not in rs.inputs:
                r.error((*path, presence), f"unknown field `{fid}`{suggest(fid, rs.inputs)}")
                return None
            if rs.inputs[fid].required:
                r.error(
                    (*path, presence), f"`{fid}` is required, so it is always known; `{presence}` would be constant"
                )
            return Presence(fid, presence == "known", line)
    if "field" not in keys:
        guess = next(iter(keys))
        if keys & set(OPERATORS):
            r.error(path, "a comparison needs `field:` and one operator")
        else:
            words = [*OPERATORS, "all", "any", "not", "known", "unknown", "field"]
            r.error(path, f"unknown condition `{guess}`{suggest(guess, words)}")
        return None
    fid = node["field"]
    ops = [k for k in keys if k != "field"]
    if len(ops) != 1:
        r.error(path, f"a comparison needs exactly one operator next to `field` ({', '.join(OPERATORS)})")
        return None
    op = ops[0]
    if op not in OPERATORS:
        r.error((*path, op), f"unknown operator `{op}`{suggest(op, OPERATORS)}")
        return None
    if fid not in rs.inputs:
        r.error((*path, "field"), f"unknown field `{fid}`{suggest(fid, rs.inputs)}")
        return None
    f = rs.inputs[fid]
    value = node[op]
    vpath = (*path, op)
    if op in SET_OPERATORS and f.type != "set":
        r.error(vpath, f"`{op}` applies to set fields; `{fid}` is {f.type} (use equals or in)")
        return None
    if f.type == "set" and op not in SET_OPERATORS:
        r.error(vpath, f"`{fid}` is a set field: use contains, not_contains, contains_any or contains_none")
        return None
    if op in ORDERED_OPERATORS and f.type not in ("integer", "ordered_enum"):
        r.error(vpath, f"`{op}` needs an integer or ordered_enum field; `{fid}` is {f.type}")
        return None
    if op in LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            r.error(vpath, f"`{op}` needs a non-empty list of values of `{fid}`")
            return None
        ok = all(_check_value(r, f, v, vpath) for v in value)
        if len(set(map(repr, value))) != len(value):
            r.error(vpath, f"`{op}` lists a value twice")
        return Compare(fid, op, tuple(value), line) if ok else None
    if isinstance(value, list):
        r.error(vpath, f"`{op}` compares with one value; use `in` or `contains_any` for a list")
        return None
    if not _check_value(r, f, value, vpath):
        return None
    return Compare(fid, op, value, line)


def _check_value(r: TreeReader, f: InputField, value: Any, path: Path) -> bool:
    if f.type in ("enum", "ordered_enum", "set"):
        if value not in f.codes:
            r.error(path, f"`{value}` is not a value of `{f.id}`{suggest(value, f.codes)}")
            return False
        return True
    if f.type == "boolean":
        if not isinstance(value, bool):
            r.error(path, f"`{f.id}` is a yes/no field: compare it with true or false, not {value!r}")
            return False
        return True
    if type(value) is not int:
        r.error(path, f"`{f.id}` is an integer field: compare it with a whole number, not {value!r}")
        return False
    if f.minimum is not None and f.maximum is not None and not (f.minimum <= value <= f.maximum):
        r.error(path, f"{value} is outside the range of `{f.id}` ({f.minimum}-{f.maximum} {f.unit})")
        return False
    return True
