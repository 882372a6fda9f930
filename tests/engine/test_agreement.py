"""durable_rules, the reference evaluator and the SMT encoding agree on random rulesets and profiles.

This is the property the activation gate relies on, tested far beyond the shipped rulesets: hypothesis
builds random condition trees over every field type and operator (with `not` at any depth), and every
evaluator must fire exactly the same rules on random profiles with unknown inputs.
"""

from __future__ import annotations

import random
from typing import Any

import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine import Engine, reference
from service.ruleset import space
from service.verify import crosscheck
from service.verify.smt import Encoding
from tests.engine.vocab import rule, ruleset

SEX = st.sampled_from(["male", "female"])
STAGE = st.sampled_from(["mild", "moderate", "severe"])
CODES = st.sampled_from(["a", "b", "c"])


def _nonempty_unique(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(elements, min_size=1, max_size=3, unique=True)


leaf = st.one_of(
    st.builds(lambda v, op: {"field": "sex", op: v}, SEX, st.sampled_from(["equals", "not_equals"])),
    st.builds(lambda v, op: {"field": "sex", op: v}, _nonempty_unique(SEX), st.sampled_from(["in", "not_in"])),
    st.builds(
        lambda v, op: {"field": "age", op: v},
        st.integers(0, 120),
        st.sampled_from(["equals", "not_equals", "below", "at_most", "above", "at_least"]),
    ),
    st.builds(
        lambda v, op: {"field": "months", op: v},
        st.integers(0, 600),
        st.sampled_from(["equals", "below", "at_least"]),
    ),
    st.builds(
        lambda v, op: {"field": "stage", op: v},
        STAGE,
        st.sampled_from(["equals", "not_equals", "below", "at_most", "above", "at_least"]),
    ),
    st.builds(lambda v, op: {"field": "stage", op: v}, _nonempty_unique(STAGE), st.sampled_from(["in", "not_in"])),
    st.builds(lambda v, op: {"field": "pregnant", op: v}, st.booleans(), st.sampled_from(["equals", "not_equals"])),
    st.builds(lambda v, op: {"field": "conditions", op: v}, CODES, st.sampled_from(["contains", "not_contains"])),
    st.builds(
        lambda v, op: {"field": "conditions", op: v},
        _nonempty_unique(CODES),
        st.sampled_from(["contains_any", "contains_none"]),
    ),
    st.builds(
        lambda f, k: {k: f},
        st.sampled_from(["pregnant", "months", "stage", "conditions"]),
        st.sampled_from(["known", "unknown"]),
    ),
)

conditions = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.builds(lambda c: {"not": c}, children),
        st.builds(lambda cs: {"all": cs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(children, min_size=1, max_size=3)),
    ),
    max_leaves=8,
)


def _smt_fires(enc: Encoding, profile: dict[str, Any]) -> list[str]:
    """Which rules the z3 encoding says fire for this exact profile."""
    s = z3.Solver()
    for f in enc.rs.inputs.values():
        known = f.id in profile
        s.add(enc.known[f.id] == known)
        if not known:
            continue
        v = profile[f.id]
        if f.type == "set":
            s.add(*[bit == (code in v) for code, bit in zip(f.codes, enc.members[f.id], strict=True)])
        elif f.type in ("enum", "ordered_enum"):
            s.add(enc.value[f.id] == f.codes.index(v))
        else:
            s.add(enc.value[f.id] == v)
    assert s.check() == z3.sat
    model = s.model()
    return [rid for rid, fires in enc.fires.items() if z3.is_true(model.eval(fires, model_completion=True))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conditions, min_size=1, max_size=5), st.integers(0, 2**32))
def test_three_evaluators_agree(whens: list[dict[str, Any]], seed: int) -> None:
    rs = ruleset([rule(f"r{i}", w) for i, w in enumerate(whens)])
    engine = Engine(rs)
    enc = Encoding(rs)
    rng = random.Random(seed)
    try:
        profiles = [space.random_profile(rs, rng, unknown_rate=0.4) for _ in range(25)]
        profiles += list(space.boundary_profiles(rs, rng, bases=1))
        compiled = [(r, reference.compile_condition(rs, r.when)) for r in rs.rules]
        for p in profiles:
            expected = reference.fired_rules(rs, p)
            for r, fn in compiled:  # the per-request closures match the oracle, unknowns included
                assert fn(p) == reference.evaluate(rs, r.when, p), (r.id, p)
            assert engine.fired(p) == expected, p
            assert _smt_fires(enc, p) == expected, p
    finally:
        engine.close()


def test_crosscheck_reports_no_disagreement_on_the_example(example_text: str) -> None:
    from service.ruleset import load_text

    rs = load_text(example_text)
    engine = Engine(rs)
    try:
        tried, disagreements = crosscheck(rs, engine)
    finally:
        engine.close()
    assert tried > 400
    assert disagreements == []
