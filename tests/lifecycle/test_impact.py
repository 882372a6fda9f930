"""`rulesets impact NEW`: the logged decisions re-evaluated with a candidate, grouped changes, other vocabularies."""

from __future__ import annotations

import json
import random
from pathlib import Path

from flask import Flask

from service.ruleset import load_file, space

from .conftest import RULESET_ID, example, write

PROFILES = [
    {"age": 30, "diagnosis": "confirmed", "pregnant": False},  # topical + oral
    {"age": 19, "diagnosis": "confirmed", "pregnant": False},  # topical + oral; under 21 in the candidate
    {"age": 40, "diagnosis": "confirmed", "pregnant": False, "conditions": ["heart_failure"]},
    {"age": 30, "diagnosis": "uncertain"},
    {"age": 50, "diagnosis": "confirmed", "pregnant": False, "conditions": ["scalp_infection"]},
]


def candidate(text: str) -> str:
    """Adults from 21; `scalp_infection` no longer a value (so profiles with it are another vocabulary)."""
    text = text.replace("- {field: age, at_least: 18}", "- {field: age, at_least: 21}")
    text = text.replace("- {field: age, below: 18}", "- {field: age, below: 21}")
    return text.replace("      - {code: scalp_infection, label: Active scalp infection}\n", "")


def test_impact_over_real_decisions(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    ids: dict[int, list[str]] = {}
    for i, profile in enumerate(PROFILES):
        for _ in range(3 if i == 1 else 1):
            resp = client.post("/v1/evaluations", json={"ruleset": RULESET_ID, "profile": profile})
            assert resp.status_code == 200, resp.json
            ids.setdefault(i, []).append(resp.json["decision_id"])
    path = write(tmp_path / "candidate", example("0.2.0", candidate))
    result = app.test_cli_runner().invoke(args=["rulesets", "impact", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["decisions"] == 7 and report["distinct_profiles"] == 5
    changes = {c["change"]: c for c in report["changes"]}
    assert changes["Topical treatment no longer a candidate"]["decisions"] == 3
    assert changes["Oral treatment no longer a candidate"]["decisions"] == 3
    assert changes["Diagnosis review newly a referral"]["decisions"] == 3
    assert sorted(e["decision_id"] for e in changes["Oral treatment no longer a candidate"]["examples"]) == sorted(
        ids[1]
    )
    assert report["changed_decisions"] == 3 and report["unchanged_decisions"] == 3
    [other] = report["other_vocabulary"]
    assert other["decisions"] == 1 and other["examples"][0]["decision_id"] == ids[4][0]
    assert "scalp_infection" in other["change"]

    markdown = app.test_cli_runner().invoke(args=["rulesets", "impact", str(path), "--limit", "4"])
    assert markdown.exit_code == 0, markdown.output
    assert "4 logged decision(s)" in markdown.output
    assert "read 4 decision(s)" in markdown.output  # progress (stderr, mixed in by the runner)


def test_impact_of_the_serving_revision_changes_nothing(app: Flask, ruleset_dir: Path) -> None:
    """The analysis's fast path (fields checked one by one, option ids without the whole answer) agrees with
    the answers the service gave: the revision that made the decisions, as candidate, changes none."""
    rs = load_file(ruleset_dir / "minimal.yaml")
    rng = random.Random(14)
    client = app.test_client()
    for _ in range(60):
        profile = json.loads(json.dumps(space.random_profile(rs, rng), default=list))
        resp = client.post("/v1/evaluations", json={"ruleset": RULESET_ID, "profile": profile})
        assert resp.status_code == 200, resp.json
    result = app.test_cli_runner().invoke(args=["rulesets", "impact", str(ruleset_dir / "minimal.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["decisions"] == 60 and report["distinct_profiles"] > 20
    assert report["changed_decisions"] == 0 and report["unchanged_decisions"] == 60
    assert report["changes"] == [] and report["other_vocabulary"] == []
