"""The one profile validator: built once per revision, its problems carry what every channel shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from service import create_app
from service.engine import Engine
from service.ruleset import Ruleset, load_text
from service.ruleset.validator import ProblemCode, ProfileValidator, profile_validator

MINIMAL = Path(__file__).resolve().parents[2] / "rulesets" / "examples" / "minimal.yaml"


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_text(MINIMAL.read_text(encoding="utf-8"), "minimal.yaml")


def test_one_validator_per_revision_shared_with_the_engine(ruleset: Ruleset) -> None:
    validator = profile_validator(ruleset)
    assert profile_validator(ruleset) is validator
    engine = Engine(ruleset)
    try:
        assert engine.validator is validator
    finally:
        engine.close()
    assert list(validator.schema_class._declared_fields) == list(ruleset.inputs)


def test_problems_carry_field_pointer_allowed_range_and_suggestion(ruleset: Ruleset) -> None:
    data = {"agee": 1, "age": 130, "diagnosis": "confirmd", "pregnant": "yes", "conditions": ["heart_failure", "gout"]}
    check = profile_validator(ruleset).check(data)
    assert not check.ok and check.profile == {}
    by_code = {p.code: p for p in check.problems}
    assert [p.code for p in check.problems] == [
        ProblemCode.UNKNOWN_FIELD,
        ProblemCode.OUT_OF_RANGE,
        ProblemCode.NOT_ALLOWED,
        ProblemCode.WRONG_TYPE,
        ProblemCode.ITEM_NOT_ALLOWED,
    ]
    unknown = by_code[ProblemCode.UNKNOWN_FIELD]
    assert (unknown.field, unknown.pointer, unknown.suggestion) == ("agee", "/agee", "age")
    assert unknown.allowed == tuple(ruleset.inputs)
    age = by_code[ProblemCode.OUT_OF_RANGE]
    assert (age.value, age.minimum, age.maximum, age.unit) == (130, 0, 120, "years")
    assert age.message == "`age` is 130, outside the allowed range: expected a whole number from 0 to 120 (years)"
    diagnosis = by_code[ProblemCode.NOT_ALLOWED]
    assert (diagnosis.suggestion, diagnosis.allowed) == ("confirmed", ("confirmed", "uncertain"))
    assert (
        by_code[ProblemCode.WRONG_TYPE].message == "`pregnant` must be true or false, not 'yes': expected true or false"
    )
    item = by_code[ProblemCode.ITEM_NOT_ALLOWED]
    assert (item.field, item.path, item.pointer, item.value) == (
        "conditions",
        ("conditions", 1),
        "/conditions/1",
        "gout",
    )


def test_a_valid_profile_is_typed_and_partial_allows_missing_required_facts(ruleset: Ruleset) -> None:
    validator = ProfileValidator(ruleset)
    check = validator.check(
        {"age": 30, "diagnosis": "confirmed", "pregnant": None, "conditions": ["scalp_infection", "heart_failure"]}
    )
    assert check.ok
    assert check.profile == {"age": 30, "diagnosis": "confirmed", "conditions": ("heart_failure", "scalp_infection")}
    assert [p.code for p in validator.check({"age": None}).problems] == [ProblemCode.REQUIRED] * 2
    partial = validator.check({"age": None, "pregnant": True}, partial=True)
    assert partial.ok and partial.profile == {"pregnant": True} and partial.partial


def test_an_api_request_is_validated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "rulesets"
    folder.mkdir()
    (folder / "minimal.yaml").write_text(
        MINIMAL.read_text(encoding="utf-8").replace("status: draft", "status: production"), encoding="utf-8"
    )
    app: Flask = create_app({"RULESETS_DIR": str(folder), "TESTING": True})
    calls: list[object] = []
    real = ProfileValidator.check

    def counted(self: ProfileValidator, data: object, partial: bool = False, **kwargs: int) -> object:
        calls.append(data)
        return real(self, data, partial, **kwargs)

    monkeypatch.setattr(ProfileValidator, "check", counted)
    client = app.test_client()
    profile = {"age": 30, "diagnosis": "confirmed", "pregnant": False}
    assert client.post("/v1/evaluations", json={"profile": profile}).status_code == 200
    assert len(calls) == 1
    batch = client.post("/v1/evaluations:batch", json={"profiles": [profile, {**profile, "age": 40}]})
    assert batch.status_code == 200 and len(calls) == 3


def test_an_integral_number_is_an_integer_as_in_json_schema(ruleset: Ruleset) -> None:
    """The published schema says `type: integer`, for which JSON Schema counts 60.0 as the integer 60."""
    validator = ProfileValidator(ruleset)
    check = validator.check({"age": 60.0, "diagnosis": "confirmed"})
    assert check.ok
    assert check.profile == {"age": 60, "diagnosis": "confirmed"} and type(check.profile["age"]) is int
    assert [p.code for p in validator.check({"age": 130.0, "diagnosis": "confirmed"}).problems] == [
        ProblemCode.OUT_OF_RANGE
    ]
    for value in (60.5, float("inf"), float("nan"), True):
        (problem,) = validator.check({"age": value, "diagnosis": "confirmed"}).problems
        assert (problem.field, problem.code) == ("age", ProblemCode.WRONG_TYPE)
        assert problem.message.startswith("`age` must be a whole number, not ")
