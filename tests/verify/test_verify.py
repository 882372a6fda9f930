"""Verification: proofs, counterexamples, dead rules, gaps, coverage, and the activation gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import create_app
from service.engine import Engine
from service.engine import durable as durable_module
from service.ruleset import load_text
from service.ruleset.errors import RulesetError
from service.verify import crosscheck, verify
from tests.engine.vocab import rule, ruleset

UNSAFE = [
    rule("adults", {"field": "age", "at_least": 18}),
    # Forgot breastfeeding and unknown pregnancy: only a recorded pregnancy excludes x.
    {
        "id": "preg",
        "title": "p",
        "when": {"field": "pregnant", "equals": True},
        "then": [{"exclude": "x", "reason": "pregnancy"}],
    },
]
SAFE_INVARIANT = {
    "id": "no-x-unless-not-pregnant",
    "title": "x only when pregnancy is recorded as no",
    "when": {"any": [{"field": "pregnant", "equals": True}, {"unknown": "pregnant"}]},
    "never_candidate": ["x"],
}


def test_a_proven_invariant() -> None:
    rs = ruleset(
        UNSAFE, [{"id": "inv", "title": "t", "when": {"field": "pregnant", "equals": True}, "never_candidate": ["x"]}]
    )
    report = verify(rs)
    [inv] = report.invariants
    assert inv.status == "proven"
    assert inv.method.startswith("SMT (z3)")
    assert "enumerating all" in inv.method  # the space is small enough to be enumerated as well


def test_an_unsafe_ruleset_is_refuted_with_a_replayed_counterexample() -> None:
    rs = ruleset(UNSAFE, [SAFE_INVARIANT])
    report = verify(rs)
    [inv] = report.invariants
    assert inv.status == "refuted"
    cx = inv.counterexample
    assert cx is not None and cx["age"] >= 18 and "pregnant" not in cx  # pregnancy not recorded
    assert "candidates: x (strong)" in inv.detail
    assert not report.ok


def test_dead_rules_unreachable_options_and_gaps_are_reported() -> None:
    rules = [
        rule("adults", {"field": "age", "at_least": 18}),
        rule("impossible", {"all": [{"field": "age", "below": 10}, {"field": "age", "above": 20}]}, "y"),
    ]
    report = verify(ruleset(rules))
    assert report.dead_rules == ["impossible"]
    assert set(report.unreachable_options) == {"y", "z", "refer"}
    assert report.gaps and all(g["age"] < 18 for g in report.gaps)
    assert not report.ok


def test_coverage_counts_rules_fired_by_tests(example_text: str) -> None:
    report = verify(load_text(example_text))
    assert report.ok
    assert report.coverage == 100.0
    assert report.uncovered_rules == []


def test_a_broken_durable_compiler_is_caught_by_the_crosscheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: if `not` were compiled without pushing it down, the cross-check must see it."""
    rs = ruleset([rule("r", {"not": {"field": "pregnant", "equals": True}})])
    monkeypatch.setattr(durable_module, "negate", lambda cond: cond)
    engine = Engine(rs)
    try:
        _, disagreements = crosscheck(rs, engine)
    finally:
        engine.close()
    assert disagreements, "the cross-check did not notice a wrong compilation"
    assert disagreements[0]["durable_rules"] != disagreements[0]["reference"]


# ---- command line --------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path, example_text: str):
    folder = tmp_path / "rulesets"
    folder.mkdir()
    (folder / "example.yaml").write_text(example_text, encoding="utf-8")
    return create_app({"RULESETS_DIR": str(folder)})


def test_check_passes_on_a_good_file(app) -> None:
    result = app.test_cli_runner().invoke(args=["rulesets", "check"])
    assert result.exit_code == 0, result.output
    assert "PASS  format-example 0.1.0" in result.output
    assert "PROVEN    no-oral-in-pregnancy" in result.output
    assert "rule coverage: 100% (4/4)" in result.output


def test_check_fails_on_a_broken_file_naming_file_line_and_rule(app, tmp_path: Path, example_text: str) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(example_text.replace("{field: age, below: 18}", "{field: agee, below: 18}"), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["rulesets", "check", str(bad)])
    assert result.exit_code == 1
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "agee" in t)
    assert f"{bad}:{line}: rule `uncertain`: unknown field `agee` (did you mean `age`?)" in result.output


def test_check_prints_the_counterexample_of_an_unsafe_ruleset(app, tmp_path: Path, example_text: str) -> None:
    unsafe = example_text.replace(
        "when: {any: [{field: pregnant, equals: true}, {unknown: pregnant}]}",
        "when: {field: pregnant, equals: false}",  # wrong: excludes oral when NOT pregnant
    )
    path = tmp_path / "unsafe.yaml"
    path.write_text(
        unsafe.replace(
            "  - name: pregnancy not recorded",
            "  - name: unused\n    profile: {age: 1, "
            "diagnosis: uncertain}\n    expect: {}\n  - name: pregnancy not recorded",
        ),
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["rulesets", "check", str(path)])
    assert result.exit_code == 1
    assert "REFUTED   no-oral-in-pregnancy" in result.output
    cx_line = next(line for line in result.output.splitlines() if "counterexample:" in line)
    cx = json.loads(cx_line.split("counterexample:", 1)[1])
    assert cx["pregnant"] is True and cx["diagnosis"] == "confirmed" and cx["age"] >= 18
    assert "candidates: topical (recommended), oral (consider)" in result.output


def test_evaluate_and_render(app, tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"age": 30, "diagnosis": "confirmed", "pregnant": False}))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rulesets", "evaluate", "format-example", "--profile", str(profile), "--explain"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert [c["option"] for c in decision["candidates"]] == ["topical", "oral"]
    assert decision["explanation"]["rules"][0]["status"] == "fired"
    profile.write_text(json.dumps({"age": "30", "diagnosis": "confirmed"}))
    result = runner.invoke(args=["rulesets", "evaluate", "format-example", "--profile", str(profile)])
    assert result.exit_code == 2
    assert "`age` must be a whole number, not '30'" in result.output
    result = runner.invoke(args=["rulesets", "render", "format-example"])
    assert result.exit_code == 0
    assert "### heart: Heart failure" in result.output
    assert "**When** Conditions includes Heart failure (`heart_failure`)," in result.output
    assert "**no-oral-in-pregnancy** When pregnant" in result.output and "**proven**" in result.output


# ---- registry: a failed reload keeps the last good revision -----------------------------------


def test_reload_keeps_the_last_good_revision(app, example_text: str) -> None:
    registry = app.extensions["registry"]
    good = registry.get("format-example").ruleset.sha256
    path = Path(app.config["RULESETS_DIR"]) / "example.yaml"
    path.write_text(example_text.replace("{field: age, below: 18}", "{field: age, below: eighteen}"), encoding="utf-8")
    failures = registry.reload()
    assert registry.get("format-example").ruleset.sha256 == good
    [failure] = failures.values()
    assert failure.kept_sha256 == good
    assert "compare it with a whole number" in failure.problems[0]
    # A file that loads but fails verification is kept out too.
    path.write_text(example_text.replace("candidates: [topical, oral]", "candidates: [topical]"), encoding="utf-8")
    failures = registry.reload()
    assert registry.get("format-example").ruleset.sha256 == good
    assert "test 'adult confirmed, not pregnant' failed" in next(iter(failures.values())).problems[0]
    # A good new revision replaces the old one, which stays available for replay.
    path.write_text(example_text.replace('version: "0.1.0"', 'version: "0.2.0"'), encoding="utf-8")
    assert registry.reload() == {}
    assert registry.get("format-example").ruleset.version == "0.2.0"
    assert good in registry.revisions


def test_a_cap_on_strength_is_proven_or_refuted_with_the_strength_that_breaks_it() -> None:
    weak_for_pregnancy = [
        rule("adults", {"field": "age", "at_least": 18}, strength="weak"),
        rule("stage", {"field": "stage", "at_least": "severe"}, strength="strong"),
        {
            "id": "preg",
            "title": "p",
            "when": {"field": "pregnant", "equals": True},
            "then": [{"exclude": "x", "reason": "pregnancy"}],
        },
    ]
    cap = {"id": "cap", "title": "x at most weak", "at_most": {"strength": "weak", "options": ["x"]}}
    [refuted] = verify(ruleset(weak_for_pregnancy, [cap])).invariants
    assert refuted.status == "refuted"
    assert refuted.counterexample is not None and refuted.counterexample["stage"] == "severe"
    assert "candidates: x (strong)" in refuted.detail
    # Where the strong rule is excluded, the cap holds for every profile.
    scoped = {**cap, "when": {"field": "pregnant", "equals": True}}
    [proven] = verify(ruleset(weak_for_pregnancy, [scoped])).invariants
    assert proven.status == "proven"


def test_a_cap_names_a_known_strength() -> None:
    bad = {"id": "cap", "title": "t", "at_most": {"strength": "strnog", "options": ["x"]}}
    with pytest.raises(RulesetError) as err:
        ruleset([rule("adults", {"field": "age", "at_least": 18})], [bad])
    assert "`strnog` is not a strength (did you mean `strong`?)" in str(err.value)
