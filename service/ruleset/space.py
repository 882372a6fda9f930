"""The input space of a ruleset, cut into the pieces its conditions can tell apart.

Integers are split at the boundaries the rules use (c-1, c, c+1 and the ends of the range); sets only
matter through the codes the rules mention; optional fields also take the value "unknown". Every
profile of the whole space behaves like one representative of its piece, so enumerating the pieces is
a proof when there are few of them, and their boundaries are the systematic sample for cross-checks.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

from .model import Compare, InputField, Ruleset, condition_leaves

UNKNOWN = object()


def _conditions(ruleset: Ruleset) -> list[Any]:
    conds = [r.when for r in ruleset.rules]
    conds += [inv.when for inv in ruleset.invariants if inv.when is not None]
    return conds


def _consts(leaf: Compare) -> tuple[Any, ...]:
    return leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)


def representatives(ruleset: Ruleset, f: InputField, exhaustive: bool = True) -> list[Any]:
    """Values of one field that together reach every behaviour of the ruleset's conditions.

    For a set field that means every subset of the codes the conditions mention; without `exhaustive`
    (sampling) only the empty set, each single code and all of them together.
    """
    leaves = [leaf for c in _conditions(ruleset) for leaf in condition_leaves(c) if leaf.field == f.id]
    values: list[Any]
    if f.type == "enum":
        # Equality tests cannot tell apart two codes that no condition mentions: one stands for all.
        mentioned = {v for leaf in leaves if isinstance(leaf, Compare) for v in _consts(leaf)}
        values = [c for c in f.codes if c in mentioned]
        values += [c for c in f.codes if c not in mentioned][:1]
    elif f.type == "ordered_enum":
        values = list(f.codes)
    elif f.type == "boolean":
        values = [False, True]
    elif f.type == "integer":
        assert f.minimum is not None and f.maximum is not None
        points = {f.minimum, f.maximum}
        for leaf in leaves:
            if isinstance(leaf, Compare):
                for c in _consts(leaf):
                    points.update({c - 1, c, c + 1})
        values = sorted(p for p in points if f.minimum <= p <= f.maximum)
    else:
        mentioned_codes: list[str] = []
        for leaf in leaves:
            if isinstance(leaf, Compare):
                for code in _consts(leaf):
                    if code not in mentioned_codes:
                        mentioned_codes.append(code)
        mentioned_codes.sort(key=f.codes.index)
        if exhaustive:
            values = [
                tuple(combo)
                for n in range(len(mentioned_codes) + 1)
                for combo in itertools.combinations(mentioned_codes, n)
            ]
        else:
            values = [(), *((c,) for c in mentioned_codes), tuple(mentioned_codes)]
    if not f.required:
        values.append(UNKNOWN)
    return values


def partition_size(ruleset: Ruleset) -> int:
    """How many pieces the input space has (computed, not enumerated: sets can have 2**n pieces)."""
    size = 1
    for f in ruleset.inputs.values():
        if f.type == "set":
            mentioned = {
                v
                for c in _conditions(ruleset)
                for leaf in condition_leaves(c)
                if leaf.field == f.id and isinstance(leaf, Compare)
                for v in _consts(leaf)
            }
            size *= 2 ** len(mentioned) + (0 if f.required else 1)
        else:
            size *= len(representatives(ruleset, f))
    return size


def _profile(fields: list[str], combo: tuple[Any, ...]) -> dict[str, Any]:
    return {f: v for f, v in zip(fields, combo, strict=True) if v is not UNKNOWN}


def enumerate_partitions(ruleset: Ruleset) -> Iterator[dict[str, Any]]:
    """One representative profile per piece of the input space."""
    fields = list(ruleset.inputs)
    choices = [representatives(ruleset, ruleset.inputs[f]) for f in fields]
    for combo in itertools.product(*choices):
        yield _profile(fields, combo)


def random_profile(ruleset: Ruleset, rng: random.Random, unknown_rate: float = 0.3) -> dict[str, Any]:
    """A valid profile drawn from the whole space (not just representatives)."""
    profile: dict[str, Any] = {}
    for f in ruleset.inputs.values():
        if not f.required and rng.random() < unknown_rate:
            continue
        if f.type in ("enum", "ordered_enum"):
            profile[f.id] = rng.choice(f.codes)
        elif f.type == "boolean":
            profile[f.id] = rng.random() < 0.5
        elif f.type == "integer":
            assert f.minimum is not None and f.maximum is not None
            if rng.random() < 0.5:
                reps = [v for v in representatives(ruleset, f, exhaustive=False) if v is not UNKNOWN]
                profile[f.id] = rng.choice(reps)
            else:
                profile[f.id] = rng.randint(f.minimum, f.maximum)
        else:
            k = rng.choice([0, 0, 1, 1, 2, 3])
            profile[f.id] = tuple(sorted(rng.sample(f.codes, min(k, len(f.codes))), key=f.codes.index))
    return profile


def boundary_profiles(ruleset: Ruleset, rng: random.Random, bases: int = 3) -> Iterator[dict[str, Any]]:
    """Every representative of every field, each placed into a few random base profiles."""
    for _ in range(bases):
        base = random_profile(ruleset, rng)
        for f in ruleset.inputs.values():
            for value in representatives(ruleset, f, exhaustive=False):
                p = dict(base)
                if value is UNKNOWN:
                    p.pop(f.id, None)
                else:
                    p[f.id] = value
                yield p
