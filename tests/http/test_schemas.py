"""One profile validator per ruleset (service/ruleset/validator.py), seen through every channel's words.

The JSON API words its problems itself; the engine's view (CLI, form, verification) keeps one problem
per field: both must accept and reject exactly the same profiles and blame the same fields. The JSON
Schema published in /openapi.json, generated from the validator's marshmallow schema, must agree too,
so that a client validating against it is never surprised.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from marshmallow import fields

from service import create_app
from service.http import openapi
from service.http.api.schemas import StrictBoolean, profile_schema
from service.http.api.validation import profile_errors
from service.ruleset import Ruleset, validate_profile
from service.ruleset.model import InputField

from .conftest import MINIMAL, RULESET_ID

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def value_for(f: InputField) -> st.SearchStrategy[Any]:
    """Mostly plausible values for the field, often wrong ones: the boundaries are where bugs are."""
    if f.type == "integer":
        assert f.minimum is not None and f.maximum is not None
        plausible = st.one_of(
            st.integers(f.minimum - 3, f.maximum + 3),
            st.sampled_from([float(f.minimum), str(f.minimum), True, False]),
        )
    elif f.type == "boolean":
        plausible = st.sampled_from([True, False, "true", "false", 0, 1, "yes"])
    elif f.type in ("enum", "ordered_enum"):
        plausible = st.one_of(st.sampled_from(f.codes), st.sampled_from([c.upper() for c in f.codes]))
    else:
        plausible = st.one_of(
            st.lists(st.sampled_from(f.codes), max_size=len(f.codes) + 1),
            st.lists(st.one_of(st.sampled_from(f.codes), JUNK), max_size=3),
        )
    return st.one_of(plausible, plausible, plausible, JUNK)


def profiles(rs: Ruleset) -> st.SearchStrategy[Any]:
    known = st.fixed_dictionaries({}, optional={fid: value_for(f) for fid, f in rs.inputs.items()})
    extra = st.dictionaries(st.sampled_from(["agee", "smoker", "", "AGE"]), JUNK, max_size=1)
    with_extra = st.builds(lambda a, b: {**a, **b}, known, extra)
    return st.one_of(known, known, known, with_extra, JUNK)


def _rulesets(tmp: Path) -> list[Ruleset]:
    from service.ruleset import load_file

    text = MINIMAL.read_text(encoding="utf-8").replace("status: draft", "status: production")
    plain = tmp / "plain.yaml"
    plain.write_text(text, encoding="utf-8")
    ordered = tmp / "ordered.yaml"
    ordered.write_text(
        text.replace("id: format-example", "id: ordered-example").replace(
            "  diagnosis:\n    type: enum", "  diagnosis:\n    type: ordered_enum"
        ),
        encoding="utf-8",
    )
    return [load_file(plain), load_file(ordered)]


@pytest.fixture(scope="module")
def rulesets(tmp_path_factory: pytest.TempPathFactory) -> list[Ruleset]:
    loaded = _rulesets(tmp_path_factory.mktemp("schemas"))
    assert loaded[1].inputs["diagnosis"].type == "ordered_enum"
    return loaded


def _top(field: str) -> str:
    """`profile.conditions[1]` -> `conditions`; a key may itself contain `[` or `.`, e.g. `profile.[`."""
    if field == "profile":
        return ""
    return re.sub(r"\[\d+\]$", "", field.removeprefix("profile."))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_schema_and_engine_agree(rulesets: list[Ruleset], data: st.DataObject) -> None:
    for rs in rulesets:
        profile = data.draw(profiles(rs), label=rs.id)
        schema_errors = profile_errors(rs, profile, ["profile"])
        engine = validate_profile(rs, profile)
        assert (not schema_errors) == engine.ok, (profile, schema_errors, engine.errors)
        assert {_top(e["field"]) for e in schema_errors} == {e.field for e in engine.errors}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("published")
    (folder / "minimal.yaml").write_text(
        MINIMAL.read_text(encoding="utf-8").replace("status: draft", "status: production"), encoding="utf-8"
    )
    app = create_app({"RULESETS_DIR": str(folder), "TESTING": True})
    rs = app.extensions["registry"].get(RULESET_ID).ruleset
    return {"ruleset": rs, "schema": openapi.build(app)["components"]["schemas"][f"Profile.{RULESET_ID}"]}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_published_json_schema_agrees(published: dict[str, Any], data: st.DataObject) -> None:
    rs = published["ruleset"]
    profile = data.draw(profiles(rs))  # 30.0 included: an integer for JSON Schema and for the API
    validator = Draft202012Validator(published["schema"])
    assert validator.is_valid(profile) == validate_profile(rs, profile).ok, profile


def test_fields_follow_the_inputs(rulesets: list[Ruleset]) -> None:
    rs = rulesets[0]
    declared = profile_schema(rs)._declared_fields
    assert list(declared) == list(rs.inputs)
    assert isinstance(declared["pregnant"], StrictBoolean)
    assert isinstance(declared["conditions"], fields.List)
    assert declared["age"].required and not declared["pregnant"].required
    assert profile_schema(rs) is profile_schema(rs)  # built once per revision
