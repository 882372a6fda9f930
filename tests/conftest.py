"""Fixtures for the whole suite."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_instance(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app() opens the decision log in the instance folder: give every test its own, and never let a
    DATABASE_URL or key from the developer's shell reach a test."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path_factory.mktemp("instance")))
    for name in ("DATABASE_URL", "DECISION_HMAC_KEY", "DECISION_LOG_SQLITE_SYNC", "AUDITOR_TOKEN_HASHES"):
        monkeypatch.delenv(name, raising=False)
