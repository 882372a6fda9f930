"""Condition semantics on both evaluators, above all: an unknown input never satisfies a comparison."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine import Engine, InvalidProfile, reference
from service.engine.answer import to_json
from tests.engine.vocab import rule, ruleset

BASE = {"sex": "female", "age": 40}

# (condition, profile additions, expected to fire)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"field": "sex", "equals": "female"}, {}, True),
    ({"field": "sex", "not_equals": "female"}, {}, False),
    ({"field": "pregnant", "equals": True}, {"pregnant": True}, True),
    ({"field": "pregnant", "equals": True}, {"pregnant": False}, False),
    ({"field": "pregnant", "equals": True}, {}, False),
    ({"field": "pregnant", "not_equals": True}, {"pregnant": False}, True),
    ({"field": "pregnant", "not_equals": True}, {}, False),  # unknown is never "not equal"
    ({"field": "pregnant", "equals": False}, {}, False),
    ({"field": "stage", "in": ["mild", "severe"]}, {"stage": "severe"}, True),
    ({"field": "stage", "in": ["mild", "severe"]}, {"stage": "moderate"}, False),
    ({"field": "stage", "not_in": ["mild"]}, {"stage": "moderate"}, True),
    ({"field": "stage", "not_in": ["mild"]}, {}, False),
    ({"field": "stage", "at_least": "moderate"}, {"stage": "severe"}, True),
    ({"field": "stage", "at_least": "moderate"}, {"stage": "mild"}, False),
    ({"field": "stage", "below": "moderate"}, {"stage": "mild"}, True),
    ({"field": "stage", "below": "moderate"}, {}, False),
    ({"field": "age", "at_least": 40}, {}, True),
    ({"field": "age", "above": 40}, {}, False),
    ({"field": "age", "at_most": 40}, {}, True),
    ({"field": "age", "below": 40}, {}, False),
    ({"field": "months", "below": 6}, {"months": 5}, True),
    ({"field": "months", "below": 6}, {}, False),
    ({"field": "months", "at_least": 6}, {}, False),
    ({"field": "conditions", "contains": "a"}, {"conditions": ["a", "b"]}, True),
    ({"field": "conditions", "contains": "c"}, {"conditions": ["a", "b"]}, False),
    ({"field": "conditions", "not_contains": "c"}, {"conditions": ["a"]}, True),
    ({"field": "conditions", "not_contains": "c"}, {"conditions": []}, True),
    ({"field": "conditions", "not_contains": "c"}, {}, False),  # not recorded is not "none"
    ({"field": "conditions", "contains_any": ["b", "c"]}, {"conditions": ["c"]}, True),
    ({"field": "conditions", "contains_any": ["b", "c"]}, {"conditions": ["a"]}, False),
    ({"field": "conditions", "contains_none": ["b", "c"]}, {"conditions": ["a"]}, True),
    ({"field": "conditions", "contains_none": ["b", "c"]}, {}, False),
    ({"known": "pregnant"}, {"pregnant": False}, True),
    ({"known": "pregnant"}, {}, False),
    ({"unknown": "pregnant"}, {}, True),
    ({"unknown": "conditions"}, {"conditions": []}, False),
    ({"not": {"field": "pregnant", "equals": True}}, {"pregnant": False}, True),
    ({"not": {"field": "pregnant", "equals": True}}, {}, False),  # not(unknown) stays unknown
    ({"not": {"unknown": "pregnant"}}, {"pregnant": True}, True),
    ({"all": [{"field": "sex", "equals": "female"}, {"field": "pregnant", "equals": True}]}, {}, False),
    ({"any": [{"field": "sex", "equals": "female"}, {"field": "pregnant", "equals": True}]}, {}, True),
    ({"any": [{"field": "sex", "equals": "male"}, {"field": "pregnant", "equals": True}]}, {}, False),
    ({"not": {"all": [{"field": "sex", "equals": "male"}, {"field": "pregnant", "equals": True}]}}, {}, True),
    ({"not": {"any": [{"field": "sex", "equals": "male"}, {"field": "pregnant", "equals": True}]}}, {}, False),
    ({"not": {"not": {"field": "months", "at_least": 6}}}, {"months": 6}, True),
]


@pytest.mark.parametrize(("when", "extra", "fires"), CASES)
def test_both_evaluators_follow_the_documented_semantics(
    when: dict[str, Any], extra: dict[str, Any], fires: bool
) -> None:
    rs = ruleset([rule("r", when)])
    engine = Engine(rs)
    try:
        profile = engine.check({**BASE, **extra})
        assert engine.fired(profile) == (["r"] if fires else [])
        assert reference.fired_rules(rs, profile) == (["r"] if fires else [])
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", "30"),
        ("age", "abc"),
        ("age", 30.5),
        ("age", True),
        ("pregnant", "true"),
        ("pregnant", 1),
        ("sex", "MALE"),
        ("conditions", "a"),
        ("conditions", ["a", "a"]),
        ("conditions", ["d"]),
        ("stage", 2),
    ],
)
def test_profiles_are_never_coerced(field: str, value: Any) -> None:
    engine = Engine(ruleset([rule("r", {"field": "age", "at_least": 18})]))
    try:
        with pytest.raises(InvalidProfile) as info:
            engine.check({**BASE, field: value})
        [problem] = info.value.errors
        assert problem.field == field
        assert "expected" in problem.message
    finally:
        engine.close()


def test_unknown_field_and_missing_required_field_are_named() -> None:
    engine = Engine(ruleset([rule("r", {"field": "age", "at_least": 18})]))
    try:
        with pytest.raises(InvalidProfile) as info:
            engine.check({"sex": "male", "pregnnt": True})
        messages = {p.field: p.message for p in info.value.errors}
        assert messages["pregnnt"] == "unknown field `pregnnt` (did you mean `pregnant`?)"
        assert messages["age"] == "`age` is required: a whole number from 0 to 120 (years)"
    finally:
        engine.close()


def decide(rules: list[dict[str, Any]], profile: dict[str, Any]) -> dict[str, Any]:
    engine = Engine(ruleset(rules))
    try:
        return to_json(engine.evaluate(profile))
    finally:
        engine.close()


def test_exclusion_beats_recommendation_and_reasons_are_kept() -> None:
    rules = [
        rule("rec", {"field": "age", "at_least": 18}),
        {
            "id": "exc",
            "title": "exc",
            "when": {"field": "pregnant", "equals": True},
            "then": [{"exclude": ["x", "y"], "reason": "not in pregnancy"}],
        },
    ]
    d = decide(rules, {**BASE, "pregnant": True})
    assert d["candidates"] == []
    reason = {"rule": "exc", "text": "not in pregnancy", "facts": ["Pregnant: yes"]}
    assert d["excluded"][0] == {"option": "x", "label": "X", "reasons": [reason]}
    assert d["fired_rules"] == ["rec", "exc"]


def test_strongest_strength_wins_and_order_is_strength_then_catalogue() -> None:
    rules = [
        rule("weak-x", {"field": "age", "at_least": 18}, "x", "weak"),
        rule("strong-x", {"field": "sex", "equals": "female"}, "x", "strong"),
        rule("strong-z", {"field": "sex", "equals": "female"}, "z", "strong"),
        rule("weak-y", {"field": "sex", "equals": "female"}, "y", "weak"),
    ]
    d = decide(rules, BASE)
    assert [(c["option"], c["strength"]) for c in d["candidates"]] == [("x", "strong"), ("z", "strong"), ("y", "weak")]
    assert d["candidates"][0]["rationale"] == ["weak-x", "strong-x"]
    assert d["candidates"][0]["rules"] == ["weak-x", "strong-x"]


def test_caveats_attach_to_candidates_and_warnings_name_unknown_inputs() -> None:
    rules = [
        rule("rec", {"field": "age", "at_least": 18}),
        {
            "id": "cav",
            "title": "Caveat",
            "when": {"field": "age", "at_least": 30},
            "then": [{"caveat": ["x", "y"], "text": "watch"}, {"warn": "general warning"}],
        },
        {
            "id": "preg",
            "title": "Pregnancy exclusion",
            "when": {"field": "pregnant", "equals": True},
            "then": [{"exclude": "x", "reason": "no"}],
        },
    ]
    d = decide(rules, BASE)
    assert [c["option"] for c in d["candidates"]] == ["x"]
    assert d["candidates"][0]["caveats"] == ["standing caveat", "watch"]
    kinds = [(w["kind"], w.get("rule"), w.get("fields")) for w in d["warnings"]]
    assert ("rule", "cav", None) in kinds
    assert ("unknown_inputs", None, ["pregnant"]) in kinds
    assert kinds.index(("rule", "cav", None)) < kinds.index(("unknown_inputs", None, ["pregnant"]))
    prompt = next(w for w in d["warnings"] if w["kind"] == "unknown_inputs")
    assert prompt["options"] == ["x"]
    assert prompt["text"].startswith("Record pregnant: could rule out X")
    assert d["excluded"] == []


def test_explanation_shows_each_condition_with_the_patient_value() -> None:
    rules = [rule("r", {"all": [{"field": "age", "at_least": 18}, {"field": "pregnant", "equals": False}]})]
    engine = Engine(ruleset(rules))
    try:
        d = to_json(engine.evaluate(BASE, explain=True))
    finally:
        engine.close()
    [r] = d["explanation"]["rules"]
    assert r["status"] == "undecided"
    age, preg = r["condition"]["items"]
    assert (age["actual"], age["result"]) == (40, "true")
    assert (preg["known"], preg["result"]) == (False, "unknown")
    assert r["when"] == "Age is at least 18 years and Pregnant is no"
    assert "pregnant" in d["explanation"]["unknown_inputs"]


def test_partial_decision_keeps_what_holds_for_every_completion() -> None:
    rules = [
        rule("adult", {"field": "age", "at_least": 18}),
        rule("women-y", {"field": "sex", "equals": "female"}, "y"),
        {
            "id": "preg",
            "title": "p",
            "when": {"field": "pregnant", "equals": True},
            "then": [{"exclude": ["x", "y"], "reason": "pregnancy"}],
        },
    ]
    engine = Engine(ruleset(rules))
    try:
        d = to_json(engine.decide_partial(engine.check({"pregnant": True}, partial=True)))
        assert [e["option"] for e in d["excluded"]] == ["x", "y"]
        assert d["candidates"] == []
        assert d["partial"]["missing"] == ["sex", "age"]
        d = to_json(engine.decide_partial(engine.check({"sex": "female", "pregnant": False}, partial=True)))
        assert [c["option"] for c in d["candidates"]] == ["y"]
        assert d["partial"]["possible_candidates"] == ["x"]
        # Optional facts not recorded are still reported, as in a complete decision.
        d = to_json(engine.decide_partial(engine.check({"sex": "female"}, partial=True)))
        pending = [(w["fields"], w["options"]) for w in d["warnings"] if w["kind"] == "unknown_inputs"]
        assert pending == [(["pregnant"], ["x", "y"])]  # x is a candidate in the adult completions
    finally:
        engine.close()
