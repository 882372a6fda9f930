"""`flask --app service decisions verify` against records tampered with by raw SQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from flask import Flask

from service.answering import commit, make_decision, prepare

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
    card = {
        "uuid": "card-1",
        "option": "topical",
        "indicator": "info",
        "summary": "Topical",
        "service": "svc",
        "suggestions": [{"uuid": "suggestion-1"}],
    }
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


# ---- every stored column of every logged table -------------------------------------------------

H = "'" + "a" * 64 + "'"  # a well-formed hash or digest that is not the stored one
WHEN = "'2020-01-02 03:04:05.000006'"  # a time both backends take as a literal, and none the log holds
OTHER_ID = "'00000000-0000-4000-8000-000000000000'"
# One edit for each column, on the record that has most of them: decision seq 3 (its card and feedback),
# the active revision, the decisions chain head. Values fit each column's type and length on both backends.
EDITS: dict[str, tuple[str, dict[str, str]]] = {
    "decisions": (
        "seq = 3",
        {
            "seq": "103",
            "decision_id": OTHER_ID,
            "evaluated_at": WHEN,
            "channel": "'form'",
            "ruleset_id": "'other-ruleset'",
            "ruleset_version": "'9.9.9'",
            "ruleset_sha256": H,
            "profile": "'{}'",
            "candidates": "'[\"oral\"]'",
            "excluded": "'[]'",
            "referrals": "'[\"review\"]'",
            "fired_rules": "'[]'",
            "latency_us": "latency_us + 1",
            "decision": "'{}'",
            "patient_hash": H,
            "user_hash": H,
            "hook_instance_hash": H,
            "prev_hash": H,
            "hash": H,
        },
    ),
    "decision_cards": (
        "uuid = 'card-1'",
        {
            "uuid": "'card-2'",
            "seq": "2",
            "position": "position + 1",
            "option": "'oral'",
            "indicator": "'warning'",
            "summary": "'Oral'",
            "rules": "'[]'",
            "service_id": "'other-service'",
            "suggestions": "'[\"suggestion-2\"]'",
        },
    ),
    "feedback": (
        "seq = 1",
        {
            "seq": "7",
            "card_uuid": "'card-2'",
            "decision_id": OTHER_ID,
            "service_id": "'other-service'",
            "outcome": "'accepted'",
            "outcome_timestamp": WHEN,
            "override_reason": '\'{"userComment":"edited"}\'',
            "accepted_suggestions": "'[\"s-1\"]'",
            "received_at": WHEN,
            "prev_hash": H,
            "hash": H,
        },
    ),
    "ruleset_revisions": (
        "1 = 1",
        {
            "sha256": H,
            "ruleset_id": "'other-ruleset'",
            "version": "'9.9.9'",
            "source_text": "source_text || ' '",
            "tests_text": "'tests: []'",
            "options": "'[\"topical\"]'",  # oral and review hidden from filtered audits (issue 16, item 6)
            "stored_at": WHEN,
            "content_hash": H,
        },
    ),
    "chain_heads": ("name = 'decisions'", {"name": "'decision'", "seq": "seq + 1", "hash": H}),
    # The ruleset lifecycle (service/lifecycle): the startup publish of the folder's file set is action 1.
    "lifecycle_actions": (
        "seq = 1",
        {
            "seq": "101",
            "at": WHEN,
            "actor": "'someone else'",
            "action": "'sign'",
            "ruleset_id": "'other-ruleset'",
            "sha256": H,
            "detail": "'{}'",
            "prev_hash": H,
            "hash": H,
        },
    ),
    "ruleset_releases": (
        "1 = 1",
        {
            "sha256": H,
            "ruleset_id": "'other-ruleset'",
            "version": "'9.9.9'",
            "file_name": "'other.yaml'",
            "source_text": "source_text || ' '",
            "tests_text": "'tests: []'",
            "fhir_text": "'codes: {}'",
            "gate_ok": "1 - gate_ok",
            "gate_report": "'{}'",
            "published_at": WHEN,
            "published_by": "'someone else'",
        },
    ),
}
APPEND_ONLY = ("ruleset_revisions", "decisions", "decision_cards", "feedback", "lifecycle_actions", "ruleset_releases")
# Tables of the log without an edit above, each with the reason.
NOT_EDITED_HERE = {
    "log_settings": "facts about the log itself (the identifier key's fingerprint), not records",
    "cds_hooks_seen_jwt": "the CDS Hooks replay cache: expiring token ids, purged; not evidence",
    "auditor_revoked_sessions": "sign-outs remembered until the session would have expired, purged; not evidence",
    "ruleset_signoffs": "covered by verify like releases; its tamper test needs a reviewer key: tests/lifecycle",
    "ruleset_stages": "current state, changed in place; every change of stage is a lifecycle action",
    "ruleset_shadows": "current state, changed in place; every change of shadow is a lifecycle action",
    "ruleset_worker_status": "what each worker serves now, rewritten on every check; not evidence",
    "shadow_divergences": "observations of a shadow revision, off the request path; not evidence of any answer",
}


def test_every_table_of_the_log_has_edits_below_or_a_reason() -> None:
    from service.decisions.models import Base

    assert set(Base.metadata.tables) == set(EDITS) | set(NOT_EDITED_HERE)


def test_every_column_of_every_logged_table_has_an_edit_below() -> None:
    """A column added later without a tamper case here fails this, not silently the coverage."""
    from service.decisions.models import Base

    for table, (_, edits) in EDITS.items():
        assert set(edits) == set(Base.metadata.tables[table].columns.keys()), table


@pytest.mark.parametrize(
    ("table", "column"), [(table, column) for table, (_, edits) in EDITS.items() for column in edits]
)
def test_an_edit_of_any_stored_column_is_caught(
    app: Flask, database_url: str, logged: list[str], table: str, column: str
) -> None:
    where, edits = EDITS[table]
    guards = unguard(database_url, table) if table in APPEND_ONLY else []
    select = f"SELECT {column} FROM {table} WHERE {where}"
    before = raw_sql(database_url, select)[0]
    raw_sql(database_url, *guards, f"UPDATE {table} SET {column} = {edits[column]} WHERE {where}")
    assert raw_sql(database_url, select)[0] != before  # the edit took (an edited key moves the row away)
    result = verify_cli(app)
    assert result.exit_code == 1, f"{table}.{column} edited, yet: {result.output}"
    assert "FAIL" in result.output


def test_a_log_written_before_revision_hashes_still_verifies_after_the_upgrade(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    """Migration 0004 gives the revisions of an existing log their content_hash: the log verifies after it.

    The log is written by the service, then put back into the state before 0004 (column gone, schema
    version the one 0004 revises) and 0004 alone is run on it; later migrations, if any, stay applied.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    from service.decisions.database import WRITE, connect
    from service.decisions.migrate import alembic_config

    first = make_app()
    ids = _decisions_with_feedback(first)
    first.extensions["decision_log"].close()
    [[(head,)]] = raw_sql(database_url, "SELECT version_num FROM alembic_version")
    engine = connect(database_url)
    try:
        with engine.execution_options(**WRITE).begin() as conn:
            before = ScriptDirectory.from_config(alembic_config(conn)).get_revision("0004").down_revision
        raw_sql(
            database_url,
            "ALTER TABLE ruleset_revisions DROP COLUMN content_hash",
            f"UPDATE alembic_version SET version_num = '{before}'",
        )
        with engine.execution_options(**WRITE).begin() as conn:
            command.upgrade(alembic_config(conn), "0004")
    finally:
        engine.dispose()
    raw_sql(database_url, f"UPDATE alembic_version SET version_num = '{head}'")
    [[stored]] = raw_sql(database_url, "SELECT content_hash FROM ruleset_revisions")
    assert len(stored[0]) == 64
    upgraded = make_app()
    result = verify_cli(upgraded)
    assert result.exit_code == 0, result.output
    assert "decisions chain: 3 record(s)" in result.output and "ruleset revisions: 1" in result.output
    assert len(ids) == 3
    # ...and the revision is covered from then on.
    raw_sql(database_url, *unguard(database_url, "ruleset_revisions"), "UPDATE ruleset_revisions SET tests_text = 'x'")
    assert verify_cli(upgraded).exit_code == 1


def _decisions_with_feedback(app: Flask) -> list[str]:
    registry, log = app.extensions["registry"], app.extensions["decision_log"]
    ids = [make_decision(registry, None, PROFILE, channel="api", recorder=log).decision_id]
    card = {"uuid": "card-1", "option": "topical", "indicator": "info", "summary": "Topical"}
    ids.append(commit(prepare(registry, None, PROFILE), log, channel="cds-hooks", cards=[card]).decision_id)
    log.record_feedback("svc", [{"card": "card-1", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}])
    ids.append(make_decision(registry, None, PROFILE, channel="api", recorder=log).decision_id)
    return ids
