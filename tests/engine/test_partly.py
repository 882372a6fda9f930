"""A set known only in part (engine/partly.py): the values found decide, the others are unknown.

This is what a CDS Hooks call gives when a record has an anticoagulant among medications the mapping
cannot all classify. The three evaluators (durable_rules, the reference evaluator, its per-request
closures) must agree on such profiles, and whatever they decide from the values found must hold for every
full list that contains them: the found values can never make "has none of ..." true.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine import Engine, PartlyKnown, reference
from service.engine.answer import WarningKind
from service.ruleset import space
from service.ruleset.model import Presence, condition_leaves
from tests.engine.test_agreement import conditions
from tests.engine.vocab import rule, ruleset

CODES = ("a", "b", "c")


def _supersets(found: tuple[str, ...]) -> list[tuple[str, ...]]:
    rest = [c for c in CODES if c not in found]
    return [
        tuple(c for c in CODES if c in found or c in extra)
        for n in range(len(rest) + 1)
        for extra in itertools.combinations(rest, n)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conditions, min_size=1, max_size=5), st.integers(0, 2**32))
def test_the_evaluators_agree_on_partly_known_sets_and_never_contradict_a_full_list(
    whens: list[dict[str, Any]], seed: int
) -> None:
    rs = ruleset([rule(f"r{i}", w) for i, w in enumerate(whens)])
    engine = Engine(rs)
    rng = random.Random(seed)
    try:
        compiled = [(r, reference.compile_condition(rs, r.when)) for r in rs.rules]
        for _ in range(25):
            p = space.random_profile(rs, rng, unknown_rate=0.3)
            found = tuple(c for c in CODES if rng.random() < 0.4)
            p["conditions"] = PartlyKnown(found, rng.randint(0, 3))
            expected = reference.fired_rules(rs, p)
            for r, fn in compiled:
                assert fn(p) == reference.evaluate(rs, r.when, p), (r.id, p)
            assert engine.fired(p) == expected, p
            for r in rs.rules:
                if any(isinstance(leaf, Presence) and leaf.field == "conditions" for leaf in condition_leaves(r.when)):
                    continue  # `known`/`unknown` read a partly known set as not recorded: checked below
                value = reference.evaluate(rs, r.when, p)
                if value is None:
                    continue
                for full in _supersets(found):
                    assert reference.evaluate(rs, r.when, {**p, "conditions": full}) is value, (r.id, found, full)
    finally:
        engine.close()


def _engine(*rules: dict[str, Any]) -> Engine:
    return Engine(ruleset(list(rules)))


def test_found_values_decide_and_the_others_stay_unknown() -> None:
    engine = _engine(
        rule("has_a", {"field": "conditions", "contains": "a"}),
        rule("none_of_bc", {"field": "conditions", "contains_none": ["b", "c"]}, option="y"),
        rule("not_recorded", {"unknown": "conditions"}, option="z"),
    )
    try:
        full = engine.check({"sex": "male", "age": 40, "conditions": ["a"]})
        assert engine.fired(full) == ["has_a", "none_of_bc"]
        partly = engine.check({"sex": "male", "age": 40, "conditions": ["a"]}, partly_known={"conditions": 2})
        assert isinstance(partly["conditions"], PartlyKnown)
        # "a" is found; whether b or c is present is unknown, so "none of b, c" is not true: no silent "none".
        assert engine.fired(partly) == ["has_a", "not_recorded"]
        decision = engine.decide(partly)
        assert [c.option for c in decision.candidates] == ["x", "z"]
        (said,) = [w for w in decision.warnings if w.kind is WarningKind.UNKNOWN_INPUTS and "only in part" in w.text]
        assert said.fields == ("conditions",)
        assert "2 items could not be classified" in said.text and "found: A" in said.text
        # The rest of the list is prompted for like any unrecorded fact, naming what it could change.
        assert any(w.fields == ("conditions",) and w.options == ("y",) for w in decision.warnings)
        assert engine.explain(partly, engine.fired(partly)).unknown_inputs == (
            "stage",
            "pregnant",
            "months",
            "conditions",
        )
    finally:
        engine.close()


def test_an_empty_partly_known_set_is_as_unknown_as_no_list() -> None:
    engine = _engine(
        rule("none_of_a", {"field": "conditions", "not_contains": "a"}),
        rule("not_recorded", {"unknown": "conditions"}, option="y"),
    )
    try:
        partly = engine.check({"sex": "female", "age": 30, "conditions": []}, partly_known={"conditions": 1})
        assert engine.fired(partly) == engine.fired(engine.check({"sex": "female", "age": 30})) == ["not_recorded"]
    finally:
        engine.close()
