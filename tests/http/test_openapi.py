"""GET /openapi.json validates, lists every route, and tells the truth about real responses; GET /docs works."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import FormatChecker
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from service.answering import prepare
from service.engine.answer import Decision, Warning, WarningKind, to_json
from service.http.openapi import openapi_path
from service.http.ops.docs import assets_dir
from service.ruleset import load_text
from service.ruleset.validator import profile_validator

from .conftest import MINIMAL, RULESET_ID, VALID_PROFILE, write_ruleset

NOT_API = {"static", "docs.asset", "docs.init_script"}  # files, not endpoints
IGNORED_METHODS = {"HEAD", "OPTIONS"}
HTML_PAGES = ("pages.", "decision_pages.", "clinician.", "smart.")  # pages for people (and the SMART launch), not API


@pytest.fixture
def two_rulesets(make_app, tmp_path: Path) -> Flask:
    folder = tmp_path / "two"
    write_ruleset(folder)
    write_ruleset(folder, ruleset_id="format-example-b", status="testing")
    return make_app(folder)


def document(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return resp.get_json()


def conforms(doc: dict[str, Any], component: str, instance: Any) -> None:
    """Validate against a component schema, resolving $refs within the whole document."""
    root = {**doc, "$ref": f"#/components/schemas/{component}"}
    OAS31Validator(root, format_checker=FormatChecker()).validate(instance)


def test_document_is_valid_openapi_31(client: FlaskClient) -> None:
    doc = document(client)
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_every_route_is_documented_and_nothing_else(app: Flask, client: FlaskClient) -> None:
    doc = document(client)
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in NOT_API and not rule.endpoint.startswith(HTML_PAGES):
            routes.setdefault(openapi_path(rule.rule), set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    documented = {path: set(ops) & {"get", "post", "put", "patch", "delete"} for path, ops in doc["paths"].items()}
    assert documented == routes


def test_one_profile_schema_per_ruleset(two_rulesets: Flask) -> None:
    doc = document(two_rulesets.test_client())
    validate(doc)
    schemas = doc["components"]["schemas"]
    for rid in ("format-example", "format-example-b"):
        profile = schemas[f"Profile.{rid}"]
        assert list(profile["properties"]) == ["age", "diagnosis", "pregnant", "conditions"]
        assert profile["required"] == ["age", "diagnosis"]
        assert profile["additionalProperties"] is False
        assert profile["properties"]["diagnosis"]["enum"] == ["confirmed", "uncertain"]
        assert profile["properties"]["age"] | {} == {**profile["properties"]["age"], "minimum": 0, "maximum": 120}
        assert profile["properties"]["conditions"]["uniqueItems"] is True
        assert profile["properties"]["conditions"]["x-value-labels"]["heart_failure"] == "Heart failure"
    body = doc["paths"]["/v1/evaluations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {
        "oneOf": [
            {"$ref": "#/components/schemas/EvaluationRequest.format-example"},
            {"$ref": "#/components/schemas/EvaluationRequest.format-example-b"},
        ]
    }
    # Only the default (the one production ruleset) may be used without naming it.
    assert "ruleset" not in schemas["EvaluationRequest.format-example"].get("required", [])
    assert "ruleset" in schemas["EvaluationRequest.format-example-b"]["required"]


def test_examples_are_valid_requests(client: FlaskClient) -> None:
    doc = document(client)
    for path, component in (("/v1/evaluations", "EvaluationRequest"), ("/v1/evaluations:batch", "BatchRequest")):
        content = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert content["examples"]
        for example in content["examples"].values():
            conforms(doc, f"{component}.{RULESET_ID}", example["value"])
            assert client.post(path, json=example["value"]).status_code == 200


def test_real_responses_match_the_document(client: FlaskClient) -> None:
    doc = document(client)
    conforms(doc, "RulesetList", client.get("/v1/rulesets").get_json())
    conforms(doc, "RulesetDetail", client.get(f"/v1/rulesets/{RULESET_ID}").get_json())
    profiles = [
        VALID_PROFILE,
        {"age": 40, "diagnosis": "confirmed", "pregnant": True, "conditions": ["heart_failure"]},
        {"age": 12, "diagnosis": "uncertain"},
    ]
    for profile in profiles:
        for explain in (False, True):
            d = client.post("/v1/evaluations", json={"profile": profile, "explain": explain}).get_json()
            conforms(doc, "Decision", d)
    batch = client.post("/v1/evaluations:batch", json={"profiles": [*profiles, {"age": "x"}]}).get_json()
    conforms(doc, "BatchResponse", batch)
    assert "error" in batch["decisions"][-1]
    conforms(doc, "Problem", client.post("/v1/evaluations", json={"profile": {}}).get_json())
    conforms(doc, "Health", client.get("/healthz").get_json())
    conforms(doc, "Readiness", client.get("/readyz").get_json())


def test_document_follows_a_reload(app: Flask, client: FlaskClient, rulesets_dir: Path) -> None:
    assert "Profile.format-example-b" not in document(client)["components"]["schemas"]
    write_ruleset(rulesets_dir, ruleset_id="format-example-b", status="testing")
    app.extensions["registry"].reload()
    assert "Profile.format-example-b" in document(client)["components"]["schemas"]


def test_docs_page_uses_local_assets(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<script src="/docs/swagger-ui-bundle.js">' in html
    assert "http" not in html.replace("http-equiv", "")  # nothing from another origin
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    init = client.get("/docs/init.js")
    assert init.status_code == 200 and '"/openapi.json"' in init.get_data(as_text=True)
    with client.get("/docs/swagger-ui-bundle.js") as bundle:  # file responses must be closed
        assert bundle.status_code == 200
        assert bundle.data == (assets_dir() / "swagger-ui-bundle.js").read_bytes()
    with client.get("/docs/swagger-ui.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"


def test_docs_serves_a_swagger_ui_that_renders_openapi_31() -> None:
    # Swagger UI before 5.0 refuses `openapi: 3.1.0` documents.
    version = (assets_dir() / "VERSION").read_text().strip().lstrip("v")
    assert int(version.split(".")[0]) >= 5


@pytest.mark.parametrize("name", ["VERSION", "LICENSE", "..%2F__init__.py", "oauth2-redirect.html", "nope.js"])
def test_docs_serves_only_its_assets(client: FlaskClient, name: str) -> None:
    assert client.get(f"/docs/{name}").status_code == 404


def test_decision_schema_is_generated_from_the_type_and_validates_every_kind_of_answer(app: Flask) -> None:
    doc = document(app.test_client())
    schemas = doc["components"]["schemas"]
    # One enumeration of warning kinds, the engine's own: missing_required (partial decisions) included.
    assert schemas["Warning"]["properties"]["kind"]["enum"] == [k.value for k in WarningKind]
    assert set(schemas["Decision"]["properties"]) == {f.name for f in dataclasses.fields(Decision)}
    registry = app.extensions["registry"]
    answers = []
    for profile, partial in (
        (VALID_PROFILE, False),
        ({"age": 40, "diagnosis": "confirmed", "pregnant": True, "conditions": ["heart_failure"]}, False),
        ({"age": 12, "diagnosis": "uncertain"}, False),
        ({"age": 30, "diagnosis": "confirmed"}, False),  # pregnancy not recorded: unknown_inputs warnings
        ({"pregnant": True}, True),  # required facts missing: a partial decision
        ({"age": 30}, True),
    ):
        for explain in (False, True):
            answers.append(to_json(prepare(registry, RULESET_ID, profile, explain=explain, partial=partial).decision))
    # The lifecycle's warning needs a ruleset past its review date: the same answer, as the lifecycle marks it.
    decision = prepare(registry, RULESET_ID, VALID_PROFILE).decision
    overdue = Warning(kind=WarningKind.REVIEW_OVERDUE, text="Review overdue: this ruleset was due for review on ...")
    answers.append(to_json(dataclasses.replace(decision, warnings=(*decision.warnings, overdue))))
    kinds = {w["kind"] for a in answers for w in a["warnings"]}
    assert kinds == {k.value for k in WarningKind}
    assert any("partial" in a for a in answers) and any("explanation" in a for a in answers)
    for answer in answers:
        conforms(doc, "Decision", answer)


def test_document_holds_when_the_validator_cache_lets_a_revision_go(make_app, client: FlaskClient) -> None:
    # A long-running service (or this test suite) loads more revisions than the profile validator keeps;
    # its schema is then built again, and the request envelopes must nest that new class, not the old one
    # (two different schemas named Profile.<id> made the document a 500).
    before = document(client)
    text = MINIMAL.read_text(encoding="utf-8")
    for i in range(80):
        profile_validator(load_text(re.sub(r"(?m)^version: .*$", f'version: "9.{i}.0"', text)))
    after = document(make_app().test_client())
    assert after["components"]["schemas"].keys() == before["components"]["schemas"].keys()
