"""Compile a ruleset to durable_rules and evaluate profiles with the stateless raw driver.

durable_rules (2.0.28) is a stateful Rete engine meant for long-lived sessions; the service needs one
short, independent evaluation per request. Driving it that way is safe only with each of these steps,
and each prevents a failure that was reproduced with this version, not guessed:

1. Every rule matches a type tag (`t`) as well as its condition. The engine re-asserts its own
   session-state fact after every action; an untagged rule (e.g. one testing that a field is absent)
   matches that fact and fires forever.
2. A catch-all rule, so some action always runs. A profile that matches no rule is "not handled", and
   deleting the session of a not-handled fact frees uninitialised pointers in the C extension: a
   segfault, every time. With the catch-all, "no rule fired" is simply an empty list.
3. The C extension (`durable_rules_engine`) is driven directly, never `engine.Host`. The Host starts
   timer threads that take pending actions of any session; they race the request's own thread, lose
   or mix up fired rules and can crash the process. (The Host also calls a deprecated datetime API,
   which fails under the test suite's `filterwarnings = error`.)
4. A fresh session id per evaluation (process id and a counter): sessions are looked up by a 32-bit
   hash of the id, so ids must be short-lived and unique.
5. `assert_fact`, never `post`: an event is consumed by the first rule that uses it, so only one of
   the matching rules would fire; a fact is seen by every rule.
6. `delete_state` in `finally`: facts live until their session is deleted, and the extension refuses
   a new session once 1,024 are alive.

The extension has no locks and never releases the GIL, so sessions driven one per thread are safe and
there is no parallelism between threads: the service scales with gunicorn processes. A ruleset built
before the fork (gunicorn's preload) evaluates correctly in every worker.

durable_rules is false on a missing field for every operator, including `$neq`; this compiler pushes
`not` down to the comparisons so that this single behaviour gives exactly the three-valued semantics
of reference.py: a rule fires only when its condition is true with the inputs that are known.
Profiles must be validated (ruleset.profile) before they reach `evaluate`: the engine coerces types
(`age="abc"` satisfies `age >= 18`), so a malformed value would silently turn rules on.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from typing import Any

import durable_rules_engine as dre

from ..ruleset.model import (
    OPERATORS,
    All,
    Any_,
    Compare,
    Condition,
    Not,
    Presence,
    Ruleset,
    condition_leaves,
)
from .partly import PartlyKnown

TYPE_FIELD = "t"
TYPE_TAG = "__profile__"
CATCH_ALL = "__catch_all__"

_handles = itertools.count()
_handles_lock = threading.Lock()


def _set_flag(field: str, index: int) -> str:
    return f"{field}__{index}"


def _set_marker(field: str) -> str:
    return f"{field}__n"


def _rank_field(field: str) -> str:
    return f"{field}__rank"


def negate(cond: Condition) -> Condition:
    """`not` pushed one level down (De Morgan); comparisons flip to their complement operator."""
    if isinstance(cond, Compare):
        return Compare(cond.field, OPERATORS[cond.op], cond.value, cond.line)
    if isinstance(cond, Presence):
        return Presence(cond.field, not cond.known, cond.line)
    if isinstance(cond, Not):
        return cond.item
    if isinstance(cond, All):
        return Any_(tuple(negate(c) for c in cond.items), cond.line)
    return All(tuple(negate(c) for c in cond.items), cond.line)


class Compiler:
    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset

    def condition(self, cond: Condition) -> dict[str, Any]:
        if isinstance(cond, Not):
            return self.condition(negate(cond.item))
        if isinstance(cond, (All, Any_)):
            parts = [self.condition(c) for c in cond.items]
            if len(parts) == 1:
                return parts[0]
            return {"$and" if isinstance(cond, All) else "$or": parts}
        if isinstance(cond, Presence):
            f = self.rs.inputs[cond.field]
            name = _set_marker(f.id) if f.type == "set" else f.id
            return {"$ex" if cond.known else "$nex": {name: 1}}
        return self.compare(cond)

    def compare(self, c: Compare) -> dict[str, Any]:
        f = self.rs.inputs[c.field]
        op, value = c.op, c.value
        if f.type == "set":
            flags = [_set_flag(f.id, f.codes.index(v)) for v in (value if isinstance(value, tuple) else (value,))]
            wanted = op in ("contains", "contains_any")
            atoms = [{flag: wanted} for flag in flags]
            if len(atoms) == 1:
                return atoms[0]
            return {"$or": atoms} if op == "contains_any" else {"$and": atoms}
        if op in ("in", "not_in"):
            atoms = [self.compare(Compare(c.field, "equals" if op == "in" else "not_equals", v)) for v in value]
            if len(atoms) == 1:
                return atoms[0]
            return {"$or": atoms} if op == "in" else {"$and": atoms}
        if op == "equals":
            return {f.id: value}
        if op == "not_equals":
            return {"$neq": {f.id: value}}
        name, operand = f.id, value
        if f.type == "ordered_enum":
            name, operand = _rank_field(f.id), f.rank(value)
        symbol = {"below": "$lt", "at_most": "$lte", "above": "$gt", "at_least": "$gte"}[op]
        return {symbol: {name: operand}}

    def ruleset(self) -> tuple[dict[str, Any], list[str]]:
        """The durable JSON definition and the rule ids by durable rule name (r0, r1, ...)."""
        definition: dict[str, Any] = {}
        names: list[str] = []
        tag = {TYPE_FIELD: TYPE_TAG}
        for i, rule in enumerate(self.rs.rules):
            body = self.condition(rule.when)
            parts = [tag, *(body["$and"] if "$and" in body and len(body) == 1 else [body])]
            definition[f"r{i}"] = {"all": [{"m": {"$and": parts}}]}
            names.append(rule.id)
        definition[CATCH_ALL] = {"all": [{"m": tag}]}
        return definition, names


class FactShape:
    """How a validated profile becomes the one durable fact, limited to what the rules read.

    Sets become one flag per value the rules mention (plus a marker that the set is recorded); ordered
    enums also carry their rank. Fields and values no rule mentions are left out: they cannot change
    which rules fire, and every byte of the fact is parsed by assert_fact and re-sent with each action.
    """

    def __init__(self, ruleset: Ruleset) -> None:
        used: dict[str, set[Any]] = {}
        for rule in ruleset.rules:
            for leaf in condition_leaves(rule.when):
                values = used.setdefault(leaf.field, set())
                if isinstance(leaf, Compare):
                    values.update(leaf.value if isinstance(leaf.value, tuple) else (leaf.value,))
        self.plan: list[tuple[str, str, Any]] = []
        for fid, values in used.items():
            f = ruleset.inputs[fid]
            if f.type == "set":
                flags = tuple((_set_flag(fid, f.codes.index(c)), c) for c in f.codes if c in values)
                self.plan.append((fid, "set", flags))
            elif f.type == "ordered_enum":
                self.plan.append((fid, "ordered", {c: i for i, c in enumerate(f.codes)}))
            else:
                self.plan.append((fid, "plain", None))

    def fact(self, profile: dict[str, Any]) -> dict[str, Any]:
        fact: dict[str, Any] = {}
        for fid, kind, extra in self.plan:
            value = profile.get(fid)
            if value is None:
                continue
            if kind == "plain":
                fact[fid] = value
            elif kind == "set" and isinstance(value, PartlyKnown):
                # Known in part (engine/partly.py): the values found are true, the rest and the marker left out.
                for flag, code in extra:
                    if code in value:
                        fact[flag] = True
            elif kind == "set":
                fact[_set_marker(fid)] = len(value)
                for flag, code in extra:
                    fact[flag] = code in value
            else:
                fact[fid] = value
                fact[_rank_field(fid)] = extra[value]
        return fact


def _action_names(messages: str) -> list[str]:
    """Rule names of one action message, e.g. '{"r3":{"m":{...}}}' -> ["r3"].

    The message carries the whole matched fact; decoding it all just to read the one key costs more
    than the rest of the drain, so the usual one-rule shape is read directly and anything else decoded.
    """
    if messages.startswith('{"') and messages.count('":{"m":') == 1:
        return [messages[2 : messages.index('"', 2)]]
    return list(json.loads(messages))


class DurableRuleset:
    """One compiled durable_rules ruleset. Safe for one thread at a time per session; sessions are per call."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset
        definition, self.rule_ids = Compiler(ruleset).ruleset()
        self.definition = definition
        self._order = {f"r{i}": i for i in range(len(self.rule_ids))}
        self.shape = FactShape(ruleset)
        with _handles_lock:
            n = next(_handles)
        self.name = f"{ruleset.id}-{ruleset.sha256[:12]}-{os.getpid()}-{n}"
        self.handle = dre.create_ruleset(self.name, json.dumps(definition))
        self._sids = itertools.count()
        self._closed = False

    def fired(self, profile: dict[str, Any]) -> list[str]:
        """Ids of the rules that fire for a validated profile, in file order."""
        fact = self.shape.fact(profile)
        sid = f"{os.getpid()}-{next(self._sids)}"
        fact["sid"] = sid
        fact[TYPE_FIELD] = TYPE_TAG
        order = self._order
        hits: list[int] = []
        try:
            code, state_offset = dre.assert_fact(self.handle, json.dumps(fact))
            if code != 0:
                raise RuntimeError(f"durable_rules result code {code}")
            result = dre.start_action_for_state(self.handle, state_offset)
            messages = result[1] if result else None
            while messages:
                hits.extend(order[name] for name in _action_names(messages) if name != CATCH_ALL)
                messages = dre.complete_and_start_action(self.handle, state_offset)
        finally:
            dre.delete_state(self.handle, sid)
        return [self.rule_ids[i] for i in sorted(set(hits))]

    def close(self) -> None:
        """Free the C ruleset. Only call when no evaluation can still be running on it."""
        if not self._closed:
            self._closed = True
            dre.delete_ruleset(self.handle)
