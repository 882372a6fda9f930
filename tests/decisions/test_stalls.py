"""A stalled database gives 503 with Retry-After within seconds, and /readyz says it cannot record.

Stalls are real: another connection holds a lock for 20 s (an exclusive SQLite lock; on PostgreSQL a
table lock on `decisions`), as a long migration, a stuck batch job or an operator's LOCK TABLE would.
Without timeouts, the evaluation waited those 20 s (then answered 200) and /readyz said ready. The
holder lets go as soon as the test has its answers. Timing is not asserted (noisy machines); the 20 s
hold is what tells bounded waits from unbounded ones.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from flask import Flask
from psycopg import sql

from .conftest import PROFILE

HOLD_S = 20


@contextmanager
def locked(url: str) -> Iterator[None]:
    """Another connection holds the lock appends need, for up to HOLD_S seconds or until the block ends."""
    release, taken, failed = threading.Event(), threading.Event(), []

    def hold() -> None:
        try:
            if url.startswith("sqlite:///"):
                conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
                conn.execute("BEGIN EXCLUSIVE")
                taken.set()
                release.wait(HOLD_S)
                conn.rollback()
                conn.close()
                return
            rest = url.removeprefix("postgresql://postgres@127.0.0.1:5432/")
            dbname, _, schema = rest.partition("?options=-csearch_path%3D")
            with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}") as conn:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
                conn.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
                taken.set()
                release.wait(HOLD_S)
                conn.rollback()
        except Exception as exc:  # reported by the test, not lost in the thread
            failed.append(exc)
            taken.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    taken.wait(10)
    assert not failed, failed
    try:
        yield
    finally:
        release.set()
        thread.join(30)


def test_an_evaluation_during_a_lock_is_503_with_retry_after(app: Flask, database_url: str) -> None:
    client = app.test_client()
    body = {"ruleset": "format-example", "profile": PROFILE}
    assert client.post("/v1/evaluations", json=body).status_code == 200
    with locked(database_url):
        response = client.post("/v1/evaluations", json=body)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == "urn:hairloss-rules:problem:decision-not-recorded"
    assert response.headers["Retry-After"]
    assert client.post("/v1/evaluations", json=body).status_code == 200  # recovered with the lock released


def test_readyz_during_a_lock_is_503_cannot_record(app: Flask, database_url: str) -> None:
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["database"]["can_record"] is True
    with locked(database_url):
        stalled = client.get("/readyz")
    assert stalled.status_code == 503
    assert stalled.json["status"] == "not ready"
    assert stalled.json["database"]["can_record"] is False
    assert stalled.json["database"]["problem"].startswith("cannot record")
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readyz_with_the_disk_full_is_503_cannot_record(make_app: Callable[..., Flask]) -> None:
    """A disk with less room than DECISION_LOG_MIN_FREE_MB beside the SQLite log: answers would be 503s."""
    app = make_app(DECISION_LOG_MIN_FREE_MB=2**40)  # more than any disk holds: this one is "full"
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["database"] == {
        "backend": "sqlite",
        "reachable": True,
        "can_record": False,
        "problem": "cannot record: the disk holding the decision log is full",
    }


def test_the_timeouts_are_settings(
    make_app: Callable[..., Flask], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECISION_LOG_TIMEOUT_MS", "750")
    monkeypatch.setenv("DECISION_LOG_QUERY_TIMEOUT_MS", "9000")
    monkeypatch.setenv("DECISION_LOG_CONNECT_TIMEOUT_MS", "3500")
    log = make_app().extensions["decision_log"]
    with log.engine.connect() as conn:
        if database_url.startswith("sqlite"):
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 750
            return
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "750ms"
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "9s"  # a read
        assert conn.exec_driver_sql("SELECT count(*) FROM chain_heads").scalar() == 2  # the URL's search_path holds
        parameters = conn.connection.dbapi_connection.info.get_parameters()
        assert parameters["connect_timeout"] == "4"  # libpq counts whole seconds
        assert parameters["tcp_user_timeout"] == "750"
    with log.writer.connect() as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "750ms"  # an append's


@pytest.mark.parametrize("value", ["0", "soon"])
def test_a_bad_timeout_stops_the_start(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DECISION_LOG_TIMEOUT_MS", value)
    with pytest.raises(SystemExit, match="DECISION_LOG_TIMEOUT_MS"):
        make_app()
