"""Schemathesis over every operation of GET /openapi.json, in process: the document and the service agree.

Property-based requests (valid and invalid) go to the real app on SQLite; every answer must be below 500,
have a status the operation documents, a documented content type and, where documented, a body that
validates. 4xx bodies are RFC 9457 problems on the JSON API and FHIR OperationOutcomes on CDS Hooks.
Bounded examples per operation so that it runs in CI in seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service import create_app

from .conftest import write_ruleset

CDS_DATA = Path(__file__).resolve().parents[1] / "cds" / "data"
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The format example and the CDS fixture ruleset (with its FHIR mapping), CDS Hooks auth off."""
    base: Path = tmp_path_factory.mktemp("openapi-fuzz")
    folder = base / "rulesets"
    write_ruleset(folder)
    for name in ("cds-fixture.yaml", "cds-fixture.fhir.yaml"):
        shutil.copy(CDS_DATA / name, folder / name)
    return create_app(
        {
            "RULESETS_DIR": str(folder),
            "INSTANCE_PATH": str(base / "instance"),
            "CDS_HOOKS_AUTH": "disabled",
            "TESTING": True,
        }
    )


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


def media_type(response: Any) -> str:
    headers = {name.lower(): value for name, value in response.headers.items()}
    value = headers.get("content-type", [""])
    return (value[0] if isinstance(value, list) else value).split(";")[0].strip().lower()


def assert_error_body(path: str, response: Any) -> None:
    """4xx bodies: OperationOutcome on CDS Hooks, problem+json elsewhere (304 and the like have none)."""
    if not 400 <= response.status_code < 500:
        return
    media = media_type(response)
    if path.startswith("/cds-services"):
        assert media in {"application/fhir+json", "application/json"}, media
        assert response.json()["resourceType"] == "OperationOutcome", response.text
    else:
        assert media == "application/problem+json", (media, response.text)
        body = response.json()
        assert body["status"] == response.status_code and body["title"], response.text


SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_every_operation_agrees_with_the_document(api_schema: Any) -> None:
    """One bounded Hypothesis run per operation (schemathesis' lazy pytest loader does not work with pytest 9)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @SETTINGS
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call()
            # Bodies are checked against their schema when they are JSON; the YAML source is text, and
            # schemathesis would parse it before comparing it with `type: string`.
            checks = [*CHECKS, response_schema_conformance] if media_type(response).endswith("json") else CHECKS
            case.validate_response(response, checks=checks)
            assert_error_body(case.operation.path, response)

        run()
