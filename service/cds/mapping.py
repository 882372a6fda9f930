"""The FHIR mapping file next to a ruleset (`<ruleset>.fhir.yaml`), loaded as strictly as the ruleset itself.

The mapping says which FHIR codes become which profile facts. It is reviewed like the ruleset, so it is
declarative and every code carries a display and a source; the loader checks every target field, value and
option against the ruleset's inputs and catalogue, and reports every problem at once with file and line.
Nothing here knows a field name: all of them come from the two files.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any
from urllib.parse import parse_qsl

from ..ruleset import yamlsrc
from ..ruleset.errors import Problem, RulesetError, suggest
from ..ruleset.model import InputField, Person, Ruleset
from ..ruleset.reader import SEMVER, Path, TreeReader
from ..ruleset.sections import read_people

MAPPING_SUFFIX = ".fhir.yaml"

# The code systems a mapping may use (canonical URIs as FHIR R4 names them).
CODE_SYSTEMS = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://loinc.org": "LOINC",
    "http://www.ama-assn.org/go/cpt": "CPT",
}
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# CDS Hooks 2.0.1 prefetch tokens: root-level primitive context fields common to the hooks we serve,
# and the four user identifiers.
CONTEXT_TOKENS = ("context.patientId", "context.userId", "context.encounterId")
USER_TOKENS = ("userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId")
TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
READ = re.compile(r"^([A-Z][A-Za-z]+)/([^/?]+)$")
SEARCH = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")
# 2.0.1 recommends, 3.0 requires: type-level search with references, token equality (optionally `:in`),
# date prefixes eq/lt/gt/ge/le, `_count` and `_sort`.
ALLOWED_MODIFIERS = ("", "in")
ALLOWED_SPECIAL = ("_count", "_sort", "_include")
# `_include` only to bring the Medication a request or statement names (issue 13: medicationReference).
ALLOWED_INCLUDES = ("MedicationRequest:medication", "MedicationStatement:medication")
OID_ALIAS = re.compile(r"^urn:oid:[0-2](\.(0|[1-9]\d*))+$")
# FHIR R4 status codes (condition-clinical, condition-ver-status, observation-status) a mapping may name.
CLINICAL_STATUSES = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
VERIFICATION_STATUSES = ("unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error")
OBSERVATION_STATUSES = ("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error")
DEFAULT_CONDITION_STATUS = {
    "active": ("active", "recurrence", "relapse"),
    "unconfirmed": ("unconfirmed", "provisional", "differential"),
    "refuted": ("refuted", "entered-in-error"),
}
DEFAULT_OBSERVATION_STATUSES = ("final", "amended", "corrected")
SUPPORTED_RESOURCES = (
    "Patient",
    "Condition",
    "Observation",
    "Procedure",
    "MedicationRequest",
    "MedicationStatement",
)


@dataclass(frozen=True)
class Code:
    system: str
    code: str
    display: str
    source: str
    subcodes: bool = False  # ICD-10-CM only: the code's category includes every code below it
    line: int | None = None
    aliases: tuple[str, ...] = ()  # other names of the system EHRs send (OIDs: urn:oid:2.16.840.1.113883.6.90)

    def matches(self, system: str | None, code: str | None) -> bool:
        if (system != self.system and system not in self.aliases) or not isinstance(code, str):
            return False
        if code == self.code:
            return True
        if self.system == ICD10CM:  # EHRs send ICD-10-CM with or without the dot, in either case: I50.9, i509
            mine, theirs = self.code.replace(".", "").upper(), code.strip().replace(".", "").upper()
            return theirs.startswith(mine) if self.subcodes else theirs == mine
        return False


@dataclass(frozen=True)
class CodedFact:
    """Any resource with one of `codes` records `value` for `field` (a set gets the value added)."""

    field: str  # "" for a procedure that only gives `months_since`
    value: Any
    codes: tuple[Code, ...]
    months_since: str = ""  # procedures: integer field for whole months since the latest one
    line: int | None = None
    texts: tuple[str, ...] = ()  # whole phrases that mean the same when the record has text, not a code
    unconfirmed: Any = None  # conditions: the value an unconfirmed/provisional/differential one records
    max_age_days: int | None = None  # conditions: one with an onset or record date older than this is not used


@dataclass(frozen=True)
class Answer:
    code: Code
    value: Any
    texts: tuple[str, ...] = ()  # whole phrases meaning this answer in valueString or a text-only value
    statuses: tuple[str, ...] = ()  # if given, the Observation statuses this answer is taken from


@dataclass(frozen=True)
class ObservationFact:
    """The latest final Observation with one of `codes`, if recent enough, records its answer's value."""

    field: str
    codes: tuple[Code, ...]
    answers: tuple[Answer, ...]
    max_age_days: int
    line: int | None = None
    statuses: tuple[str, ...] = DEFAULT_OBSERVATION_STATUSES


@dataclass(frozen=True)
class Product:
    code: Code
    option: str = ""  # the option an order of this product is (order-select)


@dataclass(frozen=True)
class Ingredient:
    id: str
    codes: tuple[Code, ...]
    products: tuple[Product, ...]
    orders: tuple[str, ...] = ()  # options an order coded at ingredient level could be
    names: tuple[str, ...] = ()  # names (lower case) matched as whole words in a coding display or text


@dataclass(frozen=True)
class MedicationClass:
    field: str
    value: Any
    ingredients: tuple[str, ...]
    line: int | None = None


@dataclass(frozen=True)
class Template:
    key: str
    query: str
    resource_type: str
    read: bool
    required: bool
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class PatientMap:
    sex_field: str = ""
    genders: dict[str, str] = field(default_factory=dict)  # FHIR gender -> ruleset code
    age_field: str = ""


@dataclass(frozen=True)
class Relevance:
    """What makes a chart one the patient-view service speaks about: a problem or a medication of the topic.

    `fields`: condition facts (by field) whose codes are the topic's problems (e.g. the diagnosis codes);
    `ingredients`: ingredients whose active medications are the topic's. Empty (no `relevance` section):
    every chart is relevant.
    """

    fields: tuple[str, ...] = ()
    ingredients: tuple[str, ...] = ()

    @property
    def declared(self) -> bool:
        return bool(self.fields or self.ingredients)


@dataclass(frozen=True)
class FhirMapping:
    ruleset_id: str
    version: str
    path: str
    sha256: str
    authors: tuple[Person, ...]
    reviewers: tuple[Person, ...]
    prefetch: dict[str, Template]
    patient: PatientMap
    conditions: tuple[CodedFact, ...]
    observations: tuple[ObservationFact, ...]
    procedures: tuple[CodedFact, ...]
    ingredients: dict[str, Ingredient]
    medication_classes: tuple[MedicationClass, ...]
    condition_status: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CONDITION_STATUS))
    relevance: Relevance = field(default_factory=Relevance)

    def sources(self) -> dict[str, set[str]]:
        """Field id -> FHIR resource types it is read from (to know when a field's sources were all read)."""
        out: dict[str, set[str]] = {}
        if self.patient.sex_field:
            out.setdefault(self.patient.sex_field, set()).add("Patient")
        if self.patient.age_field:
            out.setdefault(self.patient.age_field, set()).add("Patient")
        for fact in self.conditions:
            out.setdefault(fact.field, set()).add("Condition")
        for obs in self.observations:
            out.setdefault(obs.field, set()).add("Observation")
        for fact in self.procedures:
            if fact.field:
                out.setdefault(fact.field, set()).add("Procedure")
            if fact.months_since:
                out.setdefault(fact.months_since, set()).add("Procedure")
        for cls in self.medication_classes:
            out.setdefault(cls.field, set()).update(("MedicationRequest", "MedicationStatement"))
        return out

    def orderable(self) -> dict[str, tuple[str, str, str]]:
        """Option -> the first mapped product (system, code, display) that is an order of it, in file order."""
        out: dict[str, tuple[str, str, str]] = {}
        for ing in self.ingredients.values():
            for product in ing.products:
                if product.option and product.option not in out:
                    out[product.option] = (product.code.system, product.code.code, product.code.display)
        return out

    def ingredient_of(self, system: str | None, code: str | None) -> tuple[Ingredient, Product | None] | None:
        """The ingredient a medication code means (product codes resolve to their ingredient)."""
        for ing in self.ingredients.values():
            for product in ing.products:
                if product.code.matches(system, code):
                    return ing, product
            if any(c.matches(system, code) for c in ing.codes):
                return ing, None
        return None

    def ingredient_named(self, text: Any) -> Ingredient | None:
        """The ingredient whose name is a whole word of `text` (a coding display or a concept's text)."""
        if not isinstance(text, str) or not text.strip():
            return None
        words = f" {normal_text(text)} "
        for ing in self.ingredients.values():
            if any(f" {name} " in words for name in ing.names):
                return ing
        return None


def normal_text(text: str) -> str:
    """Lower-case words separated by single spaces: how names and phrases are compared."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def mapping_path(ruleset_path: str | FsPath) -> FsPath:
    path = FsPath(ruleset_path)
    return path.with_name(path.name.removesuffix(".yaml").removesuffix(".yml") + MAPPING_SUFFIX)


TOP_KEYS = {
    "ruleset": True,
    "version": True,
    "authors": True,
    "reviewers": False,
    "systems": True,
    "prefetch": True,
    "patient": False,
    "conditions": False,
    "observations": False,
    "procedures": False,
    "medications": False,
    "condition_status": False,
    "relevance": False,
}


def load_mapping(path: str | FsPath, ruleset: Ruleset) -> FhirMapping:
    """Load and validate a mapping file against its ruleset; raises RulesetError listing every problem."""
    path = FsPath(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise RulesetError(str(path), [Problem(str(path), None, None, f"cannot read file: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise RulesetError(str(path), [Problem(str(path), None, None, f"not UTF-8 text ({exc.reason})")]) from None
    try:
        src = yamlsrc.parse(text)
    except yamlsrc.YamlSyntaxError as exc:
        raise RulesetError(
            str(path), [Problem(str(path), exc.line, None, f"YAML syntax error: {exc.message}")]
        ) from None
    r = TreeReader(str(path), src)
    for line, message in src.problems:
        r.error((), message, line=line)
    mapping = _Loader(r, ruleset).build(src.data, str(path), hashlib.sha256(raw).hexdigest())
    if r.problems or mapping is None:
        raise RulesetError(str(path), r.problems or [Problem(str(path), None, None, "invalid mapping")])
    return mapping


class _Loader:
    def __init__(self, r: TreeReader, ruleset: Ruleset) -> None:
        self.r = r
        self.rs = ruleset
        self.systems: dict[str, str] = {}
        self.aliases: dict[str, tuple[str, ...]] = {}

    def build(self, data: Any, file: str, sha: str) -> FhirMapping | None:
        r = self.r
        if not isinstance(data, dict):
            r.error((), "a FHIR mapping file must be a YAML mapping starting with `ruleset:`")
            return None
        r.keys(data, (), TOP_KEYS, "the mapping")
        if data.get("ruleset") != self.rs.id:
            r.error(("ruleset",), f"`ruleset` must be `{self.rs.id}`, the id of the ruleset this file maps to")
        version = data.get("version")
        if not isinstance(version, str) or not SEMVER.match(version):
            r.error(("version",), f'`version` must be a semantic version in quotes like "1.0.0", not {version!r}')
        self.systems = self._systems(data.get("systems"))
        ingredients = self._ingredients((data.get("medications") or {}).get("ingredients"))
        conditions = self._facts(data.get("conditions"), ("conditions",), "a condition")
        return FhirMapping(
            ruleset_id=self.rs.id,
            version=str(version),
            path=file,
            sha256=sha,
            authors=read_people(r, data.get("authors"), ("authors",), "authors", need_date=False),
            reviewers=read_people(r, data.get("reviewers"), ("reviewers",), "reviewers", need_date=True),
            prefetch=self._prefetch(data.get("prefetch")),
            patient=self._patient(data.get("patient")),
            conditions=conditions,
            observations=self._observations(data.get("observations")),
            procedures=self._facts(data.get("procedures"), ("procedures",), "a procedure", procedures=True),
            ingredients=ingredients,
            medication_classes=self._medications(data.get("medications"), ingredients),
            condition_status=self._condition_status(data.get("condition_status")),
            relevance=self._relevance(data.get("relevance"), conditions, ingredients),
        )

    # ---- code systems and codes ----------------------------------------------------------------

    def _systems(self, node: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        if not isinstance(node, dict) or not node:
            self.r.error(
                ("systems",), "`systems` must map short names to code system URIs, e.g. `sct: http://snomed.info/sct`"
            )
            return out
        for alias, item in node.items():
            # `name: url`, or `name: {url, aliases, source}` for a system EHRs also send by another name (OID)
            uri, others = item, ()
            if isinstance(item, dict):
                p = ("systems", alias)
                if not self.r.keys(item, p, {"url": True, "aliases": False, "source": False}, f"system `{alias}`"):
                    continue
                uri = item.get("url")
                others = self.r.text_list(item, "aliases", p, f"system `{alias}`")
                for other in others:
                    if not OID_ALIAS.match(other):
                        self.r.error(
                            (*p, "aliases"), f"alias {other!r} must be an OID URI like urn:oid:2.16.840.1.113883.6.90"
                        )
                if others and not self.r.text(item, "source", p, f"system `{alias}`"):
                    self.r.error(p, f"system `{alias}`: `source` must say where its aliases were verified")
            if uri not in CODE_SYSTEMS:
                self.r.error(
                    ("systems", alias), f"code system {uri!r} is not one the service knows{suggest(uri, CODE_SYSTEMS)}"
                )
                continue
            out[str(alias)] = uri
            self.aliases[uri] = tuple(o for o in others if OID_ALIAS.match(o))
        return out

    def _code(self, node: Any, path: Path, what: str, extra: dict[str, bool] | None = None) -> Code | None:
        allowed = {"system": True, "code": True, "display": True, "source": True, "subcodes": False, **(extra or {})}
        if not self.r.keys(node, path, allowed, what):
            return None
        alias = node.get("system")
        system = self.systems.get(str(alias), "")
        if not system:
            self.r.error((*path, "system"), f"unknown code system `{alias}`{suggest(alias, self.systems)}")
        code = node.get("code")
        if not isinstance(code, str) or not code.strip():
            self.r.error((*path, "code"), f'`code` of {what} must be text (quote numeric codes: "25025")')
            code = ""
        subcodes = node.get("subcodes", False)
        if subcodes is not False and (subcodes is not True or system != ICD10CM or len(code.replace(".", "")) < 3):
            self.r.error(
                (*path, "subcodes"), "`subcodes: true` is only for ICD-10-CM categories (3 or more characters)"
            )
            subcodes = False
        source = self.r.text(node, "source", path, what)
        if source and not re.match(r"^https?://\S+", source) and not source.startswith("cds-hooks.md"):
            self.r.error((*path, "source"), "`source` must be the URL the code was verified at, or `cds-hooks.md ...`")
        return Code(
            system=system,
            code=code.strip(),
            display=self.r.text(node, "display", path, what),
            source=source,
            subcodes=subcodes,
            line=self.r.src.line(path),
            aliases=self.aliases.get(system, ()),
        )

    def _codes(self, node: Any, path: Path, what: str) -> tuple[Code, ...]:
        if not isinstance(node, list) or not node:
            self.r.error(path, f"`codes` of {what} must be a non-empty list of {{system, code, display, source}}")
            return ()
        codes = [self._code(item, (*path, i), f"a code of {what}") for i, item in enumerate(node)]
        return tuple(c for c in codes if c is not None)

    # ---- targets ---------------------------------------------------------------------------------

    def _field(self, node: dict[str, Any], path: Path, types: tuple[str, ...]) -> InputField | None:
        fid = node.get("field")
        f = self.rs.inputs.get(fid) if isinstance(fid, str) else None
        if f is None:
            self.r.error(
                (*path, "field"), f"`{fid}` is not an input of ruleset `{self.rs.id}`{suggest(fid, self.rs.inputs)}"
            )
            return None
        if f.type not in types:
            self.r.error((*path, "field"), f"`{fid}` is a {f.type} field; here only {' or '.join(types)} fields fit")
            return None
        return f

    def _value(self, f: InputField, node: dict[str, Any], path: Path) -> Any:
        """The value a match records: a code of an enum or set field, or true/false for a boolean."""
        if "value" not in node:
            self.r.error(path, f"`value` is required: {self._allowed(f)}")
            return None
        value = node["value"]
        if f.type == "boolean":
            if not isinstance(value, bool):
                self.r.error((*path, "value"), f"`{f.id}` is true or false, not {value!r}")
            return value
        if value not in f.codes:
            self.r.error((*path, "value"), f"`{value}` is not a value of `{f.id}`{suggest(value, f.codes)}")
        return value

    @staticmethod
    def _allowed(f: InputField) -> str:
        return "true or false" if f.type == "boolean" else "one of " + ", ".join(f.codes)

    # ---- sections ------------------------------------------------------------------------------

    def _prefetch(self, node: Any) -> dict[str, Template]:
        out: dict[str, Template] = {}
        if not isinstance(node, dict) or not node:
            self.r.error(("prefetch",), "`prefetch` must map prefetch keys to {query, required}")
            return out
        for key, item in node.items():
            p = ("prefetch", key)
            if not isinstance(key, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", key):
                self.r.error(p, f"prefetch key {key!r} must be letters, digits, `-` or `_`")
                continue
            if not self.r.keys(item, p, {"query": True, "required": False}, f"prefetch `{key}`"):
                continue
            template = self._template(key, item.get("query"), bool(item.get("required", False)), (*p, "query"))
            if template:
                out[key] = template
        return out

    def _template(self, key: str, query: Any, required: bool, path: Path) -> Template | None:
        if not isinstance(query, str) or not query.strip():
            self.r.error(
                path,
                f"`query` of prefetch `{key}` must be a FHIR read or search, e.g. Patient/{{{{context.patientId}}}}",
            )
            return None
        tokens = tuple(TOKEN.findall(query))
        bad = [t for t in tokens if t not in CONTEXT_TOKENS + USER_TOKENS]
        if bad:
            allowed = ", ".join(f"{{{{{t}}}}}" for t in CONTEXT_TOKENS + USER_TOKENS)
            self.r.error(
                path, f"prefetch token {{{{{bad[0]}}}}} is not allowed by CDS Hooks 2.0.1 (allowed: {allowed})"
            )
            return None
        if "{{" in TOKEN.sub("", query) or "}}" in TOKEN.sub("", query):
            self.r.error(path, "unbalanced `{{` / `}}` in the query")
            return None
        read, search = READ.match(query), SEARCH.match(query)
        if not read and not search:
            self.r.error(
                path, "a prefetch query is `Type/{{context.patientId}}` (read) or `Type?param=value&...` (search)"
            )
            return None
        rtype = (read or search).group(1)  # type: ignore[union-attr]
        if rtype not in SUPPORTED_RESOURCES:
            self.r.error(path, f"resource type {rtype} is not mapped{suggest(rtype, SUPPORTED_RESOURCES)}")
            return None
        if search:
            for name, value in parse_qsl(search.group(2), keep_blank_values=True):
                base, _, modifier = name.partition(":")
                if not value:
                    self.r.error(path, f"search parameter `{name}` has no value")
                if base.startswith("_") and base not in ALLOWED_SPECIAL:
                    self.r.error(
                        path, f"`{base}` is outside the prefetch subset (allowed: {', '.join(ALLOWED_SPECIAL)})"
                    )
                if base == "_include" and value not in ALLOWED_INCLUDES:
                    self.r.error(path, f"`_include={value}` is not supported (only {', '.join(ALLOWED_INCLUDES)})")
                if modifier not in ALLOWED_MODIFIERS:
                    self.r.error(path, f"modifier `:{modifier}` is outside the prefetch subset (only `:in`)")
                prefix = value[:2]
                if re.match(r"^[a-z]{2}\d", value) and prefix not in ("eq", "lt", "gt", "ge", "le"):
                    self.r.error(path, f"date prefix `{prefix}` is outside the prefetch subset (eq, lt, gt, ge, le)")
        return Template(key, query.strip(), rtype, bool(read), required, tokens)

    def _patient(self, node: Any) -> PatientMap:
        if node is None:
            return PatientMap()
        p: Path = ("patient",)
        if not self.r.keys(node, p, {"sex": False, "age": False}, "`patient`"):
            return PatientMap()
        sex_field, genders, age_field = "", {}, ""
        if "sex" in node:
            sp = (*p, "sex")
            item = node["sex"]
            if self.r.keys(item, sp, {"field": True, "from": True, "values": True}, "`patient.sex`"):
                if item.get("from") != "gender":
                    self.r.error((*sp, "from"), "`patient.sex` is read `from: gender` (Patient.gender)")
                f = self._field(item, sp, ("enum",))
                values = item.get("values")
                if not isinstance(values, dict) or not values:
                    self.r.error((*sp, "values"), "`values` maps FHIR genders (male, female) to the field's codes")
                elif f is not None:
                    for gender, code in values.items():
                        if gender not in ("male", "female", "other", "unknown"):
                            self.r.error((*sp, "values", gender), f"`{gender}` is not a FHIR administrative gender")
                        elif code not in f.codes:
                            self.r.error(
                                (*sp, "values", gender), f"`{code}` is not a value of `{f.id}`{suggest(code, f.codes)}"
                            )
                        else:
                            genders[gender] = code
                    sex_field = f.id
        if "age" in node:
            ap = (*p, "age")
            item = node["age"]
            if self.r.keys(item, ap, {"field": True, "from": True}, "`patient.age`"):
                if item.get("from") != "birthDate":
                    self.r.error((*ap, "from"), "`patient.age` is read `from: birthDate` (Patient.birthDate)")
                f = self._field(item, ap, ("integer",))
                age_field = f.id if f else ""
        return PatientMap(sex_field, genders, age_field)

    def _facts(self, node: Any, path: Path, what: str, procedures: bool = False) -> tuple[CodedFact, ...]:
        if node is None:
            return ()
        if not isinstance(node, list):
            self.r.error(path, f"`{path[0]}` must be a list of {{field, value, codes}}")
            return ()
        out = []
        # A procedure may give only the months since it (e.g. a transplant whose technique is not coded).
        allowed = {"field": not procedures, "value": not procedures, "codes": True}
        if procedures:
            allowed["months_since"] = False
        else:
            allowed.update({"texts": False, "unconfirmed": False, "max_age_days": False})
        for i, item in enumerate(node):
            p = (*path, i)
            if not self.r.keys(item, p, allowed, what):
                continue
            codes = self._codes(item.get("codes"), (*p, "codes"), what)
            if procedures and "field" not in item and "months_since" not in item:
                self.r.error(p, "a procedure gives a `field` and `value`, a `months_since` field, or both")
                continue
            f = self._field(item, p, ("enum", "boolean", "set")) if "field" in item or not procedures else None
            value = self._value(f, item, p) if f is not None else None
            months = ""
            if item.get("months_since") is not None:
                g = self._field({"field": item["months_since"]}, (*p, "months_since"), ("integer",))
                months = g.id if g else ""
            texts = tuple(normal_text(t) for t in self.r.text_list(item, "texts", p, what))
            unconfirmed = None
            if "unconfirmed" in item and f is not None:
                if f.type != "enum":
                    self.r.error((*p, "unconfirmed"), "`unconfirmed` is for enum fields (e.g. diagnosis: uncertain)")
                else:
                    unconfirmed = self._value(f, {"value": item["unconfirmed"]}, (*p, "unconfirmed"))
            age = item.get("max_age_days")
            if age is not None and (type(age) is not int or age < 1):
                self.r.error((*p, "max_age_days"), "`max_age_days` must be a whole number of days (1 or more)")
                age = None
            if f is not None or months:
                out.append(
                    CodedFact(f.id if f else "", value, codes, months, self.r.src.line(p), texts, unconfirmed, age)
                )
        return tuple(out)

    def _observations(self, node: Any) -> tuple[ObservationFact, ...]:
        if node is None:
            return ()
        if not isinstance(node, list):
            self.r.error(("observations",), "`observations` must be a list of {field, codes, answers, max_age_days}")
            return ()
        out = []
        allowed = {"field": True, "codes": True, "answers": True, "max_age_days": True, "statuses": False}
        for i, item in enumerate(node):
            p = ("observations", i)
            if not self.r.keys(item, p, allowed, "an observation"):
                continue
            f = self._field(item, p, ("enum", "boolean"))
            codes = self._codes(item.get("codes"), (*p, "codes"), "an observation")
            age = item.get("max_age_days")
            if type(age) is not int or age < 1:
                self.r.error((*p, "max_age_days"), "`max_age_days` must be a whole number of days (1 or more)")
            answers = []
            node_answers = item.get("answers")
            if not isinstance(node_answers, list) or not node_answers:
                self.r.error((*p, "answers"), "`answers` must list {system, code, display, source, value}")
                node_answers = []
            for j, a in enumerate(node_answers):
                ap = (*p, "answers", j)
                code = self._code(a, ap, "an answer", extra={"value": True, "texts": False, "statuses": False})
                if code is not None and f is not None:
                    texts = tuple(normal_text(t) for t in self.r.text_list(a, "texts", ap, "an answer"))
                    only = self._statuses(a, "statuses", ap, OBSERVATION_STATUSES)
                    answers.append(Answer(code, self._value(f, a, ap), texts, only))
            statuses = self._statuses(item, "statuses", p, OBSERVATION_STATUSES) or DEFAULT_OBSERVATION_STATUSES
            if f is not None and type(age) is int:
                out.append(ObservationFact(f.id, codes, tuple(answers), age, self.r.src.line(p), statuses))
        return tuple(out)

    def _ingredients(self, node: Any) -> dict[str, Ingredient]:
        out: dict[str, Ingredient] = {}
        if node is None:
            return out
        path: Path = ("medications", "ingredients")
        if not isinstance(node, dict):
            self.r.error(path, "`ingredients` maps ingredient ids to {codes, products, orders}")
            return out
        for iid, item in node.items():
            p = (*path, iid)
            allowed = {"codes": False, "products": False, "orders": False, "names": False}
            if not self.r.keys(item, p, allowed, f"ingredient `{iid}`"):
                continue
            names = tuple(normal_text(n) for n in self.r.text_list(item, "names", p, f"ingredient `{iid}`"))
            for name in names:
                if len(name) < 5:
                    self.r.error((*p, "names"), f"name `{name}` is too short to match safely (5 letters or more)")
            if not item.get("codes") and not item.get("products"):
                self.r.error(p, f"ingredient `{iid}` needs its RxNorm ingredient `codes`, its `products`, or both")
            codes = self._codes(item["codes"], (*p, "codes"), f"ingredient `{iid}`") if item.get("codes") else ()
            products = []
            for j, prod in enumerate(item.get("products") or []):
                pp = (*p, "products", j)
                code = self._code(prod, pp, f"a product of `{iid}`", extra={"option": False})
                if code is None:
                    continue
                option = prod.get("option", "")
                if option and option not in self.rs.options:
                    self.r.error(
                        (*pp, "option"),
                        f"`{option}` is not an option of `{self.rs.id}`{suggest(option, self.rs.options)}",
                    )
                    option = ""
                products.append(Product(code, option))
            orders = item.get("orders") or []
            if not isinstance(orders, list):
                self.r.error((*p, "orders"), "`orders` must list option ids")
                orders = []
            for o in orders:
                if o not in self.rs.options:
                    self.r.error(
                        (*p, "orders"), f"`{o}` is not an option of `{self.rs.id}`{suggest(o, self.rs.options)}"
                    )
            for code in [*codes, *(prod.code for prod in products)]:
                if code.system and code.system != RXNORM:
                    self.r.error(p, f"medication codes are RxNorm; `{code.code}` is {CODE_SYSTEMS[code.system]}")
            out[str(iid)] = Ingredient(
                str(iid),
                codes,
                tuple(products),
                tuple(o for o in orders if o in self.rs.options),
                tuple(n for n in names if len(n) >= 5),
            )
        return out

    def _statuses(self, node: dict[str, Any], key: str, path: Path, allowed: tuple[str, ...]) -> tuple[str, ...]:
        values = self.r.text_list(node, key, path, f"`{key}`")
        for v in values:
            if v not in allowed:
                self.r.error((*path, key), f"`{v}` is not a FHIR status here{suggest(v, allowed)}")
        return tuple(v for v in values if v in allowed)

    def _condition_status(self, node: Any) -> dict[str, tuple[str, ...]]:
        """Which Condition statuses count: active (clinical), unconfirmed and refuted (verification)."""
        out = dict(DEFAULT_CONDITION_STATUS)
        if node is None:
            return out
        p: Path = ("condition_status",)
        if not self.r.keys(node, p, {"active": False, "unconfirmed": False, "refuted": False}, "`condition_status`"):
            return out
        if "active" in node:
            out["active"] = self._statuses(node, "active", p, CLINICAL_STATUSES)
        for key in ("unconfirmed", "refuted"):
            if key in node:
                out[key] = self._statuses(node, key, p, VERIFICATION_STATUSES)
        return out

    def _relevance(self, node: Any, conditions: tuple[CodedFact, ...], ingredients: dict[str, Ingredient]) -> Relevance:
        if node is None:
            return Relevance()
        p: Path = ("relevance",)
        if not self.r.keys(node, p, {"conditions": False, "ingredients": False}, "`relevance`"):
            return Relevance()
        mapped = {c.field for c in conditions}
        fields = self.r.text_list(node, "conditions", p, "`relevance`")
        for fid in fields:
            if fid not in mapped:
                self.r.error(
                    (*p, "conditions"), f"`{fid}` is not a field of `conditions` in this file{suggest(fid, mapped)}"
                )
        names = self.r.text_list(node, "ingredients", p, "`relevance`")
        for name in names:
            if name not in ingredients:
                self.r.error(
                    (*p, "ingredients"), f"`{name}` is not in `medications.ingredients`{suggest(name, ingredients)}"
                )
        if not fields and not names:
            self.r.error(p, "`relevance` names condition fields, ingredients, or both")
        return Relevance(tuple(f for f in fields if f in mapped), tuple(n for n in names if n in ingredients))

    def _medications(self, node: Any, ingredients: dict[str, Ingredient]) -> tuple[MedicationClass, ...]:
        if node is None:
            return ()
        path: Path = ("medications",)
        if not self.r.keys(node, path, {"ingredients": True, "classes": False}, "`medications`"):
            return ()
        out = []
        for i, item in enumerate(node.get("classes") or []):
            p = (*path, "classes", i)
            if not self.r.keys(item, p, {"field": True, "value": True, "ingredients": True}, "a medication class"):
                continue
            f = self._field(item, p, ("enum", "boolean", "set"))
            names = item.get("ingredients")
            if not isinstance(names, list) or not names:
                self.r.error(
                    (*p, "ingredients"), "`ingredients` must list ingredient ids from `medications.ingredients`"
                )
                names = []
            for name in names:
                if name not in ingredients:
                    self.r.error(
                        (*p, "ingredients"), f"`{name}` is not in `medications.ingredients`{suggest(name, ingredients)}"
                    )
            if f is not None:
                out.append(
                    MedicationClass(
                        f.id, self._value(f, item, p), tuple(n for n in names if n in ingredients), self.r.src.line(p)
                    )
                )
        return tuple(out)
