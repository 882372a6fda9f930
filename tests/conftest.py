"""Fixtures for the whole suite: an isolated instance folder per test, and the example ruleset."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "rulesets" / "examples" / "minimal.yaml"
ACCESS_SETTINGS = (
    "INTEGRATION_TOKEN_HASHES",
    "CLINICIAN_TOKEN_HASHES",
    "AUDITOR_TOKEN_HASHES",
    "ADMIN_TOKEN_HASHES",
    "OIDC_ISSUER",
    "OIDC_AUDIENCE",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_ROLE_MAP",
    "OIDC_ROLES_CLAIM",
)


@pytest.fixture(autouse=True)
def _isolated_instance(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app() opens the decision log in the instance folder: give every test its own, and never let a
    DATABASE_URL or key from the developer's shell reach a test."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path_factory.mktemp("instance")))
    for name in (
        "DATABASE_URL",
        "DECISION_HMAC_KEY",
        "DECISION_LOG_SQLITE_SYNC",
        "DECISION_LOG_TIMEOUT_MS",
        "DECISION_LOG_CONNECT_TIMEOUT_MS",
        "DECISION_LOG_QUERY_TIMEOUT_MS",
        "DECISION_LOG_MIN_FREE_MB",
        *ACCESS_SETTINGS,
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture
def write_ruleset(tmp_path: Path):
    """Write ruleset text into a fresh folder and return the file's path."""

    def write(text: str, name: str = "ruleset.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def line_of(text: str, needle: str) -> int:
    """1-based line number of the first line containing `needle`."""
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in text")
