"""The identifier key: configured, or generated once into the instance folder with private permissions."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from service import create_app
from service.answering import commit, prepare
from service.decisions import ConfigurationError
from service.decisions.identifiers import KEY_FILE, load_key

from .conftest import PROFILE


def test_without_a_configured_key_one_is_generated_once_with_0600(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        first = load_key("", tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "DECISION_HMAC_KEY is not set" in caplog.text
    assert path.read_text().strip() not in caplog.text
    caplog.clear()
    again = load_key("", tmp_path)
    assert again.hash("patientId", "Patient/1") == first.hash("patientId", "Patient/1")
    assert "DECISION_HMAC_KEY" not in caplog.text  # warned only when generating


def test_a_configured_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    key = load_key("c" * 40, tmp_path)
    assert not (tmp_path / KEY_FILE).exists()
    assert key.hash("userId", "u") != load_key("", tmp_path).hash("userId", "u")


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        load_key("short", tmp_path)


def test_first_run_creates_sqlite_in_wal_mode_and_the_key_in_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ruleset_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    instance = tmp_path / "fresh-instance"
    monkeypatch.setenv("INSTANCE_PATH", str(instance))
    app = create_app({"RULESETS_DIR": str(ruleset_dir)})
    try:
        log = app.extensions["decision_log"]
        assert log.backend == "sqlite"
        assert (instance / "decisions.sqlite3").is_file()
        assert stat.S_IMODE((instance / KEY_FILE).stat().st_mode) == 0o600
        with log.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        # identifiers reach neither the log output nor the database file
        with caplog.at_level(logging.DEBUG):
            prepared = prepare(app.extensions["registry"], None, PROFILE)
            commit(prepared, log, channel="cds-hooks", identifiers={"patientId": "Patient/secret-42"})
        assert "secret-42" not in caplog.text
        stored = b"".join(p.read_bytes() for p in instance.glob("decisions.sqlite3*"))
        assert b"secret-42" not in stored
    finally:
        app.extensions["decision_log"].close()
