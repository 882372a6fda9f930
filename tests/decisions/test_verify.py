"""`flask --app service decisions verify` against records tampered with by raw SQL."""

from __future__ import annotations

import pytest
from click.testing import Result
from flask import Flask

from service.decide import commit, make_decision, prepare

from .conftest import PROFILE, raw_sql, unguard


def verify_cli(app: Flask) -> Result:
    return app.test_cli_runner().invoke(args=["decisions", "verify"])


@pytest.fixture
def logged(app: Flask) -> list[str]:
    """Five decisions (the third with a CDS Hooks card and feedback on it); their decision ids in order."""
    registry, log = app.extensions["registry"], app.extensions["decision_log"]
    ids = []
    for age in (30, 31):
        ids.append(make_decision(registry, None, {**PROFILE, "age": age}, channel="api", recorder=log).decision_id)
    card = {"uuid": "card-1", "option": "topical", "indicator": "info", "summary": "Topical"}
    prepared = prepare(registry, None, PROFILE)
    ids.append(commit(prepared, log, channel="cds-hooks", cards=[card]).decision_id)
    log.record_feedback(
        "svc", [{"card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]
    )
    for age in (40, 41):
        ids.append(make_decision(registry, None, {**PROFILE, "age": age}, channel="api", recorder=log).decision_id)
    return ids


def test_an_intact_log_verifies(app: Flask, logged: list[str]) -> None:
    result = verify_cli(app)
    assert result.exit_code == 0, result.output
    assert "decisions chain: 5 record(s)" in result.output
    assert "feedback chain: 1 record(s)" in result.output
    assert "OK" in result.output


def test_an_empty_log_verifies(app: Flask) -> None:
    result = verify_cli(app)
    assert result.exit_code == 0, result.output
    assert "decisions chain: 0 record(s)" in result.output


def test_an_edited_record_is_named(app: Flask, database_url: str, logged: list[str]) -> None:
    raw_sql(
        database_url, *unguard(database_url, "decisions"), "UPDATE decisions SET profile = '{\"age\":99}' WHERE seq = 2"
    )
    result = verify_cli(app)
    assert result.exit_code == 1
    assert f"decisions seq 2 ({logged[1]}): edited" in result.output


def test_an_edited_answer_text_is_named(app: Flask, database_url: str, logged: list[str]) -> None:
    """The full decision enters the hash as its SHA-256: changing one character of it still shows."""
    raw_sql(
        database_url,
        *unguard(database_url, "decisions"),
        "UPDATE decisions SET decision = replace(decision, 'recommended', 'consider') WHERE seq = 3",
    )
    result = verify_cli(app)
    assert result.exit_code == 1
    assert f"decisions seq 3 ({logged[2]}): edited" in result.output


def test_an_edited_card_is_named_as_an_edit_of_its_decision(app: Flask, database_url: str, logged: list[str]) -> None:
    raw_sql(database_url, *unguard(database_url, "decision_cards"), "UPDATE decision_cards SET summary = 'Oral'")
    result = verify_cli(app)
    assert result.exit_code == 1
    assert f"decisions seq 3 ({logged[2]}): edited" in result.output


def test_a_deleted_record_is_named(app: Flask, database_url: str, logged: list[str]) -> None:
    raw_sql(database_url, *unguard(database_url, "decisions"), "DELETE FROM decisions WHERE seq = 2")
    result = verify_cli(app)
    assert result.exit_code == 1
    assert f"decisions seq 3 ({logged[2]}): deleted: it links to a record that is not in the log" in result.output
    assert "after seq 1" in result.output


def test_deleting_the_newest_records_is_detected(app: Flask, database_url: str, logged: list[str]) -> None:
    raw_sql(database_url, *unguard(database_url, "decisions"), "DELETE FROM decisions WHERE seq = 5")
    result = verify_cli(app)
    assert result.exit_code == 1
    assert "decisions seq 5: truncated: the chain head records seq 5 but the log ends at seq 4" in result.output


def test_reordered_records_are_named(app: Flask, database_url: str, logged: list[str]) -> None:
    # swap the positions of the 4th and 5th decisions, through a free number: both databases check the
    # primary key row by row
    swap = [f"UPDATE decisions SET seq = {new} WHERE seq = {old}" for old, new in ((4, -1), (5, 4), (-1, 5))]
    raw_sql(database_url, *unguard(database_url, "decisions"), *swap)
    result = verify_cli(app)
    assert result.exit_code == 1
    assert f"decisions seq 4 ({logged[4]}): reordered: it links to the record at seq 5" in result.output
    assert f"decisions seq 5 ({logged[3]}): reordered: it links to the record at seq 3" in result.output


def test_edited_feedback_is_named(app: Flask, database_url: str, logged: list[str]) -> None:
    raw_sql(database_url, *unguard(database_url, "feedback"), "UPDATE feedback SET outcome = 'accepted'")
    result = verify_cli(app)
    assert result.exit_code == 1
    assert "feedback seq 1 (card-1): edited" in result.output


def test_an_altered_ruleset_revision_is_named(app: Flask, database_url: str, logged: list[str]) -> None:
    raw_sql(
        database_url,
        *unguard(database_url, "ruleset_revisions"),
        "UPDATE ruleset_revisions SET source_text = replace(source_text, 'at_least: 18', 'at_least: 16')",
    )
    result = verify_cli(app)
    assert result.exit_code == 1
    assert "ruleset_revisions (format-example " in result.output
    assert "does not hash to its sha256" in result.output
