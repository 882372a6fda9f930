"""Each kind of bad ruleset file is refused with a message naming file, line, rule and a suggestion."""

from __future__ import annotations

import pytest

from service.ruleset import RulesetError, load_file, load_text
from tests.conftest import line_of


def problems(text: str) -> list[str]:
    with pytest.raises(RulesetError) as info:
        load_text(text, "bad.yaml")
    return [str(p) for p in info.value.problems]


def test_the_example_loads(example_text: str) -> None:
    rs = load_text(example_text, "minimal.yaml")
    assert rs.id == "format-example"
    assert [r.id for r in rs.rules] == ["adult-confirmed", "pregnancy", "heart", "uncertain"]
    assert len(rs.sha256) == 64


def test_unknown_field_names_file_line_rule_and_suggestion(example_text: str) -> None:
    text = example_text.replace("{field: diagnosis, equals: confirmed}", "{field: diagnosys, equals: confirmed}")
    [msg] = problems(text)
    line = line_of(text, "diagnosys")
    assert msg == (f"bad.yaml:{line}: rule `adult-confirmed`: unknown field `diagnosys` (did you mean `diagnosis`?)")


def test_every_problem_of_a_file_is_reported_at_once(example_text: str) -> None:
    text = (
        example_text.replace("recommend: topical\n", "recommend: topicl\n")
        .replace("{field: age, at_least: 18}", "{field: age, at_least: eighteen}")
        .replace("kind: referral", "kind: referal")
        .replace("status: draft", "status: drafted")
    )
    msgs = problems(text)
    assert len(msgs) == 4, msgs
    joined = "\n".join(msgs)
    assert "`status` is 'drafted', which is not a valid status (did you mean `draft`?)" in joined
    assert "kind 'referal' of option `review` is not an option kind (did you mean `referral`?)" in joined
    assert "names option `topicl`, which is not in `options` (did you mean `topical`?)" in joined
    assert "`age` is an integer field: compare it with a whole number, not 'eighteen'" in joined


def test_unknown_key_is_an_error_with_suggestion(example_text: str) -> None:
    text = example_text.replace("    title: Heart failure\n", "    title: Heart failure\n    rationale: x\n")
    [msg] = problems(text)
    assert f":{line_of(text, 'rationale: x')}: rule `heart`: unknown key `rationale` in a rule" in msg


def test_missing_audit_field_refuses_the_file(example_text: str) -> None:
    text = example_text.replace("review_due: 2027-11-22\n", "")
    [msg] = problems(text)
    assert "the ruleset is missing the required key `review_due`" in msg


def test_duplicate_rule_id(example_text: str) -> None:
    text = example_text.replace("  - id: heart\n", "  - id: pregnancy\n")
    msg, cascade = problems(text)
    first = line_of(text, "  - id: pregnancy")
    assert f"rule `pregnancy`: duplicate rule id `pregnancy` (first used on line {first})" in msg
    assert "test `heart failure` names rule `heart`, which does not exist" in cascade


def test_duplicate_yaml_key_is_not_silently_overwritten(example_text: str) -> None:
    text = example_text.replace("  oral:\n", "  topical:\n", 1)
    msgs = problems(text)
    assert any("duplicate key `topical`" in m for m in msgs), msgs


def test_value_not_allowed_for_field(example_text: str) -> None:
    text = example_text.replace("{field: diagnosis, equals: uncertain}", "{field: diagnosis, equals: uncertian}")
    [msg] = problems(text)
    assert "rule `uncertain`: `uncertian` is not a value of `diagnosis` (did you mean `uncertain`?)" in msg


def test_type_mismatch_operator_on_wrong_field_type(example_text: str) -> None:
    text = example_text.replace(
        "{field: conditions, contains: heart_failure}", "{field: diagnosis, contains: confirmed}"
    )
    [msg] = problems(text)
    assert "`contains` applies to set fields; `diagnosis` is enum (use equals or in)" in msg


def test_ordered_comparison_on_enum_is_refused(example_text: str) -> None:
    text = example_text.replace("{field: age, below: 18}", "{field: diagnosis, below: uncertain}")
    [msg] = problems(text)
    assert "`below` needs an integer or ordered_enum field; `diagnosis` is enum" in msg


def test_boolean_compared_with_text(example_text: str) -> None:
    text = example_text.replace(
        "{field: pregnant, equals: true}, {unknown", "{field: pregnant, equals: 'yes'}, {unknown"
    )
    [msg] = problems(text)
    assert "`pregnant` is a yes/no field: compare it with true or false, not 'yes'" in msg


def test_undefined_reference(example_text: str) -> None:
    text = example_text.replace(
        "    references: [olsen2002]\n  - id: pregnancy", "    references: [olsen2020]\n  - id: pregnancy"
    )
    [msg] = problems(text)
    assert "rule `adult-confirmed`: rule `adult-confirmed` cites `olsen2020`" in msg
    assert "(did you mean `olsen2002`?)" in msg


def test_undefined_strength(example_text: str) -> None:
    text = example_text.replace("strength: consider", "strength: considered")
    [msg] = problems(text)
    assert "strength 'considered' is not declared in `strengths` (did you mean `consider`?)" in msg


def test_refer_to_a_treatment_is_refused(example_text: str) -> None:
    text = example_text.replace("refer: review", "refer: topical")
    [msg] = problems(text)
    assert "`refer` needs a referral option; `topical` is a treatment" in msg


def test_version_must_be_quoted_semver(example_text: str) -> None:
    text = example_text.replace('version: "0.1.0"', "version: 0.1")
    [msg] = problems(text)
    assert "`version` must be a semantic version like 1.2.0, not 0.1 (write it in quotes" in msg


def test_yaml_syntax_error_names_the_line(example_text: str) -> None:
    text = example_text.replace("title: Heart failure", "title: [Heart failure")
    [msg] = problems(text)
    assert msg.startswith("bad.yaml:") and "YAML syntax error" in msg


def test_unsafe_yaml_tags_are_refused(example_text: str) -> None:
    text = example_text.replace("title: Heart failure", "title: !!python/object/apply:os.system ['true']")
    [msg] = problems(text)
    assert "YAML syntax error" in msg and "python/object/apply" in msg


def test_tests_naming_unknown_option_and_invalid_profile(example_text: str) -> None:
    text = example_text.replace("candidates: [topical, oral]", "candidates: [topical, orall]").replace(
        "profile: {age: 30, diagnosis: uncertain}", "profile: {age: '30', diagnosis: uncertain}"
    )
    msgs = problems(text)
    assert any("expects option `orall`, which is not in `options` (did you mean `oral`?)" in m for m in msgs)
    assert any("test `uncertain diagnosis`: `age` must be a whole number, not '30'" in m for m in msgs)


def test_unknown_on_required_field_is_refused(example_text: str) -> None:
    text = example_text.replace("{unknown: pregnant}", "{unknown: age}")
    [msg] = problems(text)
    assert "`age` is required, so it is always known; `unknown` would be constant" in msg


def test_sibling_tests_file_is_loaded(example_text: str, write_ruleset) -> None:
    head, _, _ = example_text.partition("tests:\n")
    path = write_ruleset(head, "mine.yaml")
    (path.parent / "mine.tests.yaml").write_text(
        "tests:\n  - name: from the sibling file\n    profile: {age: 30, diagnosis: uncertain}\n"
        "    expect: {referrals: [review]}\n",
        encoding="utf-8",
    )
    rs = load_file(path)
    assert [t.name for t in rs.tests] == ["from the sibling file"]
    assert rs.tests_path.endswith("mine.tests.yaml")


def test_a_ruleset_without_tests_is_refused(example_text: str) -> None:
    head, _, _ = example_text.partition("tests:\n")
    [msg] = problems(head)
    assert "the ruleset has no tests" in msg


def test_yaml_aliases_are_refused(example_text: str) -> None:
    text = example_text.replace("    title: Heart failure\n", "    title: &t Heart failure\n    description: *t\n")
    msgs = problems(text)
    assert any("anchors and aliases are not allowed" in m for m in msgs), msgs
