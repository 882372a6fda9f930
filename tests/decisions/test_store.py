"""The decision log as the recorder of service.answering: what a record holds, revisions, failures, feedback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.answering import commit, make_decision, prepare
from service.decisions import DecisionLog, InvalidFeedback, RecordError, queries
from service.decisions.identifiers import IdentifierKey
from service.decisions.integrity import verify
from service.registry import Registry

from .conftest import HMAC_KEY, PROFILE, raw_sql

IDS = {"patientId": "Patient/example-123", "userId": "Practitioner/dr-who", "hookInstance": "d1577c69-dfbe-44ad"}
CARDS = [
    {"uuid": "card-topical-1", "option": "topical", "indicator": "info", "summary": "Consider topical treatment"},
    {"uuid": "card-oral-1", "option": "oral", "indicator": "warning", "summary": "Oral treatment excluded"},
]


def cds_decision(app: Flask, profile: dict | None = None, cards: list[dict] | None = None) -> dict:
    registry = app.extensions["registry"]
    prepared = prepare(registry, None, profile or PROFILE)
    return commit(prepared, app.extensions["decision_log"], channel="cds-hooks", identifiers=IDS, cards=cards or CARDS)


def everything_stored(url: str) -> str:
    """Every row of every table as text: what someone reading the database would see."""
    tables = ["ruleset_revisions", "decisions", "decision_cards", "feedback", "chain_heads"]
    return json.dumps(raw_sql(url, *(f"SELECT * FROM {t}" for t in tables)), default=str)


def test_a_recorded_decision_holds_question_answer_and_revision(app: Flask) -> None:
    registry = app.extensions["registry"]
    log = app.extensions["decision_log"]
    decision = make_decision(registry, None, {**PROFILE, "conditions": ["heart_failure"]}, channel="api", recorder=log)

    record = queries.get(log, decision["decision_id"])
    assert record is not None
    active = registry.get("format-example").ruleset
    assert record["ruleset"] == {"id": active.id, "version": active.version, "sha256": active.sha256}
    assert record["channel"] == "api"
    assert record["profile"] == {"age": 30, "diagnosis": "confirmed", "conditions": ["heart_failure"]}
    assert record["candidates"] == ["topical"]
    assert record["excluded"] == ["oral"]
    assert record["referrals"] == []
    assert record["fired_rules"] == decision["fired_rules"] == ["adult-confirmed", "pregnancy", "heart"]
    assert record["decision"] == decision
    assert record["evaluated_at"] == decision["evaluated_at"]
    assert record["latency_ms"] >= 0
    assert record["chain"]["seq"] == 1
    assert "identifiers" not in record


def test_identifiers_are_stored_only_as_keyed_hashes(app: Flask, database_url: str) -> None:
    first = cds_decision(app)
    second = cds_decision(app, cards=[{**CARDS[0], "uuid": "card-topical-2"}])
    log: DecisionLog = app.extensions["decision_log"]

    stored = everything_stored(database_url)
    for raw in IDS.values():
        assert raw not in stored
    key = IdentifierKey(HMAC_KEY.encode())
    record = queries.get(log, first["decision_id"])
    assert record["identifiers"] == {
        "patient_hash": key.hash("patientId", IDS["patientId"]),
        "user_hash": key.hash("userId", IDS["userId"]),
        "hook_instance_hash": key.hash("hookInstance", IDS["hookInstance"]),
    }
    # a plain SHA-256 would be guessable; the keyed hash differs from it and from other kinds of id
    assert key.hash("patientId", "x") != IdentifierKey(b"another key of enough length......").hash("patientId", "x")
    assert key.hash("patientId", "same") != key.hash("userId", "same")
    page = queries.search(log, queries.Filters(patient_hash=record["identifiers"]["patient_hash"]), limit=10)
    assert [i["decision_id"] for i in page.items] == [second["decision_id"], first["decision_id"]]


def test_unknown_identifier_kinds_are_refused_not_stored(app: Flask) -> None:
    prepared = prepare(app.extensions["registry"], None, PROFILE)
    with pytest.raises(ValueError, match="unknown identifier `encounterId`"):
        commit(prepared, app.extensions["decision_log"], channel="cds-hooks", identifiers={"encounterId": "E/1"})


def test_cards_link_to_their_decision_and_the_rules_behind_their_option(app: Flask) -> None:
    decision = cds_decision(app)
    record = queries.get(app.extensions["decision_log"], decision["decision_id"])
    assert record["cards"] == [
        {**CARDS[0], "rules": ["adult-confirmed"]},
        {**CARDS[1], "rules": ["pregnancy"]},
    ]


def test_active_revisions_are_stored_at_start_with_their_exact_text(app: Flask, database_url: str) -> None:
    ruleset = app.extensions["registry"].get("format-example").ruleset
    [[(sha, source)]] = raw_sql(database_url, "SELECT sha256, source_text FROM ruleset_revisions")
    assert sha == ruleset.sha256
    assert source == Path(ruleset.path).read_text(encoding="utf-8")


def test_a_revision_activated_later_is_stored_with_its_first_decision(
    app: Flask, ruleset_dir: Path, database_url: str
) -> None:
    log: DecisionLog = app.extensions["decision_log"]
    path = ruleset_dir / "minimal.yaml"
    path.write_text(path.read_text().replace('version: "0.1.0"', 'version: "0.1.1"'))
    registry: Registry = app.extensions["registry"]
    assert registry.reload() == {}  # activates 0.1.1; nobody told the log

    decision = make_decision(registry, None, PROFILE, channel="api", recorder=log)

    assert decision["ruleset"]["version"] == "0.1.1"
    versions = raw_sql(database_url, "SELECT version FROM ruleset_revisions ORDER BY version")[0]
    assert versions == [("0.1.0",), ("0.1.1",)]


def test_a_decision_whose_revision_text_is_unknown_is_not_recorded(app: Flask, ruleset_dir: Path) -> None:
    app.extensions["decision_log"].close()
    registry: Registry = app.extensions["registry"]
    blind = DecisionLog.open(app.config["DATABASE_URL"], IdentifierKey(HMAC_KEY.encode()))  # knows no revision texts
    path = ruleset_dir / "minimal.yaml"
    path.write_text(path.read_text().replace('version: "0.1.0"', 'version: "0.2.0"'))
    registry.reload()
    try:
        with pytest.raises(RecordError, match="could never be replayed"):
            make_decision(registry, None, PROFILE, channel="api", recorder=blind)
        assert verify(blind).counts["decisions"] == 0
    finally:
        blind.close()


def test_a_failed_write_raises_record_error_and_leaves_no_partial_record(app: Flask, database_url: str) -> None:
    log: DecisionLog = app.extensions["decision_log"]
    kept = make_decision(app.extensions["registry"], None, PROFILE, channel="api", recorder=log)
    # the decision row itself can be inserted, its cards cannot: the whole record must go
    raw_sql(database_url, "ALTER TABLE decision_cards RENAME TO decision_cards_gone")

    with pytest.raises(RecordError, match="was not recorded"):
        cds_decision(app)

    raw_sql(database_url, "ALTER TABLE decision_cards_gone RENAME TO decision_cards")
    report = verify(log)
    assert report.ok, report.problems
    assert report.counts["decisions"] == 1
    assert queries.get(log, kept["decision_id"]) is not None


def test_the_log_refuses_updates_and_deletes(app: Flask) -> None:
    log: DecisionLog = app.extensions["decision_log"]
    make_decision(app.extensions["registry"], None, PROFILE, channel="api", recorder=log)
    for statement in ("UPDATE decisions SET channel = 'x'", "DELETE FROM decisions", "DELETE FROM ruleset_revisions"):
        with pytest.raises(SQLAlchemyError, match="append-only"), log.engine.begin() as conn:
            conn.execute(text(statement))


def test_a_different_identifier_key_is_refused(app: Flask) -> None:
    from service.decisions import ConfigurationError

    with pytest.raises(ConfigurationError, match="not the key this decision log was written with"):
        DecisionLog.open(app.config["DATABASE_URL"], IdentifierKey(b"some other key that is long enough!!"))


# ---- feedback -------------------------------------------------------------------------------------


def overridden(card: str, when: str = "2026-11-22T10:00:00Z", **extra: object) -> dict:
    return {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": when,
        "overrideReason": {
            "reason": {"system": "http://example.org/reasons", "code": "patient-refuses", "display": "Patient refuses"},
            "userComment": "prefers to wait",
        },
        **extra,
    }


def test_feedback_is_stored_linked_to_card_and_decision(app: Flask) -> None:
    log: DecisionLog = app.extensions["decision_log"]
    decision = cds_decision(app)
    accepted = {
        "card": "card-topical-1",
        "outcome": "accepted",
        "outcomeTimestamp": "2026-11-22T10:00:00.5+01:00",
        "acceptedSuggestions": [{"id": "suggestion-1"}],
    }

    result = log.record_feedback("hair-loss-options", [accepted, overridden("card-oral-1")])

    assert (result.stored, result.repeated) == (2, 0)
    record = queries.get(log, decision["decision_id"])
    assert record["feedback"] == [
        {
            "card": "card-topical-1",
            "service": "hair-loss-options",
            "outcome": "accepted",
            "outcomeTimestamp": "2026-11-22T09:00:00.500Z",
            "acceptedSuggestions": [{"id": "suggestion-1"}],
            "received_at": record["feedback"][0]["received_at"],
        },
        {
            "card": "card-oral-1",
            "service": "hair-loss-options",
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-22T10:00:00.000Z",
            "overrideReason": overridden("x")["overrideReason"],
            "received_at": record["feedback"][1]["received_at"],
        },
    ]
    assert queries.feedback_by_rule(log) == [
        {"ruleset": "format-example", "rule": "adult-confirmed", "accepted": 1, "overridden": 0},
        {"ruleset": "format-example", "rule": "pregnancy", "accepted": 0, "overridden": 1},
    ]
    assert verify(log).counts["feedback"] == 2


def test_repeated_feedback_is_a_no_op(app: Flask) -> None:
    log: DecisionLog = app.extensions["decision_log"]
    cds_decision(app)
    assert log.record_feedback("svc", [overridden("card-oral-1")]).stored == 1
    # the same report again, also with the same instant written differently, and twice in one batch
    again = log.record_feedback(
        "svc", [overridden("card-oral-1"), overridden("card-oral-1", "2026-11-22T11:00:00.000+01:00")]
    )
    assert (again.stored, again.repeated) == (0, 2)
    later = log.record_feedback("svc", [overridden("card-oral-1", "2026-11-23T08:00:00Z")] * 2)
    assert (later.stored, later.repeated) == (1, 1)
    report = verify(log)
    assert report.ok and report.counts["feedback"] == 2


def test_feedback_for_a_card_never_issued_is_refused(app: Flask) -> None:
    log: DecisionLog = app.extensions["decision_log"]
    cds_decision(app)
    with pytest.raises(InvalidFeedback) as caught:
        log.record_feedback("svc", [overridden("card-oral-1"), overridden("no-such-card")])
    assert [e.field for e in caught.value.errors] == ["feedback[1].card"]
    assert verify(log).counts["feedback"] == 0  # nothing of the batch was stored


@pytest.mark.parametrize(
    ("item", "field", "allowed"),
    [
        ({"card": "c", "outcome": "dismissed", "outcomeTimestamp": "2026-01-01T00:00:00Z"}, "outcome", True),
        ({"card": "c", "outcome": "accepted", "outcomeTimestamp": "yesterday"}, "outcomeTimestamp", False),
        ({"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00"}, "outcomeTimestamp", False),
        ({"outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}, "card", False),
        (overridden("c", overrideReason={"reason": {"code": "x"}}), "overrideReason.reason", False),
        (overridden("c", overrideReason={"userComment": "a\x00b"}), "overrideReason.userComment", False),
        (overridden("c", acceptedSuggestions=["s1"]), "acceptedSuggestions", False),
    ],
)
def test_malformed_feedback_names_the_field(app: Flask, item: dict, field: str, allowed: bool) -> None:
    with pytest.raises(InvalidFeedback) as caught:
        app.extensions["decision_log"].record_feedback("svc", [item])
    [problem] = caught.value.errors
    assert problem.field == f"feedback[0].{field}"
    assert (problem.allowed == ("accepted", "overridden")) is allowed


def test_postgres_urls_are_normalised_to_psycopg3() -> None:
    from service.decisions.database import ConfigurationError, normalise_url

    assert normalise_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:////tmp/x.sqlite3") == "sqlite:////tmp/x.sqlite3"
    with pytest.raises(ConfigurationError, match="mysql"):
        normalise_url("mysql://u@h/db")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_durability_can_be_raised_to_fsync_every_commit(make_app: Callable[..., Flask]) -> None:
    from service.decisions import ConfigurationError

    for setting, pragma in (("NORMAL", 1), ("full", 2)):
        log: DecisionLog = make_app(DECISION_LOG_SQLITE_SYNC=setting).extensions["decision_log"]
        with log.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
    with pytest.raises(ConfigurationError, match="DECISION_LOG_SQLITE_SYNC"):
        make_app(DECISION_LOG_SQLITE_SYNC="OFF")


def test_the_schema_of_the_migrations_is_the_schema_of_the_models(app: Flask) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from service.decisions.models import Base

    with app.extensions["decision_log"].engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_a_second_start_on_the_same_database_migrates_nothing_and_keeps_records(
    make_app: Callable[..., Flask],
) -> None:
    first = make_app()
    decision = make_decision(
        first.extensions["registry"], None, PROFILE, channel="api", recorder=first.extensions["decision_log"]
    )
    second = make_app()
    assert queries.get(second.extensions["decision_log"], decision["decision_id"]) is not None
