"""Decision log fixtures: a small production ruleset, and a database on SQLite and (when reachable) PostgreSQL.

PostgreSQL: one uniquely named database per test session on 127.0.0.1:5432 (trust auth, user postgres),
created from the `test` database and dropped at the end; each test gets its own schema in it. Under
CI=true a missing server fails the run; elsewhere those tests are skipped with the reason.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from psycopg import sql

from service import create_app
from service.decisions import DecisionLog
from service.decisions.identifiers import IdentifierKey
from service.decisions.integrity import Report, verify

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "rulesets" / "examples" / "minimal.yaml"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
HMAC_KEY = "k" * 48
AUDITOR_TOKEN = "auditor-token-for-tests"
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
PROFILE = {"age": 30, "diagnosis": "confirmed"}


def production_ruleset(folder: Path, text: str | None = None) -> Path:
    """The format example as a production ruleset (the service only loads production-ready files)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = text if text is not None else EXAMPLE.read_text(encoding="utf-8")
    path = folder / "minimal.yaml"
    path.write_text(source.replace("status: draft", "status: production"), encoding="utf-8")
    return path


@pytest.fixture
def ruleset_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rulesets"
    production_ruleset(folder)
    return folder


# ---- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The session's own PostgreSQL database name, or a skip (a failure under CI=true)."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at 127.0.0.1:5432 ({str(exc).strip().splitlines()[0]})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the PostgreSQL run is mandatory")
        pytest.skip(f"{reason}; start it with pg_ctlcluster, or these tests run only on SQLite")
    name = f"decisions_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test: a SQLite file, or a schema of the session's PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'decisions.sqlite3'}"
        return
    dbname = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{dbname}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def raw_sql(url: str, *statements: str) -> list[list[tuple[Any, ...]]]:
    """Run statements straight on the database, as someone with database access could: no service code,
    no SQLAlchemy. On PostgreSQL triggers and foreign keys are bypassed (session_replication_role)."""
    results = []
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            for statement in statements:
                results.append(conn.execute(statement).fetchall())
        finally:
            conn.close()
        return results
    rest = url.removeprefix("postgresql://postgres@127.0.0.1:5432/")
    dbname, _, options = rest.partition("?options=-csearch_path%3D")
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}", autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(options)))
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            cur = conn.execute(statement.encode())
            results.append(cur.fetchall() if cur.description else [])
    return results


def verify_database(url: str) -> Report:
    """`decisions verify` on a database the test's own processes (or gunicorn's) wrote."""
    log = DecisionLog.open(url, IdentifierKey(HMAC_KEY.encode()))
    try:
        return verify(log)
    finally:
        log.close()


def unguard(url: str, *tables: str) -> list[str]:
    """Statements that drop the append-only triggers of tables (SQLite; PostgreSQL bypasses them in raw_sql)."""
    if not url.startswith("sqlite:///"):
        return []
    return [f"DROP TRIGGER {t}_no_{event}" for t in tables for event in ("update", "delete")]


# ---- applications -------------------------------------------------------------------------------


@contextmanager
def app_maker(ruleset_dir: Path, database_url: str, **defaults: Any) -> Iterator[Callable[..., Flask]]:
    """create_app on the test's database and rulesets, with an auditor token (plus `defaults`, then each
    call's overrides); every app's log is closed at the end. The decisions and lifecycle fixtures use it."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        settings = {
            "RULESETS_DIR": str(ruleset_dir),
            "DATABASE_URL": database_url,
            "DECISION_HMAC_KEY": HMAC_KEY,
            "AUDITOR_TOKEN_HASHES": hashlib.sha256(AUDITOR_TOKEN.encode()).hexdigest(),
            **defaults,
            **overrides,
        }
        app = create_app(settings)
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            lifecycle = app.extensions.get("lifecycle")
            if lifecycle is not None:
                lifecycle.stop()  # a follower thread must not reopen the closed log's connections
            app.extensions["decision_log"].close()


@pytest.fixture
def make_app(ruleset_dir: Path, database_url: str) -> Iterator[Callable[..., Flask]]:
    """create_app on the test's database and rulesets, with an auditor token; logs are closed afterwards."""
    with app_maker(ruleset_dir, database_url) as make:
        yield make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()
