"""FHIR R4 resources to a profile, as a ruleset's mapping file says (service/cds/mapping.py).

Facts are taken only from positive evidence - a coded Condition, a final Observation, a completed
Procedure, an active medication - so a gap in the record stays "not recorded" rather than becoming "no".
The one exception is a set field (e.g. conditions): when every FHIR source it is read from was read in
full, the facts found are the whole set, possibly empty; otherwise it holds the facts found, and is
reported as incomplete. Enum facts that disagree (two diagnoses) stay unrecorded and are reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..ruleset.model import Ruleset
from .mapping import Code, FhirMapping, Ingredient

CONDITION_ACTIVE = {"active", "recurrence", "relapse"}
NOT_TRUE = {"refuted", "entered-in-error"}
MEDICATION_CURRENT = {"active", "on-hold", "intended"}
OBSERVATION_FINAL = {"final", "amended", "corrected"}


@dataclass
class FhirData:
    """Resources by type, and the types that were read in full (every prefetch key of that type)."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)

    def of(self, rtype: str) -> list[dict[str, Any]]:
        return self.resources.get(rtype, [])


@dataclass
class Extraction:
    profile: dict[str, Any]
    incomplete: list[str]  # fields whose FHIR sources were not all read: their absence means nothing
    notes: list[str]  # facts present in FHIR that could not be used, and why (no patient data in them)


@dataclass(frozen=True)
class Order:
    """A selected draft order the mapping recognises: the options it can be (one when the product is known)."""

    reference: str
    label: str
    ingredient: str
    options: tuple[str, ...]


def codings(concept: Any) -> Iterator[tuple[str | None, str | None]]:
    if isinstance(concept, dict):
        for c in concept.get("coding") or []:
            if isinstance(c, dict):
                yield c.get("system"), c.get("code")


def _status_code(concept: Any) -> str | None:
    for _system, code in codings(concept):
        return code
    return None


def parse_date(value: Any) -> tuple[dt.date, dt.date] | None:
    """Earliest and latest day a FHIR date/dateTime (possibly partial: YYYY or YYYY-MM) can mean."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            year = int(value)
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
        if len(value) == 7:
            first = dt.date(int(value[:4]), int(value[5:7]), 1)
            nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return first, nxt - dt.timedelta(days=1)
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return None
    return day, day


def whole_years(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def whole_months(since: dt.date, today: dt.date) -> int:
    return (today.year - since.year) * 12 + today.month - since.month - (today.day < since.day)


def _exact(bounds: tuple[dt.date, dt.date] | None, measure: Any, today: dt.date) -> int | None:
    """A whole count of years or months if every day the date may mean gives the same count."""
    if bounds is None:
        return None
    low, high = measure(bounds[1], today), measure(bounds[0], today)
    return low if low == high else None


def _when(resource: dict[str, Any], *names: str) -> tuple[dt.date, dt.date] | None:
    for name in names:
        value = resource.get(name)
        if isinstance(value, dict):  # Period: the end if it has ended, else its start
            value = value.get("end") or value.get("start")
        bounds = parse_date(value)
        if bounds:
            return bounds
    return None


class _Index:
    """Medication resources by reference, to resolve `medicationReference` (contained or in the bundles)."""

    def __init__(self, data: FhirData) -> None:
        self.medications = {f"Medication/{m.get('id')}": m for m in data.of("Medication")}

    def medication_codings(self, resource: dict[str, Any]) -> Iterator[tuple[str | None, str | None]]:
        yield from codings(resource.get("medicationCodeableConcept"))
        ref = (resource.get("medicationReference") or {}).get("reference")
        med: Any = None
        if isinstance(ref, str) and ref.startswith("#"):
            med = next(
                (c for c in resource.get("contained") or [] if isinstance(c, dict) and c.get("id") == ref[1:]), None
            )
        elif isinstance(ref, str):
            med = self.medications.get(ref)
        if isinstance(med, dict):
            yield from codings(med.get("code"))
            for ing in med.get("ingredient") or []:
                if isinstance(ing, dict):
                    yield from codings(ing.get("itemCodeableConcept"))


def ingredients_of(mapping: FhirMapping, pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, Ingredient]:
    found: dict[str, Ingredient] = {}
    for system, code in pairs:
        hit = mapping.ingredient_of(system, code)
        if hit:
            found[hit[0].id] = hit[0]
    return found


def extract(mapping: FhirMapping, ruleset: Ruleset, data: FhirData, today: dt.date) -> Extraction:
    """The profile facts the FHIR data supports (raw profile JSON: sets as lists, in the ruleset's order)."""
    return _Extractor(mapping, ruleset, data, today).run()


def _coded(concept: Any, codes: Iterable[Code]) -> bool:
    pairs = list(codings(concept))
    return any(c.matches(system, code) for system, code in pairs for c in codes)


@dataclass
class _Extractor:
    mapping: FhirMapping
    ruleset: Ruleset
    data: FhirData
    today: dt.date
    values: dict[str, list[Any]] = field(default_factory=dict)  # enum/boolean/set facts found, per field
    numbers: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def run(self) -> Extraction:
        self.patient()
        self.conditions()
        self.observations()
        self.procedures()
        self.medications()
        return self.result()

    def add(self, fid: str, value: Any) -> None:
        bucket = self.values.setdefault(fid, [])
        if value not in bucket:
            bucket.append(value)

    def number(self, fid: str, value: int) -> None:
        f = self.ruleset.inputs[fid]
        if f.minimum is not None and f.maximum is not None and not f.minimum <= value <= f.maximum:
            self.notes.append(
                f"{f.label}: the record gives {value} {f.unit}, outside {f.minimum}-{f.maximum}; check the record."
            )
        else:
            self.numbers[fid] = value

    def patient(self) -> None:
        patients = self.data.of("Patient")
        if not patients:
            return
        patient, pm = patients[0], self.mapping.patient
        if pm.sex_field:
            gender = patient.get("gender")
            if gender in pm.genders:
                self.add(pm.sex_field, pm.genders[gender])
            elif gender is not None:
                label = self.ruleset.inputs[pm.sex_field].label
                self.notes.append(
                    f"{label}: the record's administrative gender ({gender}) does not decide it; record it in the form."
                )
        if pm.age_field and "birthDate" in patient:
            age = _exact(parse_date(patient.get("birthDate")), whole_years, self.today)
            if age is None:
                label = self.ruleset.inputs[pm.age_field].label
                self.notes.append(
                    f"{label}: the record's birth date is too imprecise to give it; record it in the form."
                )
            else:
                self.number(pm.age_field, age)

    def conditions(self) -> None:
        for cond in self.data.of("Condition"):
            clinical = _status_code(cond.get("clinicalStatus"))
            if (clinical and clinical not in CONDITION_ACTIVE) or _status_code(
                cond.get("verificationStatus")
            ) in NOT_TRUE:
                continue
            for fact in self.mapping.conditions:
                if _coded(cond.get("code"), fact.codes):
                    self.add(fact.field, fact.value)

    def observations(self) -> None:
        for fact in self.mapping.observations:
            oldest = self.today - dt.timedelta(days=fact.max_age_days)
            latest: tuple[dt.date, dict[str, Any]] | None = None
            for obs in self.data.of("Observation"):
                if obs.get("status") not in OBSERVATION_FINAL or not _coded(obs.get("code"), fact.codes):
                    continue
                when = _when(obs, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued")
                if when is None or when[1] < oldest or when[0] > self.today:
                    continue
                if latest is None or when[1] > latest[0]:
                    latest = (when[1], obs)
            answer = next(
                (a for a in fact.answers if latest and _coded(latest[1].get("valueCodeableConcept"), [a.code])), None
            )
            if answer is not None:
                self.add(fact.field, answer.value)

    def procedures(self) -> None:
        for fact in self.mapping.procedures:
            done = [
                p
                for p in self.data.of("Procedure")
                if p.get("status") == "completed" and _coded(p.get("code"), fact.codes)
            ]
            if done and fact.field:
                self.add(fact.field, fact.value)
            if done and fact.months_since:
                dates = [d for d in (_when(p, "performedDateTime", "performedPeriod") for p in done) if d is not None]
                months = _exact(max(dates, key=lambda d: d[1]), whole_months, self.today) if dates else None
                if months is None:
                    label = self.ruleset.inputs[fact.months_since].label
                    self.notes.append(
                        f"{label}: the record's procedure date is missing or too imprecise; record it in the form."
                    )
                else:
                    self.number(fact.months_since, months)

    def medications(self) -> None:
        index = _Index(self.data)
        for rtype in ("MedicationRequest", "MedicationStatement"):
            for med in self.data.of(rtype):
                if med.get("status") not in MEDICATION_CURRENT:
                    continue
                found = ingredients_of(self.mapping, index.medication_codings(med))
                for cls in self.mapping.medication_classes:
                    if found.keys() & set(cls.ingredients):
                        self.add(cls.field, cls.value)

    def result(self) -> Extraction:
        profile: dict[str, Any] = dict(self.numbers)
        incomplete: list[str] = []
        for fid, types in self.mapping.sources().items():
            f = self.ruleset.inputs[fid]
            read_in_full = types <= self.data.complete
            found = self.values.get(fid, [])
            if f.type == "set":
                if found or read_in_full:
                    profile[fid] = sorted(found, key=f.codes.index)
            elif len(found) == 1:
                profile[fid] = found[0]
            elif len(found) > 1:
                shown = ", ".join(f.value_label(v) for v in found)
                self.notes.append(f"{f.label}: the record suggests several values ({shown}); confirm one in the form.")
            if not read_in_full and (fid not in profile or f.type == "set"):
                incomplete.append(fid)
        return Extraction(profile, incomplete, self.notes)


def selected_orders(mapping: FhirMapping, context: dict[str, Any]) -> list[Order]:
    """The order-select `selections` that are medication orders the mapping knows (from `draftOrders`)."""
    selections = set(context.get("selections") or [])
    entries = (context.get("draftOrders") or {}).get("entry") or []
    resources = [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    index = _Index(FhirData({"Medication": [r for r in resources if r.get("resourceType") == "Medication"]}))
    out = []
    for resource in resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        reference = f"MedicationRequest/{resource.get('id')}"
        if reference not in selections:
            continue
        for system, code in index.medication_codings(resource):
            hit = mapping.ingredient_of(system, code)
            if hit is None:
                continue
            ingredient, product = hit
            options = (product.option,) if product and product.option else ingredient.orders
            if options:
                out.append(Order(reference, _order_label(resource), ingredient.id, options))
                break
    return out


def _order_label(resource: dict[str, Any]) -> str:
    concept = resource.get("medicationCodeableConcept") or {}
    if isinstance(concept.get("text"), str) and concept["text"]:
        return concept["text"]
    for c in concept.get("coding") or []:
        if isinstance(c, dict) and isinstance(c.get("display"), str) and c["display"]:
            return c["display"]
    return "the selected medication"
