"""Schemathesis over every operation of GET /openapi.json, in process: the document and the service agree.

Property-based requests (valid and invalid) go to the real app on SQLite; every answer must be below 500,
have a status the operation documents, a documented content type and, where documented, a body that
validates. 4xx bodies are RFC 9457 problems on the JSON API and FHIR OperationOutcomes on CDS Hooks.
Bounded examples per operation so that it runs in CI in seconds.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service import create_app

from .conftest import RULESET_ID, VALID_PROFILE, write_ruleset

CDS_RULESET_ID = "cds-fixture"
CDS_DATA = Path(__file__).resolve().parents[1] / "cds" / "data"
# One token per role: each operation is called with a credential its `security` accepts, so that the
# fuzzing reaches the operation itself (refusals are tested in test_roles.py and test_limits.py).
TOKENS = {scheme: f"fuzz-{scheme}-token" for scheme in ("integrationToken", "auditorToken", "adminToken")}
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance]


def digest(scheme: str) -> str:
    return hashlib.sha256(TOKENS[scheme].encode()).hexdigest()


def credential(operation: Any) -> dict[str, str]:
    """An Authorization header for the first role the operation's `security` names (none: no header)."""
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            if scheme in TOKENS:
                return {"Authorization": f"Bearer {TOKENS[scheme]}"}
    return {}


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
            "INTEGRATION_TOKEN_HASHES": digest("integrationToken"),
            "AUDITOR_TOKEN_HASHES": digest("auditorToken"),
            "ADMIN_TOKEN_HASHES": digest("adminToken"),
            # Unlimited, or after 20 examples every operation would only answer 429 (itself documented).
            "RATE_LIMIT_EVALUATIONS": "off",
            "RATE_LIMIT_AUTH_FAILURES": "off",
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


def assert_error_body(method: str, path: str, response: Any) -> None:
    """4xx bodies: OperationOutcome on CDS Hooks (a refused credential: a bare 401), problem+json elsewhere,
    but for the one documented exception: a published ruleset the gate refused is its JSON report (422)."""
    status = response.status_code
    if not 400 <= status < 500:
        return
    media = media_type(response)
    if path.startswith("/cds-services"):
        if status == 401:
            assert not response.content, response.text
            return
        assert media in {"application/fhir+json", "application/json"}, media
        assert response.json()["resourceType"] == "OperationOutcome", response.text
    elif (method, path, status, media) == ("POST", "/v1/admin/rulesets", 422, "application/json"):
        assert response.json()["gate"]["ok"] is False, response.text
    else:
        assert media == "application/problem+json", (media, response.text)
        body = response.json()
        assert body["status"] == status and body["title"], response.text


SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def known_ids(fuzz_app: Flask) -> dict[str, list[str]]:
    """Path parameters that name something real (random ones only reach the 404), with a decision to read."""
    client = fuzz_app.test_client()
    services = client.get("/cds-services").get_json()["services"]
    answer = client.post(
        "/v1/evaluations",
        json={"ruleset": RULESET_ID, "profile": VALID_PROFILE},
        headers={"Authorization": f"Bearer {TOKENS['integrationToken']}"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {
        "service_id": [s["id"] for s in services],
        "ruleset_id": [RULESET_ID, CDS_RULESET_ID],
        "decision_id": [answer.get_json()["decision_id"]],
    }


def fuzz(operation: Any, known: dict[str, list[str]]) -> None:
    """One bounded Hypothesis run over one operation; most path parameters name a known resource."""
    headers = credential(operation)

    @SETTINGS
    @given(case=operation.as_strategy(), pick=st.integers(0, 7))
    def run(case: Any, pick: int) -> None:
        for name, values in known.items():
            if case.path_parameters and name in case.path_parameters and pick < 6:
                case.path_parameters[name] = values[pick % len(values)]
        response = case.call(headers=headers)
        # Bodies are checked against their schema when they are JSON; the YAML source is text, and
        # schemathesis would parse it before comparing it with `type: string`.
        checks = [*CHECKS, response_schema_conformance] if media_type(response).endswith("json") else CHECKS
        case.validate_response(response, checks=checks)
        assert_error_body(case.operation.method.upper(), case.operation.path, response)

    run()


def test_every_operation_agrees_with_the_document(fuzz_app: Flask, api_schema: Any) -> None:
    """One run per operation (schemathesis' lazy pytest loader, from_fixture, fails under pytest 9)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    known = known_ids(fuzz_app)
    for operation in operations:
        fuzz(operation, known)
