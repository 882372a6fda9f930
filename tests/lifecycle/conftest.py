"""Lifecycle fixtures: the decision log's databases (SQLite and PostgreSQL), an admin token, file sets on disk."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from ..decisions.conftest import (  # noqa: F401  (fixtures)
    AUDITOR,
    AUDITOR_TOKEN,
    HMAC_KEY,
    PROFILE,
    app_maker,
    database_url,
    pg_database,
    production_ruleset,
    raw_sql,
    unguard,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "rulesets" / "examples" / "minimal.yaml"
RULESET_ID = "format-example"
ADMIN_TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def example(version: str = "0.1.0", edit: Callable[[str], str] | None = None) -> str:
    """The format example as a production ruleset at a version, optionally edited."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("status: draft", "status: production")
    text = re.sub(r'(?m)^version: "[^"]*"$', f'version: "{version}"', text)
    return edit(text) if edit else text


def write(folder: Path, text: str, name: str = "minimal.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def ruleset_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rulesets"
    write(folder, example())
    return folder


@pytest.fixture
def make_app(ruleset_dir: Path, database_url: str) -> Iterator[Callable[..., Flask]]:  # noqa: F811
    """create_app on the test's database with admin and auditor tokens; the follower is driven by hand."""
    admin = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    with app_maker(ruleset_dir, database_url, ADMIN_TOKEN_HASHES=admin, LIFECYCLE_POLL_SECONDS=0) as make:
        yield make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()
