"""FHIR R4 resources to a profile, as a ruleset's mapping file says (service/cds/mapping.py).

Facts are taken only from positive evidence - a coded Condition, a final Observation, a completed
Procedure, an active medication - so a gap in the record stays "not recorded" rather than becoming "no".
The one exception is a set field (e.g. conditions): when every FHIR source it is read from was read in
full and every active item in it was classified, the facts found are the whole set, possibly empty;
otherwise it holds the facts found and is known only in part (`partly_known`: the engine reads the other
values as unknown, never as absent), and is reported as incomplete. Enum facts that disagree (two
diagnoses) stay unrecorded and are reported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..ruleset.model import Ruleset
from .elements import as_dict, as_list, as_str
from .mapping import Code, FhirMapping, Ingredient, normal_text

MEDICATION_CURRENT = {"active", "on-hold", "intended"}
# A reference's type and id, relative or at the end of an absolute URL, with an optional version.
REFERENCE = re.compile(r"^(?:(?P<base>.*)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass
class FhirData:
    """Resources by type, the types that were read in full (every prefetch key of that type), and the
    Bundle entries' `fullUrl`s (absolute or `urn:uuid:`) so that references to them can be followed."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)
    urls: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: str = ""  # the request's fhirServer: an absolute reference under it is a local one

    def of(self, rtype: str) -> list[dict[str, Any]]:
        return self.resources.get(rtype, [])


def parse_reference(ref: Any) -> tuple[str, str, str] | None:
    """(base or "", type, id) of a FHIR reference; versioned references (`/_history/n`) mean the resource."""
    if not isinstance(ref, str) or ref.startswith(("#", "urn:")):
        return None
    m = REFERENCE.match(ref)
    return (m.group("base") or "", m.group("type"), m.group("id")) if m else None


class Resolver:
    """Follows references as FHIR defines them: contained (`#id`), a Bundle entry's `fullUrl`, relative
    (`Medication/123`, also against an absolute `fullUrl` with that ending), or absolute under fhirServer."""

    def __init__(self, data: FhirData, extra: Iterable[tuple[str | None, dict[str, Any]]] = ()) -> None:
        self.urls = dict(data.urls)
        self.server = data.server.rstrip("/")
        self.by_id: dict[tuple[str, str], dict[str, Any]] = {}
        for rtype, resources in data.resources.items():
            for r in resources:
                self.by_id.setdefault((rtype, str(r.get("id"))), r)
        for url, r in extra:
            if url:
                self.urls.setdefault(url, r)
            if r.get("id"):
                self.by_id.setdefault((str(r.get("resourceType")), str(r["id"])), r)

    def resolve(self, ref: Any, container: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if not isinstance(ref, str) or not ref:
            return None
        if ref.startswith("#"):
            contained = as_list(as_dict(container).get("contained"))
            return next((c for c in contained if isinstance(c, dict) and c.get("id") == ref[1:]), None)
        if ref in self.urls:
            return self.urls[ref]
        parts = parse_reference(ref)
        if parts is None:
            return None
        base, rtype, rid = parts
        if base and (not self.server or base.rstrip("/") != self.server):
            return None  # another server's resource: only its exact fullUrl identifies it
        return self.by_id.get((rtype, rid))


@dataclass
class MedicationRead:
    """What a medication's codes and names say: the ingredients (and products) found, and how."""

    pairs: list[tuple[str | None, str | None]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # displays and texts, for the name safety net
    unresolved: bool = False  # a medicationReference that could not be followed


@dataclass
class Extraction:
    profile: dict[str, Any]
    incomplete: list[str]  # fields whose FHIR sources were not all read: their absence means nothing
    notes: list[str]  # facts present in FHIR that could not be used, and why (no patient data in them)
    # Set fields holding values found while the list is not known in full (engine/partly.py): field -> the
    # items that could not be classified (0: a source was not read in full). The engine reads them as
    # "these values, the rest unknown", never as the whole set.
    partly_known: dict[str, int] = field(default_factory=dict)
    # The chart has a problem or an active medication of the topic (mapping `relevance`; True without one).
    relevant: bool = True


@dataclass(frozen=True)
class Order:
    """A selected draft order the mapping recognises: the options it can be (one when the product is known)."""

    reference: str
    label: str
    ingredient: str
    options: tuple[str, ...]
    by_name: bool = False  # recognised by the ingredient's name in its text, no known code


def codings(concept: Any) -> Iterator[tuple[str | None, str | None]]:
    if isinstance(concept, dict):
        for c in as_list(concept.get("coding")):
            if isinstance(c, dict):
                yield as_str(c.get("system")), as_str(c.get("code"))


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


def _concept_texts(concept: Any) -> Iterator[str]:
    if isinstance(concept, dict):
        if isinstance(concept.get("text"), str):
            yield concept["text"]
        for c in as_list(concept.get("coding")):
            if isinstance(c, dict) and isinstance(c.get("display"), str):
                yield c["display"]


def read_medication(resource: dict[str, Any], resolver: Resolver) -> MedicationRead:
    """The codings and texts of a request's or statement's medication, following `medicationReference`."""
    out = MedicationRead()
    concept = resource.get("medicationCodeableConcept")
    out.pairs.extend(codings(concept))
    out.texts.extend(_concept_texts(concept))
    ref = as_dict(resource.get("medicationReference")).get("reference")
    if ref is None and isinstance(resource.get("medicationReference"), dict):
        out.texts.extend(t for t in [resource["medicationReference"].get("display")] if isinstance(t, str))
    if ref is None:
        return out
    med = resolver.resolve(ref, resource)
    if not isinstance(med, dict) or med.get("resourceType") not in (None, "Medication"):
        out.unresolved = True
        out.texts.extend(t for t in [resource["medicationReference"].get("display")] if isinstance(t, str))
        return out
    out.pairs.extend(codings(med.get("code")))
    out.texts.extend(_concept_texts(med.get("code")))
    for ing in as_list(med.get("ingredient")):
        if not isinstance(ing, dict):
            continue
        out.pairs.extend(codings(ing.get("itemCodeableConcept")))
        out.texts.extend(_concept_texts(ing.get("itemCodeableConcept")))
        item_ref = as_dict(ing.get("itemReference")).get("reference")
        if item_ref is not None:
            item = resolver.resolve(item_ref, med) or resolver.resolve(item_ref, resource)
            if isinstance(item, dict):
                out.pairs.extend(codings(item.get("code")))
                out.texts.extend(_concept_texts(item.get("code")))
    return out


def medication_references(resource: dict[str, Any]) -> list[str]:
    """The non-contained references a medication resource needs followed (to fetch what is missing)."""
    ref = as_dict(resource.get("medicationReference")).get("reference")
    return [ref] if isinstance(ref, str) and not ref.startswith("#") else []


def ingredients_of(mapping: FhirMapping, pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, Ingredient]:
    found: dict[str, Ingredient] = {}
    for system, code in pairs:
        hit = mapping.ingredient_of(system, code)
        if hit:
            found[hit[0].id] = hit[0]
    return found


def ingredients_by_name(mapping: FhirMapping, texts: Iterable[str]) -> dict[str, Ingredient]:
    """The safety net when no code is known: an ingredient's name as a whole word of a display or text."""
    found: dict[str, Ingredient] = {}
    for text in texts:
        ing = mapping.ingredient_named(text)
        if ing is not None:
            found[ing.id] = ing
    return found


def extract(mapping: FhirMapping, ruleset: Ruleset, data: FhirData, today: dt.date) -> Extraction:
    """The profile facts the FHIR data supports (raw profile JSON: sets as lists, in the ruleset's order)."""
    return _Extractor(mapping, ruleset, data, today).run()


def _coded(concept: Any, codes: Iterable[Code]) -> bool:
    pairs = list(codings(concept))
    return any(c.matches(system, code) for system, code in pairs for c in codes)


def _phrased(texts: Iterable[str], phrases: Iterable[str]) -> bool:
    """A whole text equal to one of the phrases (normalised): "Pregnant" matches, "Not pregnant" does not."""
    wanted = set(phrases)
    return bool(wanted) and any(normal_text(t) in wanted for t in texts)


@dataclass
class _Extractor:
    mapping: FhirMapping
    ruleset: Ruleset
    data: FhirData
    today: dt.date
    values: dict[str, list[Any]] = field(default_factory=dict)  # enum/boolean/set facts found, per field
    numbers: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unclassified: dict[str, int] = field(default_factory=dict)  # field -> items that could not be read
    topical: bool = False  # a problem or medication of the mapping's `relevance` was found

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
            gender = as_str(patient.get("gender"))
            if gender in pm.genders:
                self.add(pm.sex_field, pm.genders[gender])
            else:
                label = self.ruleset.inputs[pm.sex_field].label
                said = f"the record's administrative gender ({gender})" if isinstance(gender, str) else "the record"
                self.notes.append(f"{label}: unknown - {said} does not give it; record it in the form.")
        if pm.age_field and "birthDate" in patient:
            age = _exact(parse_date(patient.get("birthDate")), whole_years, self.today)
            if age is None:
                label = self.ruleset.inputs[pm.age_field].label
                self.notes.append(
                    f"{label}: the record's birth date is too imprecise to give it; record it in the form."
                )
            else:
                self.number(pm.age_field, age)

    def unread(self, fields: Iterable[str]) -> None:
        """One more active item that could not be classified: these set fields are not known in full."""
        for fid in fields:
            self.unclassified[fid] = self.unclassified.get(fid, 0) + 1

    def conditions(self) -> None:
        status = self.mapping.condition_status
        set_fields = {f.field for f in self.mapping.conditions if self.ruleset.inputs[f.field].type == "set"}
        for cond in self.data.of("Condition"):
            clinical = _status_code(cond.get("clinicalStatus"))
            verification = _status_code(cond.get("verificationStatus"))
            if (clinical and clinical not in status["active"]) or verification in status["refuted"]:
                continue
            abated = _when(cond, "abatementDateTime", "abatementPeriod")
            if (abated is not None and abated[1] <= self.today) or cond.get("abatementString"):
                continue  # it has ended, whatever the clinical status says
            concept = cond.get("code")
            coded = [fact for fact in self.mapping.conditions if _coded(concept, fact.codes)]
            by_text = (
                [] if coded else [f for f in self.mapping.conditions if _phrased(_concept_texts(concept), f.texts)]
            )
            if not coded and not by_text:
                self.unread(set_fields)  # it may be one of the set's values the mapping has no code for
            for fact in coded or by_text:
                if fact.field in self.mapping.relevance.fields:
                    self.topical = True  # even unconfirmed or old: the chart is about the topic
                label = self.ruleset.inputs[fact.field].label
                if fact.max_age_days is not None:
                    since = _when(cond, "onsetDateTime", "onsetPeriod", "recordedDate")
                    if since is not None and since[1] < self.today - dt.timedelta(days=fact.max_age_days):
                        self.notes.append(
                            f"{label}: the record's Condition dates from more than {fact.max_age_days} days ago "
                            "and is not used; record the current state in the form."
                        )
                        continue
                if verification in status["unconfirmed"]:
                    if fact.unconfirmed is not None:
                        self.add(fact.field, fact.unconfirmed)
                    else:
                        self.unclassified[fact.field] = self.unclassified.get(fact.field, 0) + 1
                        self.notes.append(
                            f"{label}: the record has it as {verification}, which is not used as a fact; "
                            "confirm it in the form."
                        )
                    continue
                if by_text:
                    self.notes.append(
                        f"{label}: recognised from the text of a Condition without a known code (matched by "
                        "text); check the record."
                    )
                self.add(fact.field, fact.value)

    def observations(self) -> None:
        for fact in self.mapping.observations:
            oldest = self.today - dt.timedelta(days=fact.max_age_days)
            latest: tuple[dt.date, dict[str, Any]] | None = None
            for obs in self.data.of("Observation"):
                if as_str(obs.get("status")) not in fact.statuses or not _coded(obs.get("code"), fact.codes):
                    continue
                when = _when(obs, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued")
                if when is None or when[1] < oldest or when[0] > self.today:
                    continue
                if latest is None or when[1] > latest[0]:
                    latest = (when[1], obs)
            if latest is None:
                continue
            value = latest[1].get("valueCodeableConcept")
            answer = next((a for a in fact.answers if _coded(value, [a.code])), None)
            if answer is None and not list(codings(value)):
                texts = [*_concept_texts(value), *[t for t in [latest[1].get("valueString")] if isinstance(t, str)]]
                answer = next((a for a in fact.answers if _phrased(texts, a.texts)), None)
                if answer is not None:
                    label = self.ruleset.inputs[fact.field].label
                    self.notes.append(f"{label}: read from the text of an Observation (matched by text); check it.")
            if answer is not None and answer.statuses and as_str(latest[1].get("status")) not in answer.statuses:
                label = self.ruleset.inputs[fact.field].label
                self.notes.append(
                    f"{label}: the latest Observation is {latest[1].get('status')}, which is not used for "
                    f"“{answer.code.display}”; record it in the form."
                )
                answer = None
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
        resolver = Resolver(self.data)
        fields = {cls.field for cls in self.mapping.medication_classes}
        for rtype in ("MedicationRequest", "MedicationStatement"):
            for med in self.data.of(rtype):
                if as_str(med.get("status")) not in MEDICATION_CURRENT:
                    continue
                read = read_medication(med, resolver)
                found = ingredients_of(self.mapping, read.pairs)
                if not found:
                    found = ingredients_by_name(self.mapping, read.texts)
                    classes = [c for c in self.mapping.medication_classes if found.keys() & set(c.ingredients)]
                    if classes:
                        names = ", ".join(sorted(found))
                        self.notes.append(
                            f"{rtype}/{med.get('id')}: {names} matched by name (no known code); check the record."
                        )
                if found.keys() & set(self.mapping.relevance.ingredients):
                    self.topical = True
                if not found:
                    self.unread(fields)  # it may be in a class the mapping has no code for
                if not found and read.unresolved:
                    self.notes.append(
                        f"{rtype}/{med.get('id')}: its medicationReference could not be followed, so the "
                        "medication is not known; check the record."
                    )
                for cls in self.mapping.medication_classes:
                    if found.keys() & set(cls.ingredients):
                        self.add(cls.field, cls.value)

    def result(self) -> Extraction:
        profile: dict[str, Any] = dict(self.numbers)
        incomplete: list[str] = []
        partly: dict[str, int] = {}
        for fid, types in self.mapping.sources().items():
            f = self.ruleset.inputs[fid]
            read_in_full = types <= self.data.complete and not self.unclassified.get(fid)
            found = self.values.get(fid, [])
            if f.type == "set":
                if found or read_in_full:
                    profile[fid] = sorted(found, key=f.codes.index)
                if found and not read_in_full:
                    partly[fid] = self.unclassified.get(fid, 0)
            elif len(found) == 1:
                profile[fid] = found[0]
            elif len(found) > 1:
                shown = ", ".join(f.value_label(v) for v in found)
                self.notes.append(f"{f.label}: the record suggests several values ({shown}); confirm one in the form.")
            if not read_in_full and (fid not in profile or f.type == "set"):
                incomplete.append(fid)
            if f.type == "set" and self.unclassified.get(fid):
                n = self.unclassified[fid]
                self.notes.append(
                    f"{f.label}: {n} active item{'s' if n != 1 else ''} in the record could not be classified "
                    f"(no code or name the mapping knows), so the list is not known in full; check the record."
                )
        relevant = self.topical or not self.mapping.relevance.declared
        return Extraction(profile, incomplete, self.notes, partly, relevant)


def draft_entries(context: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(fullUrl, resource) of each `draftOrders` entry."""
    entries = as_list(as_dict(context.get("draftOrders")).get("entry"))
    return [
        (e.get("fullUrl") if isinstance(e.get("fullUrl"), str) else None, e["resource"])
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def selected_orders(mapping: FhirMapping, context: dict[str, Any], data: FhirData | None = None) -> list[Order]:
    """The selected draft medication orders the mapping knows (`selections`, or every draft order when the
    hook has none), their medication read from the order, a `medicationReference` to a draft entry (by id or
    `urn:uuid` fullUrl), a prefetched Medication or one read from the FHIR server (in `data`)."""
    selections = context.get("selections")
    drafts = draft_entries(context)
    resolver = Resolver(data or FhirData(), drafts)
    out = []
    for _url, resource in drafts:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        reference = f"MedicationRequest/{resource.get('id')}"
        if selections is not None and reference not in selections:
            continue
        read = read_medication(resource, resolver)
        hits = [h for h in (mapping.ingredient_of(system, code) for system, code in read.pairs) if h is not None]
        by_name = False
        if not hits:
            hits = [(ing, None) for ing in ingredients_by_name(mapping, read.texts).values()]
            by_name = bool(hits)
        for ingredient, product in hits:
            options = (product.option,) if product and product.option else ingredient.orders
            if options:
                label = read.texts[0] if read.texts else "the selected medication"
                out.append(Order(reference, label, ingredient.id, options, by_name))
                break
    return out
