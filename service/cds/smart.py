"""SMART App Launch (EHR launch, HL7 SMART App Launch 2.x) of the clinician form: no Flask here.

The EHR opens `.../smart/<ruleset>/launch?iss=<its FHIR base>&launch=<opaque>`. The service reads the
server's `.well-known/smart-configuration`, sends the browser to its authorization endpoint (authorization
code with PKCE S256, `launch` and `aud`, scopes `launch openid fhirUser` and read access to the patient's
data), exchanges the code at its token endpoint (the code verifier, no client secret: a public client),
and reads the launched patient's data with the access token through the same FHIR mapping and reader as
the CDS Hooks services. Only `iss` and `launch` (and on the way back `code` and `state`) are ever in a URL;
the facts go into the form that is rendered, never into a link. The access token is used for that one
read and never stored or logged. Only configured issuers are trusted (SMART_ISSUERS), and only over https
(plain http to this machine only, for tests and local trials).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from ..errors import MessageError
from .urls import secure_enough

SCOPES = (
    "launch openid fhirUser patient/Patient.read patient/Condition.read patient/Observation.read "
    "patient/Procedure.read patient/MedicationRequest.read patient/MedicationStatement.read "
    "patient/Medication.read"
)
MAX_BYTES = 256 * 1024


class SmartError(MessageError):
    """The launch cannot go on; the message names no token and no patient data."""

    status = 502
    title = "SMART launch failed"


@dataclass(frozen=True)
class Endpoints:
    authorize: str
    token: str


@dataclass(frozen=True)
class Grant:
    """What the token endpoint gave: the access token (transient) and the launched patient's id."""

    access_token: str
    patient: str
    scope: str
    expires_in: int


def discover(iss: str, timeout: float) -> Endpoints:
    """The authorization and token endpoints of `iss` (its .well-known/smart-configuration)."""
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    try:
        with requests.Session() as http:
            http.trust_env = False
            resp = http.get(
                url, timeout=(timeout, timeout), allow_redirects=False, headers={"Accept": "application/json"}
            )
            body = json.loads(resp.content[:MAX_BYTES]) if resp.status_code == 200 else None
    except (requests.RequestException, ValueError):
        body = None
    if not isinstance(body, dict):
        raise SmartError("the EHR's SMART configuration could not be read")
    authorize, token = body.get("authorization_endpoint"), body.get("token_endpoint")
    usable = [u for u in (authorize, token) if isinstance(u, str) and secure_enough(u)]
    if len(usable) != 2:
        raise SmartError("the EHR's SMART configuration names no usable (https) authorization and token endpoints")
    methods = body.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SmartError("the EHR's authorization server does not support PKCE with S256")
    return Endpoints(usable[0], usable[1])


def authorization_request(
    endpoints: Endpoints, client_id: str, redirect_uri: str, iss: str, launch: str
) -> tuple[str, str, str]:
    """(URL to send the browser to, state, code verifier): the verifier stays with us until the exchange."""
    verifier = generate_token(64)
    oauth = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=SCOPES, code_challenge_method="S256")
    url, state = oauth.create_authorization_url(endpoints.authorize, code_verifier=verifier, launch=launch, aud=iss)
    return url, state, verifier


def exchange(
    endpoints: Endpoints, client_id: str, redirect_uri: str, code: str, verifier: str, timeout: float
) -> Grant:
    """The code and verifier for a token; the response must name the launched patient (`launch/patient`)."""
    oauth = OAuth2Session(
        client_id,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",  # noqa: S106 - a public client: no secret, PKCE instead
    )
    oauth.trust_env = False
    try:
        token: dict[str, Any] = oauth.fetch_token(
            endpoints.token, code=code, code_verifier=verifier, timeout=timeout, allow_redirects=False
        )
    except Exception as exc:  # authlib raises many kinds; none may leak the token or the code
        raise SmartError(f"the EHR's token endpoint refused the code ({type(exc).__name__})") from None
    finally:
        oauth.close()
    access, patient = token.get("access_token"), token.get("patient")
    if str(token.get("token_type", "")).lower() != "bearer" or not isinstance(access, str) or not access:
        raise SmartError("the EHR's token endpoint gave no bearer access token")
    if not isinstance(patient, str) or not patient:
        raise SmartError("the launch gave no patient (the EHR must grant launch/patient)")
    expires = token.get("expires_in")
    return Grant(access, patient, str(token.get("scope") or ""), expires if isinstance(expires, int) else 300)


def hook_body(iss: str, client_id: str, grant: Grant) -> dict[str, Any]:
    """The launch as the CDS Hooks reader knows a call: no prefetch, the FHIR server and its token."""
    return {
        "fhirServer": iss,
        "fhirAuthorization": {
            "access_token": grant.access_token,
            "token_type": "Bearer",
            "expires_in": grant.expires_in,
            "scope": grant.scope,
            "subject": client_id,
            "patient": grant.patient,
        },
        "context": {"patientId": grant.patient},
        "prefetch": {},
    }
