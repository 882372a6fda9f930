"""A CDS Hooks 2.0.1 client following the HL7 sandbox's flow, against the real gunicorn with two workers.

The client does what cds-hooks/sandbox does (reference §2.1): a CORS preflight from its browser origin,
discovery with an ES384 JWT (iss, aud, exp = now + 300, jti, kid and jku headers), the prefetch it runs
itself against its FHIR server (sending only the keys that returned data), the hook call, and feedback on
a dismissed card to `{service}/feedback` with a JWT for that URL. Replays are refused whichever worker
process a request reaches, because the seen-jti table is in the shared database.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select

from bench.server import gunicorn
from service.decisions.models import Feedback

from .conftest import RULESET_ID, write_issuers
from .helpers import Ehr, EhrKey, FhirStandIn, assert_conformant, condition, med_request, observation, patient

SANDBOX = "https://sandbox.cds-hooks.org"
TOKEN = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")

pytestmark = pytest.mark.slow


class Sandbox:
    """The sandbox as a CDS client: its key, its FHIR server, its calls."""

    def __init__(self, base: str, fhir: FhirStandIn) -> None:
        self.base = base
        self.fhir = fhir
        self.ehr = Ehr(SANDBOX, [EhrKey.generate("ES384", kid="44823f3d-0b01-4a6c-a80e-b9d3e8a7226f")])

    def headers(self, url: str, token: str | None = None) -> dict[str, str]:
        token = token or self.ehr.token(url, headers={"jku": f"{SANDBOX}/.well-known/jwks.json"})
        return {"Authorization": f"Bearer {token}", "Origin": SANDBOX, "Accept": "application/json"}

    def discover(self) -> list[dict[str, Any]]:
        url = f"{self.base}/cds-services"
        preflight = requests.options(
            url,
            headers={
                "Origin": SANDBOX,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
            timeout=10,
        )
        assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == SANDBOX
        resp = requests.get(url, headers=self.headers(url), timeout=10)
        assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == SANDBOX
        services = resp.json()["services"]
        assert services, "the sandbox treats an empty list of services as a failure"
        for s in services:
            assert all(isinstance(s[k], str) and s[k] for k in ("hook", "id", "description", "title"))
        return services

    def prefetch(self, service: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """Run the templates as the sandbox does; keys whose query returns nothing are not sent."""
        user_type, _, user_id = context["userId"].partition("/")
        values = {f"context.{k}": v for k, v in context.items() if isinstance(v, str)}
        values[f"user{user_type}Id"] = user_id
        out = {}
        for key, template in service.get("prefetch", {}).items():
            tokens = TOKEN.findall(template)
            if any(t not in values for t in tokens):
                continue
            query = TOKEN.sub(lambda m: values[m.group(1)], template)
            resp = requests.get(
                f"{self.fhir.base}/{query}", headers={"Authorization": f"Bearer {self.fhir.token}"}, timeout=10
            )
            if resp.status_code != 200:
                continue
            body = resp.json()
            if body.get("resourceType") == "Bundle" and not body.get("entry"):
                continue
            out[key] = body
        return out

    def call(self, service: dict[str, Any], context: dict[str, Any]) -> requests.Response:
        url = f"{self.base}/cds-services/{service['id']}"
        body = {
            "hookInstance": str(uuid.uuid4()),
            "hook": service["hook"],
            "fhirServer": self.fhir.base,
            "context": context,
            "prefetch": self.prefetch(service, context),
        }
        return requests.post(url, json=body, headers=self.headers(url), timeout=30)

    def dismiss(
        self, service: dict[str, Any], card: dict[str, Any], reason: dict[str, Any], stamp: str
    ) -> requests.Response:
        url = f"{self.base}/cds-services/{service['id']}/feedback"
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": {"code": reason["code"], "system": reason["system"]}},
            "outcomeTimestamp": stamp,
        }
        return requests.post(url, json={"feedback": [item]}, headers=self.headers(url), timeout=10)


def test_sandbox_flow_under_gunicorn(tmp_path: Path, rulesets_dir: Path) -> None:
    fhir = FhirStandIn(
        "sandbox-smart-token",
        [
            patient("smart-1288992", gender="female", birth="1985-08-01"),
            condition("L64.9", pid="smart-1288992"),
            condition("E87.5", pid="smart-1288992"),
            med_request("11289", rid="warf", pid="smart-1288992"),
            observation(
                "82810-3", "LA26683-5", (dt.date.today() - dt.timedelta(days=2)).isoformat(), pid="smart-1288992"
            ),
        ],
    )
    sandbox = Sandbox("", fhir)  # its base URL is known once gunicorn listens
    issuers = write_issuers(tmp_path / "issuers.json", [{"iss": SANDBOX, "jwks": sandbox.ehr.jwks}])
    with socket.socket() as probe:  # PUBLIC_BASE_URL (the JWTs' `aud`) must name the port before gunicorn starts
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CDS_HOOKS_ISSUERS": str(issuers),
        "CDS_HOOKS_CORS_ORIGINS": SANDBOX,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DECISION_HMAC_KEY": "sandbox-flow-test-key-" + "x" * 20,
    }
    try:
        with gunicorn(rulesets_dir, workers=2, env=env) as server:
            sandbox.base = server.url
            services = {s["hook"]: s for s in sandbox.discover()}
            assert services["patient-view"]["id"] == f"{RULESET_ID}-patient-view"

            context = {"userId": "Practitioner/COREPRACTITIONER1", "patientId": "smart-1288992"}
            resp = sandbox.call(services["patient-view"], context)
            assert resp.status_code == 200, resp.text
            assert resp.headers["Access-Control-Allow-Origin"] == SANDBOX
            cards = assert_conformant(resp.json())
            excluded = next(c for c in cards if c["summary"].startswith("Not suitable"))
            assert "Spironolactone" in excluded["detail"] and "Platelet-rich plasma" in excluded["detail"]

            # Rx View: the clinician picks spironolactone; hyperkalaemia excludes it whatever else is missing.
            draft = {**med_request("200820", rid="rx-1", pid="smart-1288992"), "status": "draft"}
            order_context = {
                **context,
                "selections": ["MedicationRequest/rx-1"],
                "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]},
            }
            resp = sandbox.call(services["order-select"], order_context)
            assert resp.status_code == 200, resp.text
            order_cards = assert_conformant(resp.json())
            assert [c["indicator"] for c in order_cards] == ["critical"]

            # Dismissing a card with one of its reasons sends feedback; a resent report is stored once.
            reason = excluded["overrideReasons"][0]
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for _ in range(2):
                assert sandbox.dismiss(services["patient-view"], excluded, reason, stamp).status_code == 200

            # The same JWT, sent again and again, is accepted once whichever worker takes it.
            url = f"{server.url}/cds-services"
            token = sandbox.ehr.token(url)
            statuses = [
                requests.get(url, headers=sandbox.headers(url, token), timeout=10).status_code for _ in range(8)
            ]
            assert statuses.count(200) == 1 and statuses.count(401) == 7, statuses
            workers = set(re.findall(r"Booting worker with pid: (\d+)", server.log()))
            assert len(workers) == 2
            assert "sandbox-smart-token" not in server.log()
    finally:
        fhir.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'instance' / 'decisions.sqlite3'}")
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(Feedback)).scalar_one()
    engine.dispose()
    assert stored == 1
