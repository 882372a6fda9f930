"""What the CDS Hooks tests share: EHR keys and signed JWTs, a CDS client, and small loopback servers.

Everything is real: ES384/RS384 keys generated with `cryptography`, tokens signed by PyJWT, a FHIR
server and a JWKS host speaking HTTP on 127.0.0.1 with an OS-chosen port.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask.testing import FlaskClient

BASE = "http://localhost"  # the Flask test client's host: the audience of every call


@dataclass
class EhrKey:
    """One signing key of an EHR, with its public JWK."""

    alg: str
    kid: str
    private: Any

    @classmethod
    def generate(cls, alg: str = "ES384", kid: str | None = None) -> EhrKey:
        if alg == "ES384":
            private: Any = ec.generate_private_key(ec.SECP384R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(alg, kid or f"{alg.lower()}-{uuid.uuid4()}", private)

    @property
    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.ECAlgorithm if self.alg == "ES384" else jwt.algorithms.RSAAlgorithm
        data = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}


@dataclass
class Ehr:
    """An EHR as a CDS client: an issuer and its keys."""

    iss: str
    keys: list[EhrKey]

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in self.keys]}

    def token(
        self,
        aud: str | list[str],
        *,
        key: EhrKey | None = None,
        lifetime: int = 300,
        iat: int | None = None,
        jti: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = key or self.keys[0]
        now = int(time.time()) if iat is None else iat
        payload = {"iss": self.iss, "aud": aud, "iat": now, "exp": now + lifetime, "jti": jti or uuid.uuid4().hex}
        payload.update(claims)
        header = {"kid": key.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(payload, key.private, algorithm=key.alg, headers=header)


@dataclass
class CdsClient:
    """Calls the service the way an EHR does: a fresh signed JWT whose `aud` is the URL called."""

    client: FlaskClient
    ehr: Ehr

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self._auth(path, kw.pop("token", None)), **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        headers = {**self._auth(path, kw.pop("token", None)), **kw.pop("headers", {})}
        return self.client.post(path, json=body, headers=headers, **kw)

    def _auth(self, path: str, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.ehr.token(BASE + path)}"}


def hook_request(hook: str, patient_id: str = "p1", **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/dr-1", "patientId": patient_id}
    context.update(extra.pop("context", {}))
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, **extra}


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        out["link"] = [{"relation": "next", "url": next_url}]
    return out


def patient(pid: str = "p1", gender: str | None = "male", birth: str | None = "1980-05-01") -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if gender:
        out["gender"] = gender
    if birth:
        out["birthDate"] = birth
    return out


def coded(system: str, code: str, display: str = "") -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}


def condition(code: str, system: str = ICD10, pid: str = "p1", status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c-{code}",
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/condition-clinical", status),
        "code": coded(system, code),
    }


def med_request(code: str, rid: str = "m1", pid: str = "p1", status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": coded(RXNORM, code),
    }


def observation(code: str, answer: str, when: str, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o-{code}-{answer}",
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": coded(LOINC, code),
        "effectiveDateTime": when,
        "valueCodeableConcept": coded(LOINC, answer),
    }


# ---- loopback servers ------------------------------------------------------------------------------


@dataclass
class Served:
    """A threaded HTTP server on 127.0.0.1, stopped by `close`."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(handle: Callable[[str, dict[str, str]], tuple[int, Any]]) -> Served:
    """Serve GET requests with `handle(path_and_query, headers) -> (status, json body)`."""
    served: Served

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            served.requests.append({"path": self.path, "headers": headers})
            status, body = handle(self.path, headers)
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    served = Served(server, thread)
    thread.start()
    return served


class FhirStandIn:
    """A small FHIR R4 server: `Type/id` reads and `Type?patient=...` searches over an in-memory store.

    It answers 401 unless the request carries `Authorization: Bearer <token>`, pages search results by
    `page_size` with `next` links, and can be told to fail (500) for chosen resource types.
    """

    def __init__(self, token: str, resources: list[dict[str, Any]], page_size: int = 50) -> None:
        self.token = token
        self.resources = resources
        self.page_size = page_size
        self.failing: set[str] = set()
        self.served = serve(self._handle)

    @property
    def base(self) -> str:
        return self.served.url + "/fhir"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.served.requests

    def close(self) -> None:
        self.served.close()

    def _handle(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}
        parts = urlsplit(path)
        route = parts.path.removeprefix("/fhir/")
        rtype, _, rid = route.partition("/")
        if rtype in self.failing:
            return 500, OUTCOME
        if rid:
            found = [r for r in self.resources if r["resourceType"] == rtype and r.get("id") == rid]
            return (200, found[0]) if found else (404, None)
        query = parse_qs(parts.query)
        pid = query.get("patient", [""])[0]
        matches = [
            r
            for r in self.resources
            if r["resourceType"] == rtype and (r.get("subject") or {}).get("reference") == f"Patient/{pid}"
        ]
        if "code" in query:
            wanted = query["code"][0].split("|")[-1]
            matches = [r for r in matches if any(c.get("code") == wanted for c in r["code"]["coding"])]
        offset = int(query.get("_offset", ["0"])[0])
        page = matches[offset : offset + self.page_size]
        nxt = None
        if offset + self.page_size < len(matches):
            nxt = f"{self.base}/{rtype}?patient={pid}&_offset={offset + self.page_size}"
        return 200, bundle(*page, next_url=nxt)


# ---- card conformance (CDS Hooks 2.0.1 "CDS Service Response", Inferno's card checks) ----------------


def empty_members(value: Any, path: str = "") -> list[str]:
    """JSON paths of null or empty members (CDS Hooks: optional members without a value are omitted)."""
    if isinstance(value, dict):
        out = [f"{path}.{k}" for k, v in value.items() if v in (None, "", [], {})]
        return out + [p for k, v in value.items() for p in empty_members(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_members(v, f"{path}[{i}]")]
    return []


def assert_conformant(body: Any) -> list[dict[str, Any]]:
    """A 200 response body of a CDS service call; returns its cards."""
    assert isinstance(body, dict) and set(body) == {"cards"}, body
    cards = body["cards"]
    assert isinstance(cards, list)
    assert not empty_members(cards), empty_members(cards)
    uuids = [c.get("uuid") for c in cards]
    assert len(set(uuids)) == len(uuids)
    for card in cards:
        assert str(uuid.UUID(card["uuid"])) == card["uuid"]
        summary = card["summary"]
        assert isinstance(summary, str) and 0 < len(summary) <= 139 and "\n" not in summary, summary
        assert card["indicator"] in ("info", "warning", "critical")
        source = card["source"]
        assert isinstance(source["label"], str) and source["label"]
        assert source["url"].startswith(("http://", "https://"))
        assert {"system", "code", "display"} <= set(source["topic"])
        detail = card.get("detail", "")
        assert isinstance(detail, str) and "<" not in detail and ">" not in detail.replace("&gt;", "")
        for link in card.get("links", []):
            assert (
                link["label"]
                and link["url"].startswith(("http://", "https://"))
                and link["type"] in ("absolute", "smart")
            )
            assert "appContext" not in link
        for reason in card.get("overrideReasons", []):
            assert reason["system"] and reason["code"] and reason["display"]
        if "suggestions" in card:
            assert card["selectionBehavior"] in ("at-most-one", "any")
        assert set(card) <= {
            "uuid",
            "summary",
            "detail",
            "indicator",
            "source",
            "suggestions",
            "selectionBehavior",
            "overrideReasons",
            "links",
        }
    return cards
