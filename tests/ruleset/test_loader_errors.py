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


def test_control_characters_are_a_syntax_error_not_a_crash(example_text: str) -> None:
    """YAML's reader refuses them while the loader is built (found by the OpenAPI fuzz test: a 500 on publish)."""
    text = example_text.replace("title: Heart failure", "title: Heart\x13failure")
    [msg] = problems(text)
    assert "YAML syntax error" in msg and "#x0013" in msg


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


# ---- text layers (issue 11) -----------------------------------------------------------------------


def test_short_text_refuses_tags_sections_ids_length_and_second_sentences(example_text: str) -> None:
    text = (
        example_text.replace("reason: Heart failure.", "reason: 'Heart failure [V: label] (§8).'")
        .replace("rationale: First-line topical option.", "rationale: First-line (H-5). Also cheap.")
        .replace("summary: An oral treatment taken daily.", "summary: " + "An oral treatment " * 10)
    )
    msgs = problems(text)
    joined = "\n".join(msgs)
    heart = line_of(text, "reason: 'Heart failure [V")
    assert f"bad.yaml:{heart}: rule `heart`: `reason` of a `exclude` action carries the tag `[V: label]`" in joined
    assert f"bad.yaml:{heart}: rule `heart`: `reason` of a `exclude` action cites a section (`§`)" in joined
    first = line_of(text, "rationale: First-line (H-5)")
    assert (
        f"bad.yaml:{first}: rule `adult-confirmed`: `rationale` of a `recommend` action names the exclusion id `H-5`"
        in joined
    )
    assert (
        f"bad.yaml:{first}: rule `adult-confirmed`: `rationale` of a `recommend` action has more than one sentence"
        in joined
    )
    summary = line_of(text, "summary: An oral treatment An oral")
    assert f"bad.yaml:{summary}: `summary` of option `oral` is 179 characters; a short text has at most 160" in joined


def test_short_text_must_not_name_a_rule_id(example_text: str) -> None:
    text = example_text.replace("  - id: heart\n", "  - id: H-9\n").replace(
        "text: Monitor for oedema.", "text: Monitor for oedema (see H-9)."
    )
    msgs = problems(text)
    assert any("names the exclusion id `H-9`" in m and f":{line_of(text, 'see H-9')}:" in m for m in msgs), msgs


def test_layers_detail_and_evidence_load_and_have_limits(example_text: str) -> None:
    good = example_text.replace(
        "        reason: Heart failure.\n",
        "        reason: Heart failure.\n        detail: Fluid retention may worsen it.\n"
        "        evidence: 'Label contraindication [V: label] (§8).'\n",
    )
    rs = load_text(good, "ok.yaml")
    action = rs.rule("heart").then[0]
    assert (action.detail, action.evidence) == (
        "Fluid retention may worsen it.",
        "Label contraindication [V: label] (§8).",
    )
    bad = good.replace("detail: Fluid retention may worsen it.", "detail: Fluid retention [U] " + "x" * 600)
    msgs = problems(bad)
    line = line_of(bad, "detail: Fluid retention [U]")
    assert any(f"bad.yaml:{line}: rule `heart`: `detail` of a `exclude` action is 620 characters" in m for m in msgs)
    assert any("`detail` of a `exclude` action carries the tag `[U]`" in m for m in msgs)
    long_evidence = good.replace("evidence: 'Label contraindication", "evidence: '" + "y" * 1500)
    assert any("a evidence text has at most 1500" in m for m in problems(long_evidence))


def test_caveats_with_when_patient_texts_and_applies_when(example_text: str) -> None:
    text = (
        example_text.replace(
            "    regimen: Twice daily.\n",
            "    regimen: Twice daily.\n"
            "    caveats:\n"
            "      - Plain caveat.\n"
            "      - {text: Not in pregnancy., when: {field: pregnant, equals: true}, evidence: 'Label [V].'}\n"
            "    patient: {what: A lotion., tell: Tell us about a rash.}\n",
        )
        .replace(
            "        text: Monitor for oedema.\n",
            "        text: Monitor for oedema.\n        when: {field: age, at_least: 60}\n",
        )
        .replace(
            "    help: Leave unset if not recorded.\n",
            "    help: Leave unset if not recorded.\n    applies_when: {field: age, below: 60}\n",
        )
    )
    rs = load_text(text, "ok.yaml")
    topical = rs.options["topical"]
    assert topical.caveats == ("Plain caveat.", "Not in pregnancy.")
    assert topical.caveat_items[1].when is not None and topical.caveat_items[1].evidence == "Label [V]."
    assert (topical.patient.what, topical.patient.tell) == ("A lotion.", "Tell us about a rash.")
    assert rs.rule("heart").then[1].when is not None
    assert rs.inputs["pregnant"].applies_when is not None


def test_caveat_when_and_applies_when_are_checked_like_rule_conditions(example_text: str) -> None:
    text = (
        example_text.replace(
            "    regimen: Twice daily.\n",
            "    regimen: Twice daily.\n"
            "    caveats:\n"
            "      - {text: Not in pregnancy., when: {field: pregnat, equals: true}}\n"
            "      - Tagged caveat [S].\n"
            "    patient: {what: A lotion (§3)., side_effects: none}\n",
        )
        .replace(
            "        text: Monitor for oedema.\n",
            "        text: Monitor for oedema.\n        when: {field: age, at_least: old}\n",
        )
        .replace(
            "    help: Leave unset if not recorded.\n",
            "    help: Leave unset if not recorded.\n    applies_when: {field: pregnant, equals: true}\n",
        )
    )
    msgs = problems(text)
    joined = "\n".join(msgs)
    assert f"bad.yaml:{line_of(text, 'pregnat')}: unknown field `pregnat` (did you mean `pregnant`?)" in joined
    assert f"bad.yaml:{line_of(text, 'Tagged caveat')}: caveat 2 of option `topical` carries the tag `[S]`" in joined
    patient = line_of(text, "patient: {what")
    assert f"bad.yaml:{patient}: unknown key `side_effects` in `patient` of option `topical`" in joined
    assert f"bad.yaml:{patient}: `what` of `patient` of option `topical` cites a section" in joined
    assert f"bad.yaml:{line_of(text, 'at_least: old')}: rule `heart`: `age` is an integer field" in joined
    applies = line_of(text, "applies_when: {field: pregnant")
    assert f"bad.yaml:{applies}: `applies_when` of input `pregnant` names `pregnant` itself" in joined
