"""Replay: the recorded profile re-evaluated with the stored revision and with the current one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask

from service.answering import make_decision
from service.decisions.replay import replay

from .conftest import AUDITOR, PROFILE, raw_sql, unguard


def decide(app: Flask, profile: dict) -> str:
    log = app.extensions["decision_log"]
    return make_decision(app.extensions["registry"], None, profile, channel="api", recorder=log)["decision_id"]


def edit_ruleset(folder: Path, old: str, new: str) -> None:
    path = folder / "minimal.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_replay_with_an_unchanged_ruleset_is_identical_twice(app: Flask) -> None:
    decision_id = decide(app, {**PROFILE, "pregnant": False})
    response = app.test_client().post(f"/v1/evaluations/{decision_id}/replay", headers=AUDITOR)
    assert response.status_code == 200
    report = response.json
    assert report["recorded"]["candidates"] == ["topical", "oral"]
    for which in ("stored_revision", "current_revision"):
        assert report[which]["available"] is True
        assert report[which]["identical"] is True
        assert report[which]["differences"] == []
        assert report[which]["result"]["candidates"] == ["topical", "oral"]


def test_replay_after_a_ruleset_change_shows_what_changed(make_app: Callable[..., Flask], ruleset_dir: Path) -> None:
    before = make_app()
    decision_id = decide(before, {**PROFILE, "age": 17, "pregnant": False})
    old_sha = before.extensions["registry"].get("format-example").ruleset.sha256
    # version 0.2.0 treats 16-year-olds as adults
    edit_ruleset(ruleset_dir, 'version: "0.1.0"', 'version: "0.2.0"')
    edit_ruleset(ruleset_dir, "{field: age, at_least: 18}", "{field: age, at_least: 16}")
    edit_ruleset(ruleset_dir, "{field: age, below: 18}", "{field: age, below: 16}")
    after = make_app()

    report = replay(after.extensions["decision_log"], after.extensions["registry"], decision_id)

    stored, current = report["stored_revision"], report["current_revision"]
    assert stored["ruleset"]["sha256"] == old_sha
    assert stored["identical"] is True
    assert stored["result"] == {"candidates": [], "excluded": [], "referrals": ["review"], "fired_rules": ["uncertain"]}
    assert current["ruleset"]["version"] == "0.2.0"
    assert current["identical"] is False
    assert {d["field"] for d in current["differences"]} == {"candidates", "referrals", "fired_rules"}
    assert current["result"]["candidates"] == ["topical", "oral"]


def test_a_profile_the_current_revision_rejects_is_reported_not_raised(
    make_app: Callable[..., Flask], ruleset_dir: Path
) -> None:
    before = make_app()
    decision_id = decide(before, {**PROFILE, "conditions": ["scalp_infection"]})
    edit_ruleset(ruleset_dir, 'version: "0.1.0"', 'version: "0.3.0"')
    edit_ruleset(ruleset_dir, "      - {code: scalp_infection, label: Active scalp infection}\n", "")
    after = make_app()

    report = replay(after.extensions["decision_log"], after.extensions["registry"], decision_id)

    assert report["stored_revision"]["identical"] is True
    current = report["current_revision"]
    assert current["available"] is False
    assert current["problems"][0]["field"] == "conditions"


def test_replay_when_the_ruleset_is_no_longer_loaded(make_app: Callable[..., Flask], ruleset_dir: Path) -> None:
    before = make_app()
    decision_id = decide(before, PROFILE)
    edit_ruleset(ruleset_dir, "id: format-example", "id: another-example")
    after = make_app()

    report = replay(after.extensions["decision_log"], after.extensions["registry"], decision_id)

    assert report["stored_revision"]["identical"] is True
    assert report["current_revision"] == {"available": False, "reason": "ruleset `format-example` is not loaded now"}


def test_a_stored_revision_whose_text_was_altered_is_not_trusted(
    make_app: Callable[..., Flask], ruleset_dir: Path, database_url: str
) -> None:
    decision_id = decide(make_app(), PROFILE)
    raw_sql(
        database_url,
        *unguard(database_url, "ruleset_revisions"),
        "UPDATE ruleset_revisions SET source_text = replace(source_text, 'Twice daily.', 'Once daily.')",
    )
    edit_ruleset(ruleset_dir, "id: format-example", "id: another-example")  # replay must use the stored text
    after = make_app()
    report = replay(after.extensions["decision_log"], after.extensions["registry"], decision_id)
    assert report["stored_revision"]["available"] is False
    assert "altered" in report["stored_revision"]["reason"]


def test_replay_of_an_unknown_decision_is_404(app: Flask) -> None:
    response = app.test_client().post("/v1/evaluations/6f1c1e2a-3f0e-4b8e-9d57-0d1f6a1b2c3d/replay", headers=AUDITOR)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
