"""Fixtures for the CDS Hooks channel: the fixture ruleset with its FHIR mapping, trusted EHRs, apps."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service import create_app

from .helpers import CdsClient, Ehr, EhrKey

DATA = Path(__file__).parent / "data"
RULESET_ID = "cds-fixture"
PATIENT_VIEW = f"/cds-services/{RULESET_ID}-patient-view"
ORDER_SELECT = f"/cds-services/{RULESET_ID}-order-select"


@pytest.fixture(scope="session")
def ehr() -> Ehr:
    return Ehr("https://ehr.example.org", [EhrKey.generate("ES384")])


@pytest.fixture(scope="session")
def rsa_ehr() -> Ehr:
    return Ehr("https://rsa-ehr.example.org", [EhrKey.generate("RS384")])


@pytest.fixture
def rulesets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rulesets"
    folder.mkdir()
    for name in ("cds-fixture.yaml", "cds-fixture.fhir.yaml"):
        shutil.copy(DATA / name, folder / name)
    return folder


def write_issuers(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


@pytest.fixture
def issuers_file(tmp_path: Path, ehr: Ehr, rsa_ehr: Ehr) -> Path:
    return write_issuers(
        tmp_path / "issuers.json",
        [{"iss": ehr.iss, "jwks": ehr.jwks}, {"iss": rsa_ehr.iss, "jwks": rsa_ehr.jwks}],
    )


@pytest.fixture
def make_app(tmp_path: Path, rulesets_dir: Path, issuers_file: Path) -> Callable[..., Flask]:
    """Apps on the fixture ruleset with their own SQLite database (pass DATABASE_URL to share one)."""

    def make(**config: Any) -> Flask:
        settings = {
            "RULESETS_DIR": str(rulesets_dir),
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "CDS_HOOKS_ISSUERS": str(issuers_file),
            "CDS_HOOKS_AUTH": "enabled",
            "PUBLIC_BASE_URL": "http://localhost",  # the test client's host: the `aud` of every call
            "TESTING": True,
            **config,
        }
        return create_app(settings)

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    app = make_app()
    yield app
    app.extensions["decision_log"].close()


@pytest.fixture
def cds(app: Flask, ehr: Ehr) -> CdsClient:
    return CdsClient(app.test_client(), ehr)
