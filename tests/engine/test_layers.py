"""Issue 11: facts behind each rule, caveats that apply to this patient, one prompt per missing fact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from service.engine import Engine
from service.engine.answer import to_json
from service.engine.views import compact
from service.ruleset import load_file, load_text
from tests.conftest import EXAMPLE

DEFAULT = "rulesets/androgenetic-alopecia.yaml"
MAN = {
    "sex": "male",
    "age": 40,
    "diagnosis": "androgenetic_alopecia",
    "pattern": "norwood-III",
    "prior_finasteride": "not_tried",
    "transplant_history": "none",
}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    e = Engine(load_file(DEFAULT))
    yield e
    e.close()


def decide(engine: Engine, **profile: Any) -> dict[str, Any]:
    return to_json(engine.evaluate({**MAN, **profile}))


def prompted(d: dict[str, Any]) -> list[str]:
    return [w["fields"][0] for w in d["warnings"] if w["kind"] == "unknown_inputs"]


def test_heart_failure_is_the_fact_behind_the_oral_minoxidil_exclusion(engine: Engine) -> None:
    d = decide(engine, conditions=["heart_failure"])
    [minoxidil] = [e for e in d["excluded"] if e["option"] == "oral_minoxidil"]
    facts = [f for r in minoxidil["reasons"] for f in r["facts"]]
    assert "Relevant conditions include Heart failure" in facts
    assert "until_recorded" not in minoxidil  # rests on recorded facts only


def test_unrecorded_facts_are_named_behind_an_exclusion_and_prompted_once(engine: Engine) -> None:
    d = decide(engine, topical_minoxidil="ineffective")
    [minoxidil] = [e for e in d["excluded"] if e["option"] == "oral_minoxidil"]
    assert "conditions" in minoxidil["until_recorded"]
    assert any("Relevant conditions: not recorded" in r["facts"] for r in minoxidil["reasons"])
    fields = prompted(d)
    assert len(fields) == len(set(fields))  # one warning per input, not per rule
    kinds = [w["kind"] for w in d["warnings"]]
    assert kinds == sorted(kinds, key=lambda k: k != "rule")  # rule warnings first
    counts = [len(w["options"]) for w in d["warnings"] if w["kind"] == "unknown_inputs"]
    assert counts == sorted(counts, reverse=True)
    for w in d["warnings"]:
        if w["kind"] == "unknown_inputs":
            assert w["text"].startswith("Record ") and (": could " in w["text"] or ": needed to consider " in w["text"])


def test_a_man_is_never_asked_about_pregnancy_or_breastfeeding(engine: Engine) -> None:
    for extra in ({}, {"conditions": []}, {"prior_finasteride": "non_responder"}):
        d = to_json(engine.evaluate({**MAN, **extra}, explain=True))
        assert not {"pregnant", "breastfeeding", "childbearing_potential", "reliable_contraception"} & set(prompted(d))
        assert "pregnant" not in d["explanation"]["unknown_inputs"]
        assert "breastfeeding" not in d["explanation"]["unknown_inputs"]


def test_a_woman_who_cannot_conceive_is_not_asked_about_conception(engine: Engine) -> None:
    woman = {**MAN, "sex": "female", "pattern": "ludwig-I", "childbearing_potential": False}
    d = to_json(engine.evaluate(woman, explain=True))
    assert not {"trying_to_conceive", "pregnant", "reliable_contraception"} & set(prompted(d))
    assert "trying_to_conceive" not in d["explanation"]["unknown_inputs"]
    assert "breastfeeding" in d["explanation"]["unknown_inputs"]  # lactation does not depend on fertility


SEXED = (
    EXAMPLE.read_text(encoding="utf-8")
    .replace(
        "    regimen: Twice daily.\n",
        "    regimen: Twice daily.\n"
        "    caveats:\n"
        "      - Apply to a dry scalp.\n"
        "      - {text: Not in pregnancy., when: {field: pregnant, equals: true}}\n"
        "      - Apply to a dry scalp.\n",
    )
    .replace("        text: Monitor for oedema.\n", "        text: Apply to a dry scalp.\n")
)


def test_caveats_follow_their_when_and_are_shown_once() -> None:
    engine = Engine(load_text(SEXED, "sexed.yaml"))
    try:
        base = {"age": 40, "diagnosis": "confirmed", "conditions": ["heart_failure"]}
        d = to_json(engine.evaluate({**base, "pregnant": False}))
        [topical] = [c for c in d["candidates"] if c["option"] == "topical"]
        assert topical["caveats"] == ["Apply to a dry scalp."]  # standing twice and from rule `heart`: once
        assert [n["text"] for n in topical["caveat_notes"]] == ["Apply to a dry scalp."]
        unknown = to_json(engine.evaluate(base))  # pregnancy not recorded: a `when` that is unknown hides it
        assert "Not in pregnancy." not in next(c for c in unknown["candidates"] if c["option"] == "topical")["caveats"]
    finally:
        engine.close()


def test_default_view_of_a_typical_answer_is_at_most_12_kb(engine: Engine) -> None:
    decision = engine.evaluate({**MAN, "conditions": ["heart_failure"]})
    body = json.dumps(to_json(compact(decision)), separators=(",", ":"))  # as the JSON API sends it
    assert len(body.encode()) <= 12 * 1024, len(body)
    full = json.dumps(to_json(decision), separators=(",", ":"))
    assert len(full) > len(body)
