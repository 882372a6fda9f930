"""Metadata, vocabulary (inputs) and option catalogue sections of a ruleset file."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace
from typing import Any

from .conditions import parse_condition
from .errors import suggest
from .model import (
    EVIDENCE_LEVELS,
    FIELD_TYPES,
    OPTION_KINDS,
    PATIENT_KEYS,
    Caveat,
    Condition,
    Course,
    InputField,
    Option,
    PatientText,
    Person,
    Reference,
    Strength,
    Value,
    condition_leaves,
)
from .reader import IDENT, RESERVED_FIELDS, RULE_ID, Path, TreeReader, layer_problems


def read_people(r: TreeReader, node: Any, path: Path, what: str, need_date: bool) -> tuple[Person, ...]:
    if not isinstance(node, list) or not node:
        if node is not None:
            r.error(path, f"`{what}` must be a list of people, each with a `name`")
        return ()  # a missing key is reported with the other top-level keys
    allowed = {"name": True, "role": need_date, "date": need_date, "email": False}
    people = []
    for i, item in enumerate(node):
        p = (*path, i)
        if not r.keys(item, p, allowed, f"an entry of `{what}`"):
            continue
        people.append(
            Person(
                name=r.text(item, "name", p, what),
                role=r.text(item, "role", p, what, required=False),
                date=r.date(item, "date", p, what),
            )
        )
    return tuple(people)


def read_references(r: TreeReader, node: Any) -> dict[str, Reference]:
    refs: dict[str, Reference] = {}
    if node is None:
        return refs
    if not isinstance(node, dict) or not node:
        r.error(("references",), "`references` must map reference ids to {citation, url, evidence}")
        return refs
    for rid, item in node.items():
        p = ("references", rid)
        if not isinstance(rid, str) or not RULE_ID.match(rid):
            r.error(p, f"reference id {rid!r} must be letters, digits, `-`, `_` or `.`")
            continue
        if not r.keys(item, p, {"citation": True, "url": False, "evidence": False}, f"reference `{rid}`"):
            continue
        url = r.text(item, "url", p, f"reference `{rid}`", required=False)
        if url and not re.match(r"^https?://", url):
            r.error((*p, "url"), f"`url` of reference `{rid}` must start with http:// or https://")
        refs[rid] = Reference(
            id=rid,
            citation=r.text(item, "citation", p, f"reference `{rid}`"),
            url=url,
            evidence=r.text(item, "evidence", p, f"reference `{rid}`", required=False),
        )
    return refs


def read_strengths(r: TreeReader, node: Any) -> tuple[Strength, ...]:
    if not isinstance(node, list) or not node:
        if node is not None:
            r.error(("strengths",), "`strengths` must list recommendation strengths, strongest first")
        return ()
    out = []
    for i, item in enumerate(node):
        p = ("strengths", i)
        if not r.keys(item, p, {"id": True, "label": True, "description": False}, "a strength"):
            continue
        sid = item.get("id")
        if not isinstance(sid, str) or not IDENT.match(sid):
            r.error((*p, "id"), f"strength id {sid!r} must be lower_case_with_underscores")
            continue
        if sid in [s.id for s in out]:
            r.error((*p, "id"), f"duplicate strength `{sid}`")
            continue
        out.append(
            Strength(sid, r.text(item, "label", p, "a strength"), r.text(item, "description", p, "a strength", False))
        )
    return tuple(out)


def read_groups(r: TreeReader, node: Any) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    if not isinstance(node, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in node.items()):
        r.error(("groups",), "`groups` must map group ids to their headings, e.g. `safety: Safety facts`")
        return ()
    return tuple(node.items())


INPUT_KEYS = {
    "type": True,
    "label": True,
    "help": True,
    "required": True,
    "group": False,
    "values": False,
    "min": False,
    "max": False,
    "unit": False,
    "applies_when": False,
}


def vocabulary(inputs: dict[str, InputField]) -> Any:
    """What parse_condition reads of a ruleset (its inputs), for conditions read before the ruleset exists."""
    return SimpleNamespace(inputs=inputs)


def condition_of(r: TreeReader, node: Any, path: Path, inputs: dict[str, InputField]) -> Condition | None:
    """A `when` / `applies_when` condition, in the rules' language (type-checked against the inputs)."""
    return parse_condition(r, node, path, vocabulary(inputs))


def read_inputs(r: TreeReader, node: Any, groups: tuple[tuple[str, str], ...]) -> dict[str, InputField]:
    fields: dict[str, InputField] = {}
    if not isinstance(node, dict) or not node:
        if node is not None:
            r.error(("inputs",), "`inputs` must map field ids to their definitions")
        return fields
    group_ids = [g for g, _ in groups]
    for fid, item in node.items():
        p = ("inputs", fid)
        if not isinstance(fid, str) or not IDENT.match(fid) or "__" in fid:
            r.error(p, f"field id {fid!r} must be lower_case_with_underscores (no double underscore)")
            continue
        if fid in RESERVED_FIELDS:
            r.error(p, f"field id `{fid}` is reserved by the engine; choose another name")
            continue
        what = f"input `{fid}`"
        if not r.keys(item, p, INPUT_KEYS, what):
            continue
        ftype = item.get("type")
        if ftype not in FIELD_TYPES:
            r.error((*p, "type"), f"type {ftype!r} of {what} is not a field type{suggest(ftype, FIELD_TYPES)}")
            continue
        required = item.get("required")
        if not isinstance(required, bool):
            r.error((*p, "required"), f"`required` of {what} must be true or false")
            required = False
        group = item.get("group", "")
        if group and group_ids and group not in group_ids:
            r.error((*p, "group"), f"group `{group}` of {what} is not declared in `groups`{suggest(group, group_ids)}")
        values: tuple[Value, ...] = ()
        minimum = maximum = None
        if ftype in ("enum", "ordered_enum", "set"):
            values = _values(r, item.get("values"), (*p, "values"), what)
            for key in ("min", "max", "unit"):
                if key in item:
                    r.error((*p, key), f"`{key}` applies to integer fields only, not to {ftype} {what}")
        else:
            if "values" in item:
                r.error((*p, "values"), f"`values` applies to enum and set fields only, not to {ftype} {what}")
            if ftype == "integer":
                minimum, maximum = item.get("min"), item.get("max")
                for key, v in (("min", minimum), ("max", maximum)):
                    if type(v) is not int:
                        r.error((*p, key), f"integer {what} needs a whole-number `{key}`, not {v!r}")
                if type(minimum) is int and type(maximum) is int and minimum > maximum:
                    r.error((*p, "min"), f"`min` of {what} is greater than its `max`")
                if not isinstance(item.get("unit"), str) or not item.get("unit"):
                    r.error((*p, "unit"), f"integer {what} needs a `unit` (e.g. years)")
            elif any(k in item for k in ("min", "max", "unit")):
                r.error(p, f"`min`, `max` and `unit` apply to integer fields only, not to {ftype} {what}")
        fields[fid] = InputField(
            id=fid,
            type=ftype,
            label=r.text(item, "label", p, what),
            help=r.text(item, "help", p, what),
            required=required,
            group=group if isinstance(group, str) else "",
            values=values,
            minimum=minimum if type(minimum) is int else None,
            maximum=maximum if type(maximum) is int else None,
            unit=item.get("unit", "") if isinstance(item.get("unit"), str) else "",
            line=r.src.line(p),
        )
    for fid, item in node.items():  # after every input is known: a condition may name a later one
        if fid not in fields or not isinstance(item, dict) or "applies_when" not in item:
            continue
        p = ("inputs", fid, "applies_when")
        cond = condition_of(r, item["applies_when"], p, fields)
        if cond is None:
            continue
        if fid in {leaf.field for leaf in condition_leaves(cond)}:
            r.error(p, f"`applies_when` of input `{fid}` names `{fid}` itself; it must depend on other inputs")
            continue
        fields[fid] = dataclasses.replace(fields[fid], applies_when=cond)
    return fields


def _values(r: TreeReader, node: Any, path: Path, what: str) -> tuple[Value, ...]:
    if not isinstance(node, list) or not node:
        r.error(path, f"{what} needs `values`: a list of {{code, label}}")
        return ()
    out: list[Value] = []
    for i, item in enumerate(node):
        p = (*path, i)
        if not r.keys(item, p, {"code": True, "label": True, "help": False}, f"a value of {what}"):
            continue
        code = item.get("code")
        if not isinstance(code, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", code):
            r.error((*p, "code"), f"value code {code!r} of {what} must be text of letters, digits, `_`, `-` or `.`")
            continue
        if code in [v.code for v in out]:
            r.error((*p, "code"), f"duplicate value `{code}` in {what}")
            continue
        out.append(Value(code, r.text(item, "label", p, what), r.text(item, "help", p, what, False)))
    return tuple(out)


OPTION_KEYS = {
    "label": True,
    "kind": True,
    "summary": True,
    "detail": False,
    "regimen": False,
    "course": False,
    "cost": False,
    "evidence": True,
    "caveats": False,
    "references": False,
    "patient": False,
}
CAVEAT_KEYS = {"text": True, "detail": False, "evidence": False, "when": False}


def read_options(
    r: TreeReader, node: Any, refs: dict[str, Reference], inputs: dict[str, InputField]
) -> dict[str, Option]:
    options: dict[str, Option] = {}
    if not isinstance(node, dict) or not node:
        if node is not None:
            r.error(("options",), "`options` must map option ids to their catalogue entries")
        return options
    for oid, item in node.items():
        p = ("options", oid)
        what = f"option `{oid}`"
        if not isinstance(oid, str) or not IDENT.match(oid):
            r.error(p, f"option id {oid!r} must be lower_case_with_underscores")
            continue
        if not r.keys(item, p, OPTION_KEYS, what):
            continue
        kind = item.get("kind")
        if kind not in OPTION_KINDS:
            r.error((*p, "kind"), f"kind {kind!r} of {what} is not an option kind{suggest(kind, OPTION_KINDS)}")
        course = Course()
        if "course" in item:
            c = item["course"]
            cp = (*p, "course")
            if r.keys(c, cp, {"sessions": False, "time_to_response": False, "maintenance": False}, f"course of {what}"):
                course = Course(
                    sessions=r.layered(c, "sessions", cp, what, "long"),
                    time_to_response=r.layered(c, "time_to_response", cp, what, "long"),
                    maintenance=r.layered(c, "maintenance", cp, what, "long"),
                )
        level, note = "not_applicable", ""
        ev = item.get("evidence")
        ep = (*p, "evidence")
        if ev is not None and r.keys(ev, ep, {"level": True, "note": True}, f"evidence of {what}"):
            level = ev.get("level")
            if level not in EVIDENCE_LEVELS:
                r.error(
                    (*ep, "level"), f"evidence level {level!r} of {what} is not valid{suggest(level, EVIDENCE_LEVELS)}"
                )
                level = "not_applicable"
            note = r.layered(ev, "note", ep, what, "evidence", required=True)
        option_refs = read_refs(r, item, p, refs, what)
        caveats = _caveats(r, item.get("caveats"), (*p, "caveats"), what, inputs)
        options[oid] = Option(
            id=oid,
            label=r.text(item, "label", p, what),
            kind=kind if kind in OPTION_KINDS else "",  # invalid: reported once, checked nowhere else
            summary=r.layered(item, "summary", p, what, "short", required=True),
            regimen=r.layered(item, "regimen", p, what, "long"),
            course=course,
            cost=r.layered(item, "cost", p, what, "long"),
            evidence_level=level,
            evidence_note=note,
            caveats=tuple(c.text for c in caveats),
            references=option_refs,
            line=r.src.line(p),
            detail=r.layered(item, "detail", p, what, "detail"),
            caveat_items=caveats,
            patient=_patient(r, item.get("patient"), (*p, "patient"), what),
        )
    return options


def _caveats(r: TreeReader, node: Any, path: Path, what: str, inputs: dict[str, InputField]) -> tuple[Caveat, ...]:
    """Standing caveats: plain short texts, or {text, detail, evidence, when} mappings."""
    if node is None:
        return ()
    if isinstance(node, str):
        node = [node]
    if not isinstance(node, list):
        r.error(path, f"`caveats` of {what} must be a list of texts or {{text, detail, evidence, when}} mappings")
        return ()
    out = []
    for i, item in enumerate(node):
        p = (*path, i)
        if isinstance(item, str):
            text = item.strip()
            if not text:
                r.error(p, f"caveat {i + 1} of {what} must be non-empty text")
            for message in layer_problems(text, "short", r.rule_ids):
                r.error(p, f"caveat {i + 1} of {what} {message}")
            out.append(Caveat(text=text, line=r.src.line(p)))
            continue
        if not r.keys(item, p, CAVEAT_KEYS, f"a caveat of {what}"):
            continue
        cwhat = f"a caveat of {what}"
        when = condition_of(r, item["when"], (*p, "when"), inputs) if "when" in item else None
        out.append(
            Caveat(
                text=r.layered(item, "text", p, cwhat, "short", required=True),
                detail=r.layered(item, "detail", p, cwhat, "detail"),
                evidence=r.layered(item, "evidence", p, cwhat, "evidence"),
                when=when,
                line=r.src.line(p),
            )
        )
    return tuple(out)


def _patient(r: TreeReader, node: Any, path: Path, what: str) -> PatientText:
    """The plain-language handout texts of an option (fixed keys, each optional)."""
    if node is None:
        return PatientText()
    if not r.keys(node, path, dict.fromkeys(PATIENT_KEYS, False), f"`patient` of {what}"):
        return PatientText()
    return PatientText(**{k: r.layered(node, k, path, f"`patient` of {what}", "patient") for k in PATIENT_KEYS})


def read_refs(
    r: TreeReader, item: dict[str, Any], path: Path, refs: dict[str, Reference], what: str
) -> tuple[str, ...]:
    ids = r.text_list(item, "references", path, what)
    for i, ref in enumerate(ids):
        if ref not in refs:
            r.error((*path, "references", i), f"{what} cites `{ref}`, which is not in `references`{suggest(ref, refs)}")
    return ids
