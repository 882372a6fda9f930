"""Prefetch data, key by key, as CDS Hooks 2.0.1 says a service must read it ("Prefetch Template").

For each key of the mapping's templates:
- present, a resource or a Bundle    -> the data (a Bundle with a `next` link is followed on the FHIR server,
                                         or counts as incomplete);
- present, `null`, or an empty Bundle -> the client has no data: read in full, nothing found;
- present, an OperationOutcome        -> the client failed to prefetch: fetch it from the FHIR server;
- absent                              -> not prefetched: fetch it from the FHIR server.
The FHIR server is used only when the request carries `fhirServer` and `fhirAuthorization`. A key the
mapping marks `required` that ends up unavailable answers 412 with an OperationOutcome naming the key.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .extract import FhirData
from .fhirclient import FhirClient, Unavailable, bundle_resources, next_link
from .mapping import TOKEN, FhirMapping, Template
from .outcome import Issue, OutcomeError, is_operation_outcome

log = logging.getLogger(__name__)


@dataclass
class KeyResult:
    state: str  # prefetched | fetched | none | unavailable
    resources: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True


def token_values(context: dict[str, Any]) -> dict[str, str]:
    """What each prefetch token stands for in this call (user tokens come from `context.userId`)."""
    values = {f"context.{k}": v for k, v in context.items() if isinstance(v, str)}
    user_type, _, user_id = str(context.get("userId", "")).partition("/")
    if user_id:
        values[f"user{user_type}Id"] = user_id
    return values


def resolve(template: Template, values: dict[str, str]) -> str | None:
    if any(t not in values for t in template.tokens):
        return None
    return TOKEN.sub(lambda m: values[m.group(1)], template.query)


def gather(mapping: FhirMapping, body: dict[str, Any], timeout: float) -> tuple[FhirData, dict[str, KeyResult]]:
    """The FHIR data for one call; raises OutcomeError(412) if a required key cannot be obtained."""
    context = body["context"]
    prefetch = body.get("prefetch") or {}
    patient_id = context["patientId"]
    results: dict[str, KeyResult] = {}
    to_fetch: list[Template] = []
    for key, template in mapping.prefetch.items():
        if key in prefetch:
            result = _from_prefetch(template, prefetch[key], patient_id)
            if result is not None:
                results[key] = result
                continue
        to_fetch.append(template)

    server, auth = body.get("fhirServer"), body.get("fhirAuthorization")
    if to_fetch and server and auth:
        values = token_values(context)
        client = FhirClient(server, auth["access_token"], timeout)
        try:
            with ThreadPoolExecutor(max_workers=min(4, len(to_fetch))) as pool:
                fetched = list(pool.map(lambda t: _fetch(client, t, values, patient_id), to_fetch))
        finally:
            client.close()
        results.update({t.key: r for t, r in zip(to_fetch, fetched, strict=True)})
    for template in to_fetch:
        results.setdefault(template.key, KeyResult("unavailable", complete=False))
    # A Bundle prefetched with a `next` link: follow it when the server can be read.
    _complete_pages(mapping, prefetch, results, body, timeout)

    missing = [t.key for t in mapping.prefetch.values() if t.required and results[t.key].state == "unavailable"]
    if missing:
        raise OutcomeError(
            412,
            [
                Issue(
                    f"CDS Hooks prefetch key '{key}' was absent or an OperationOutcome, and the FHIR server could not "
                    f"be read (give fhirServer and fhirAuthorization, or prefetch `{mapping.prefetch[key].query}`).",
                    code="processing",
                    expression=f"prefetch.{key}",
                )
                for key in missing
            ],
        )
    return _data(mapping, results), results


def _from_prefetch(template: Template, value: Any, patient_id: str) -> KeyResult | None:
    """The prefetched value of a key, or None when it is an OperationOutcome (to be fetched instead)."""
    where = f"prefetch.{template.key}"
    if value is None:
        return KeyResult("none")
    if not isinstance(value, dict):
        raise OutcomeError(400, [Issue(f"{where}: must be a FHIR resource, a Bundle or null", expression=where)])
    if is_operation_outcome(value):
        return None
    if value.get("resourceType") == "Bundle":
        resources = bundle_resources(value)
        complete = next_link(value) is None
    else:
        resources = [value]
        complete = True
    for resource in resources:
        _check_patient(resource, patient_id, where)
    return KeyResult("prefetched" if resources else "none", resources, complete)


def _check_patient(resource: dict[str, Any], patient_id: str, where: str) -> None:
    """Data about another patient must never be used: refuse the request rather than guess."""
    if resource.get("resourceType") == "Patient":
        ok = resource.get("id") == patient_id
    else:
        refs = [
            (resource.get(k) or {}).get("reference")
            for k in ("subject", "patient")
            if isinstance(resource.get(k), dict)
        ]
        refs = [r for r in refs if isinstance(r, str) and r.startswith("Patient/")]
        ok = all(r == f"Patient/{patient_id}" for r in refs)
    if not ok:
        raise OutcomeError(
            400, [Issue(f"{where}: holds data of a patient other than context.patientId", expression=where)]
        )


def _fetch(client: FhirClient, template: Template, values: dict[str, str], patient_id: str) -> KeyResult:
    relative = resolve(template, values)
    if relative is None:
        return KeyResult("unavailable", complete=False)
    try:
        if template.read:
            resource = client.read(relative)
            resources = [resource] if resource else []
            complete = True
        else:
            resources, complete = client.search(relative)
    except Unavailable as exc:
        log.warning("prefetch key %s: FHIR server unavailable: %s", template.key, exc)
        return KeyResult("unavailable", complete=False)
    for resource in resources:
        _check_patient(resource, patient_id, f"FHIR server answer for {template.key}")
    return KeyResult("fetched" if resources else "none", resources, complete)


def _complete_pages(
    mapping: FhirMapping, prefetch: dict[str, Any], results: dict[str, KeyResult], body: dict[str, Any], timeout: float
) -> None:
    server, auth = body.get("fhirServer"), body.get("fhirAuthorization")
    pending = [k for k, r in results.items() if r.state == "prefetched" and not r.complete]
    if not pending or not (server and auth):
        return
    client = FhirClient(server, auth["access_token"], timeout)
    try:
        for key in pending:
            url = next_link(prefetch[key])
            try:
                more, complete = client.search(url) if url else ([], False)
            except Unavailable as exc:
                log.warning("prefetch key %s: next page unavailable: %s", key, exc)
                continue
            for resource in more:
                _check_patient(resource, body["context"]["patientId"], f"prefetch.{key}")
            results[key].resources.extend(more)
            results[key].complete = complete
    finally:
        client.close()


def _data(mapping: FhirMapping, results: dict[str, KeyResult]) -> FhirData:
    data = FhirData()
    incomplete_types: set[str] = set()
    for key, result in results.items():
        rtype = mapping.prefetch[key].resource_type
        if result.state == "unavailable" or not result.complete:
            incomplete_types.add(rtype)
        for resource in result.resources:
            data.resources.setdefault(str(resource.get("resourceType")), []).append(resource)
        data.complete.add(rtype)
    data.complete -= incomplete_types
    return data
