"""Prove invariants over the whole input space with an SMT solver (z3).

The encoding is a third, independent statement of the semantics: each field is a z3 variable plus a
"known" flag; a condition has a z3 formula for "is true" and one for "is false" (Kleene logic, so
neither holds when an unknown input leaves it undecided); a rule fires when its condition is true;
the decision rules of engine/assemble.py become formulas over the fired rules. An invariant is proven
when its negation is unsatisfiable; otherwise the model is a counterexample profile.
"""

from __future__ import annotations

from typing import Any

import z3

from ..ruleset.model import (
    All,
    Compare,
    Condition,
    Invariant,
    Not,
    Presence,
    Ruleset,
)


class Encoding:
    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset
        self.known: dict[str, z3.BoolRef] = {}
        self.value: dict[str, Any] = {}
        self.members: dict[str, list[z3.BoolRef]] = {}
        self.domain: list[z3.BoolRef] = []
        for f in ruleset.inputs.values():
            self.known[f.id] = z3.BoolVal(True) if f.required else z3.Bool(f"known:{f.id}")
            if f.type in ("enum", "ordered_enum"):
                v = z3.Int(f"value:{f.id}")
                self.value[f.id] = v
                self.domain.append(z3.And(v >= 0, v < len(f.codes)))
            elif f.type == "boolean":
                self.value[f.id] = z3.Bool(f"value:{f.id}")
            elif f.type == "integer":
                v = z3.Int(f"value:{f.id}")
                self.value[f.id] = v
                self.domain.append(z3.And(v >= f.minimum, v <= f.maximum))
            else:
                self.members[f.id] = [z3.Bool(f"member:{f.id}:{code}") for code in f.codes]
        self.fires = {rule.id: self.truth(rule.when) for rule in ruleset.rules}

    # ---- conditions ------------------------------------------------------------------------
    def _compare(self, c: Compare) -> z3.BoolRef:
        f = self.rs.inputs[c.field]
        op, value = c.op, c.value
        if f.type == "set":
            bits = self.members[f.id]
            values = value if isinstance(value, tuple) else (value,)
            hits = [bits[f.codes.index(v)] for v in values]
            if op in ("contains", "contains_any"):
                return z3.Or(*hits)
            return z3.Not(z3.Or(*hits))
        var = self.value[f.id]

        def const(v: Any) -> Any:
            if f.type in ("enum", "ordered_enum"):
                return f.codes.index(v)
            return v

        if op in ("in", "not_in"):
            hit = z3.Or(*[var == const(v) for v in value])
            return hit if op == "in" else z3.Not(hit)
        k = const(value)
        return {
            "equals": lambda: var == k,
            "not_equals": lambda: var != k,
            "below": lambda: var < k,
            "at_most": lambda: var <= k,
            "above": lambda: var > k,
            "at_least": lambda: var >= k,
        }[op]()

    def truth(self, c: Condition) -> z3.BoolRef:
        if isinstance(c, Compare):
            return z3.And(self.known[c.field], self._compare(c))
        if isinstance(c, Presence):
            return self.known[c.field] if c.known else z3.Not(self.known[c.field])
        if isinstance(c, Not):
            return self.falsity(c.item)
        parts = [self.truth(i) for i in c.items]
        return z3.And(*parts) if isinstance(c, All) else z3.Or(*parts)

    def falsity(self, c: Condition) -> z3.BoolRef:
        if isinstance(c, Compare):
            return z3.And(self.known[c.field], z3.Not(self._compare(c)))
        if isinstance(c, Presence):
            return z3.Not(self.truth(c))
        if isinstance(c, Not):
            return self.truth(c.item)
        parts = [self.falsity(i) for i in c.items]
        return z3.Or(*parts) if isinstance(c, All) else z3.And(*parts)

    # ---- decision --------------------------------------------------------------------------
    def _any_rule(self, kind: str, option: str) -> z3.BoolRef:
        firing = [self.fires[r.id] for r in self.rs.rules for a in r.then if a.kind == kind and option in a.options]
        return z3.Or(*firing) if firing else z3.BoolVal(False)

    def excluded(self, option: str) -> z3.BoolRef:
        return self._any_rule("exclude", option)

    def candidate(self, option: str) -> z3.BoolRef:
        return z3.And(self._any_rule("recommend", option), z3.Not(self.excluded(option)))

    def stronger(self, option: str, strength: str) -> z3.BoolRef:
        """The option is a candidate with a strength stronger than `strength` (strengths: strongest first)."""
        rank = {s.id: i for i, s in enumerate(self.rs.strengths)}
        firing = [
            self.fires[r.id]
            for r in self.rs.rules
            for a in r.then
            if a.kind == "recommend" and option in a.options and rank[a.strength] < rank[strength]
        ]
        return z3.And(z3.Or(*firing), z3.Not(self.excluded(option))) if firing else z3.BoolVal(False)

    def referral(self, option: str) -> z3.BoolRef:
        return z3.And(self._any_rule("refer", option), z3.Not(self.excluded(option)))

    def some_answer(self) -> z3.BoolRef:
        parts = [self.candidate(o) for o in self.rs.options] + [self.referral(o) for o in self.rs.options]
        return z3.Or(*parts)

    def holds(self, inv: Invariant) -> z3.BoolRef:
        """The invariant's claim for one profile (ignoring its `when`)."""
        if inv.kind == "never_candidate":
            return z3.And(*[z3.Not(self.candidate(o)) for o in inv.options])
        if inv.kind == "always_excluded":
            return z3.And(*[self.excluded(o) for o in inv.options])
        if inv.kind == "always_referral":
            return z3.And(*[self.referral(o) for o in inv.options])
        if inv.kind == "at_most":
            return z3.And(*[z3.Not(self.stronger(o, inv.strength)) for o in inv.options])
        return self.some_answer()

    # ---- solving ---------------------------------------------------------------------------
    def solver(self) -> z3.Solver:
        s = z3.Solver()
        s.set("timeout", 60_000)
        s.add(*self.domain)
        return s

    def profile(self, model: z3.ModelRef) -> dict[str, Any]:
        """The profile a z3 model describes (unknown fields left out)."""
        out: dict[str, Any] = {}
        for f in self.rs.inputs.values():
            if not z3.is_true(model.eval(self.known[f.id], model_completion=True)):
                continue
            if f.type == "set":
                out[f.id] = [
                    code
                    for code, bit in zip(f.codes, self.members[f.id], strict=True)
                    if z3.is_true(model.eval(bit, model_completion=True))
                ]
                continue
            v = model.eval(self.value[f.id], model_completion=True)
            if f.type in ("enum", "ordered_enum"):
                out[f.id] = f.codes[v.as_long()]
            elif f.type == "boolean":
                out[f.id] = z3.is_true(v)
            else:
                out[f.id] = v.as_long()
        return out

    def find(self, *constraints: z3.BoolRef) -> dict[str, Any] | str | None:
        """A profile satisfying the constraints, None when there is none, "unknown" on timeout."""
        s = self.solver()
        s.add(*constraints)
        result = s.check()
        if result == z3.sat:
            return self.profile(s.model())
        if result == z3.unsat:
            return None
        return "unknown"

    def find_many(self, constraint: z3.BoolRef, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` different profiles satisfying a constraint (each blocks the fired-rule set it shows)."""
        s = self.solver()
        s.add(constraint)
        out = []
        while len(out) < limit and s.check() == z3.sat:
            model = s.model()
            out.append(self.profile(model))
            fired_now = [self.fires[r] for r in self.fires if z3.is_true(model.eval(self.fires[r], True))]
            quiet = [z3.Not(self.fires[r]) for r in self.fires if not z3.is_true(model.eval(self.fires[r], True))]
            s.add(z3.Not(z3.And(*fired_now, *quiet)))
        return out
