"""Fixtures for the HTTP layer: small rulesets in temporary folders, never the clinical ruleset."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "rulesets" / "examples" / "minimal.yaml"
RULESET_ID = "format-example"
VALID_PROFILE: dict[str, Any] = {"age": 30, "diagnosis": "confirmed", "pregnant": False}


def write_ruleset(folder: Path, *, ruleset_id: str = RULESET_ID, status: str = "production") -> Path:
    """The example ruleset under another id and status (the example itself is a draft)."""
    text = MINIMAL.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^status: draft$", f"status: {status}", text)
    text = re.sub(r"(?m)^id: format-example$", f"id: {ruleset_id}", text)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ruleset_id}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def rulesets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rulesets"
    write_ruleset(folder)
    return folder


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Flask]:
    def make(rulesets_dir: Path | None = None, **config: Any) -> Flask:
        folder = rulesets_dir if rulesets_dir is not None else tmp_path / "rulesets"
        if rulesets_dir is None and not folder.exists():
            write_ruleset(folder)
        return create_app({"RULESETS_DIR": str(folder), "TESTING": True, **config})

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask], rulesets_dir: Path) -> Flask:
    return make_app(rulesets_dir)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def assert_problem(resp: Any, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json(force=True)
    assert body["status"] == status
    assert body["title"]
    if type_suffix is None:
        assert body["type"] == "about:blank"
    else:
        assert body["type"] == f"urn:hairloss-rules:problem:{type_suffix}"
    return body


def error_for(body: dict[str, Any], field: str) -> dict[str, Any]:
    matches = [e for e in body.get("errors", []) if e["field"] == field]
    assert matches, f"no error for {field}: {body}"
    return matches[0]


@contextmanager
def decisions_table_missing(app: Flask) -> Iterator[None]:
    """Make the real SQLite decision log unwritable the way a broken database is: its table is gone."""
    path = app.extensions["decision_log"].engine.url.database
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE decisions RENAME TO decisions_gone")
    try:
        yield
    finally:
        with sqlite3.connect(path) as conn:
            conn.execute("ALTER TABLE decisions_gone RENAME TO decisions")


def recorded(app: Flask, decision_id: str) -> dict[str, Any] | None:
    """The decision log's record of a decision (the real store, read back)."""
    from service.decisions import queries

    return queries.get(app.extensions["decision_log"], decision_id)
