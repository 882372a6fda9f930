"""Prefetch data, key by key, as CDS Hooks 2.0.1 says a service must read it ("Prefetch Template").

For each key of the mapping's templates:
- present, a resource or a Bundle    -> the data (a Bundle with a `next` link is followed on the FHIR server,
                                         or counts as incomplete);
- present, `null`, or an empty Bundle -> the client has no data: read in full, nothing found;
- present, an OperationOutcome        -> the client failed to prefetch: fetch it from the FHIR server;
- absent                              -> not prefetched: fetch it from the FHIR server.
The FHIR server is used only when the request carries `fhirServer` and `fhirAuthorization`, and only over
https (or to this machine): a plain-http `fhirServer` is accepted but never sent the token. A key the
mapping marks `required` that ends up unavailable answers 412 with an OperationOutcome naming the key.

A `medicationReference` (in the prefetched requests and statements, and in `draftOrders`) that names
neither a contained resource nor a Bundle entry is read from the FHIR server when it can be. Every
resource must be about `context.patientId`, whatever the form of its patient reference (relative,
absolute, versioned, or a `urn:uuid` entry): data of another patient is refused with 400.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .extract import FhirData, Resolver, draft_entries, medication_references, parse_reference
from .fhirclient import FhirClient, Unavailable, bundle_resources, bundle_urls, next_link
from .mapping import TOKEN, FhirMapping, Template
from .outcome import Issue, OutcomeError, is_operation_outcome
from .urls import secure_enough

log = logging.getLogger(__name__)


@dataclass
class KeyResult:
    state: str  # prefetched | fetched | none | unavailable
    resources: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    urls: dict[str, dict[str, Any]] = field(default_factory=dict)  # Bundle entries by fullUrl


def usable_server(body: dict[str, Any]) -> tuple[str, str] | None:
    """(fhirServer, access token) when the server may be read: both given, and never a token over plain http."""
    server, auth = body.get("fhirServer"), body.get("fhirAuthorization")
    if server and auth and secure_enough(server):
        return server, auth["access_token"]
    return None


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

    reader = usable_server(body)
    if to_fetch and reader:
        values = token_values(context)
        client = FhirClient(reader[0], reader[1], timeout)
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
        plain = body.get("fhirServer") and body.get("fhirAuthorization") and reader is None
        why = " (fhirServer is plain http: the access token is never sent over it)" if plain else ""
        raise OutcomeError(
            412,
            [
                Issue(
                    f"CDS Hooks prefetch key '{key}' was absent or an OperationOutcome, and the FHIR server could not "
                    f"be read{why} (give an https fhirServer and fhirAuthorization, or prefetch "
                    f"`{mapping.prefetch[key].query}`).",
                    code="processing",
                    expression=f"prefetch.{key}",
                )
                for key in missing
            ],
        )
    data = _data(mapping, results)
    data.server = str(body.get("fhirServer") or "")
    drafts = draft_entries(context)
    for _url, resource in drafts:
        _check_patient(resource, patient_id, "context.draftOrders")
    for key, result in results.items():
        for resource in result.resources:
            _check_patient_urn(resource, patient_id, data, f"prefetch.{key}")
    _follow_medications(data, drafts, reader, timeout)
    return data, results


def _follow_medications(
    data: FhirData,
    drafts: list[tuple[str | None, dict[str, Any]]],
    reader: tuple[str, str] | None,
    timeout: float,
) -> None:
    """Read from the FHIR server the Medications that requests, statements and draft orders name but that
    neither the prefetch nor the draft orders hold (an absolute URL only when it is under fhirServer)."""
    if reader is None:
        return
    resolver = Resolver(data, drafts)
    wanted: dict[str, str] = {}
    items = [*data.of("MedicationRequest"), *data.of("MedicationStatement"), *(r for _u, r in drafts)]
    for resource in items:
        for ref in medication_references(resource):
            parts = parse_reference(ref)
            if resolver.resolve(ref, resource) is None and parts and parts[1] == "Medication":
                base = parts[0].rstrip("/")
                if not base or base == reader[0].rstrip("/"):
                    wanted[f"Medication/{parts[2]}"] = ref
    if not wanted:
        return
    client = FhirClient(reader[0], reader[1], timeout)
    try:
        for relative in list(wanted)[:20]:  # bounded: a call is not a crawl
            try:
                med = client.read(relative)
            except Unavailable as exc:
                log.warning("medicationReference %s: FHIR server unavailable: %s", relative.split("/")[0], exc)
                continue
            if isinstance(med, dict) and med.get("resourceType") == "Medication":
                data.resources.setdefault("Medication", []).append(med)
    finally:
        client.close()


def _from_prefetch(template: Template, value: Any, patient_id: str) -> KeyResult | None:
    """The prefetched value of a key, or None when it is an OperationOutcome (to be fetched instead)."""
    where = f"prefetch.{template.key}"
    if value is None:
        return KeyResult("none")
    if not isinstance(value, dict):
        raise OutcomeError(400, [Issue(f"{where}: must be a FHIR resource, a Bundle or null", expression=where)])
    if is_operation_outcome(value):
        return None
    urls: dict[str, dict[str, Any]] = {}
    if value.get("resourceType") == "Bundle":
        resources = bundle_resources(value)
        urls = bundle_urls(value)
        complete = next_link(value) is None
    else:
        resources = [value]
        complete = True
    for resource in resources:
        _check_patient(resource, patient_id, where)
    return KeyResult("prefetched" if resources else "none", resources, complete, urls)


def _patient_refs(resource: dict[str, Any]) -> list[str]:
    return [
        ref
        for k in ("subject", "patient")
        if isinstance(resource.get(k), dict)
        for ref in [resource[k].get("reference")]
        if isinstance(ref, str)
    ]


def _refused(where: str) -> OutcomeError:
    return OutcomeError(
        400, [Issue(f"{where}: holds data of a patient other than context.patientId", expression=where)]
    )


def _check_patient(resource: dict[str, Any], patient_id: str, where: str) -> None:
    """Data about another patient must never be used: refuse the request rather than guess.

    A patient reference is compared by resource id, whatever its form: `Patient/f1`,
    `https://ehr/fhir/Patient/f1`, `Patient/f1/_history/3` all mean patient f1. (`urn:uuid:` references are
    checked once every Bundle entry is known, in `_check_patient_urn`.)
    """
    if resource.get("resourceType") == "Patient":
        if resource.get("id") != patient_id:
            raise _refused(where)
        return
    for ref in _patient_refs(resource):
        parts = parse_reference(ref)
        if parts is not None and parts[1] == "Patient" and parts[2] != patient_id:
            raise _refused(where)


def _check_patient_urn(resource: dict[str, Any], patient_id: str, data: FhirData, where: str) -> None:
    """A `urn:uuid:` patient reference must name a prefetched entry that is the context patient."""
    for ref in _patient_refs(resource):
        if ref.startswith("urn:"):
            target = data.urls.get(ref)
            if not (isinstance(target, dict) and target.get("resourceType") == "Patient"):
                raise OutcomeError(
                    400,
                    [
                        Issue(
                            f"{where}: its patient reference {ref[:60]} names no prefetched Patient, so whose data "
                            "it is cannot be checked",
                            expression=where,
                        )
                    ],
                )
            if target.get("id") != patient_id:
                raise _refused(where)


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
    reader = usable_server(body)
    pending = [k for k, r in results.items() if r.state == "prefetched" and not r.complete]
    if not pending or reader is None:
        return
    client = FhirClient(reader[0], reader[1], timeout)
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
        data.urls.update(result.urls)
        data.complete.add(rtype)
    data.complete -= incomplete_types
    return data
