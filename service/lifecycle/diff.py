"""What changed between two revisions of a ruleset, rule by rule, in plain words for auditors.

Rules, options, inputs and their allowed values, invariants, tests, references, strengths and the
metadata (version, reviewers, dates) are compared by id; a changed rule shows its conditions and actions
old and new side by side, in the words the ruleset document uses (service/ruleset/words.py). Source line
numbers are ignored: moving a rule in the file is not a change.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ..render import invariant_words
from ..ruleset.model import Ruleset
from ..ruleset.words import describe, describe_action


@dataclass
class Change:
    kind: str  # added | removed | changed
    key: str
    title: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (what, old, new) in words

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "title": self.title,
            "fields": [{"what": w, "old": o, "new": n} for w, o, n in self.fields],
        }


@dataclass
class Diff:
    old: dict[str, str]
    new: dict[str, str]
    sections: dict[str, list[Change]]

    @property
    def empty(self) -> bool:
        return not any(self.sections.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "sections": {name: [c.as_dict() for c in changes] for name, changes in self.sections.items()},
        }


def _plain(value: Any) -> Any:
    """A dataclass as a comparable dict without source line numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "line"}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _words(value: Any) -> str:
    if value in (None, "", [], {}):
        return "(none)"
    if isinstance(value, list):
        return "; ".join(_words(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_words(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    return str(value)


def _field_changes(old: dict[str, Any], new: dict[str, Any], skip: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    out = []
    for name in dict.fromkeys([*old, *new]):
        if name in skip or old.get(name) == new.get(name):
            continue
        out.append((name.replace("_", " "), _words(old.get(name)), _words(new.get(name))))
    return out


def _by_id(old: dict[str, Any], new: dict[str, Any], title: Any, details: Any, compare: Any = _plain) -> list[Change]:
    changes = []
    for key in dict.fromkeys([*old, *new]):
        if key not in new:
            changes.append(Change("removed", key, title(old[key]), details(None, old[key])))
        elif key not in old:
            changes.append(Change("added", key, title(new[key]), details(None, new[key])))
        elif compare(old[key]) != compare(new[key]):
            changes.append(Change("changed", key, title(new[key]), details(old[key], new[key])))
    return changes


def diff(old: Ruleset, new: Ruleset) -> Diff:
    def rule_fields(rs_old: Ruleset | None, rs_new: Ruleset, a: Any, b: Any) -> list[tuple[str, str, str]]:
        if a is None:
            return [
                ("when", "", describe(rs_new, b.when)),
                ("then", "", "; ".join(describe_action(rs_new, x) for x in b.then)),
            ]
        out = []
        if a.title != b.title:
            out.append(("title", a.title, b.title))
        if _plain(a.when) != _plain(b.when):
            out.append(("when", describe(old, a.when), describe(new, b.when)))
        if _plain(a.then) != _plain(b.then):
            out.append(
                (
                    "then",
                    "; ".join(describe_action(old, x) for x in a.then),
                    "; ".join(describe_action(new, x) for x in b.then),
                )
            )
        if a.references != b.references:
            out.append(("references", _words(list(a.references)), _words(list(b.references))))
        if a.description != b.description:
            out.append(("description", a.description or "(none)", b.description or "(none)"))
        return out

    def rule_details(a: Any, b: Any) -> list[tuple[str, str, str]]:
        # an added or removed rule is described in its own ruleset's words
        if a is None:
            rs = new if b in new.rules else old
            return rule_fields(None, rs, None, b)
        return rule_fields(old, new, a, b)

    def plain_details(a: Any, b: Any) -> list[tuple[str, str, str]]:
        if a is None:
            return []
        return _field_changes(_plain(a), _plain(b))

    def inv_details(a: Any, b: Any) -> list[tuple[str, str, str]]:
        if a is None:
            rs = new if b in new.invariants else old
            return [("states", "", invariant_words(rs, b))]
        return [("states", invariant_words(old, a), invariant_words(new, b))]

    def input_details(a: Any, b: Any) -> list[tuple[str, str, str]]:
        if a is None:
            return [("allowed values", "", _words(list(b.codes)) if b.values else f"{b.type}")]
        out = _field_changes(_plain(a), _plain(b), skip=("values",))
        gone = [c for c in a.codes if c not in b.codes]
        came = [c for c in b.codes if c not in a.codes]
        if gone:
            out.append(("values removed", ", ".join(gone), ""))
        if came:
            out.append(("values added", "", ", ".join(came)))
        relabelled = [(v.code, v.label, b.values[b.codes.index(v.code)].label) for v in a.values if v.code in b.codes]
        for code, was, now in relabelled:
            if was != now:
                out.append((f"label of `{code}`", was, now))
        return out

    meta_keys = (
        "version",
        "title",
        "status",
        "institution",
        "effective",
        "review_due",
        "purpose",
        "explanation",
        "keywords",
        "authors",
        "reviewers",
    )
    meta = _field_changes(
        {k: _plain(getattr(old, k)) for k in meta_keys}, {k: _plain(getattr(new, k)) for k in meta_keys}
    )
    sections: dict[str, list[Change]] = {
        "metadata": [Change("changed", "metadata", "Metadata", meta)] if meta else [],
        "rules": _by_id({r.id: r for r in old.rules}, {r.id: r for r in new.rules}, lambda r: r.title, rule_details),
        "options": _by_id(old.options, new.options, lambda o: o.label, plain_details),
        "inputs": _by_id(old.inputs, new.inputs, lambda f: f.label, input_details),
        "invariants": _by_id(
            {i.id: i for i in old.invariants}, {i.id: i for i in new.invariants}, lambda i: i.title, inv_details
        ),
        "tests": _by_id(
            {t.name: t for t in old.tests}, {t.name: t for t in new.tests}, lambda t: t.name, plain_details
        ),
        "references": _by_id(old.references, new.references, lambda r: r.citation[:80], plain_details),
        "strengths": _by_id(
            {s.id: s for s in old.strengths}, {s.id: s for s in new.strengths}, lambda s: s.label, plain_details
        ),
    }
    return Diff(old.summary, new.summary, sections)


def _anchor(section: str, key: str) -> str:
    return f"{section}-" + re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def to_markdown(d: Diff) -> str:
    """The diff as Markdown for the CLI; each change has an HTML anchor (`rules-<id>`) to link to."""
    lines = [
        f"# Changes in `{d.new['id']}`: {d.old['version']} → {d.new['version']}",
        "",
        f"Old: `{d.old['sha256']}`  ",
        f"New: `{d.new['sha256']}`",
        "",
    ]
    if d.empty:
        lines.append("No change in rules, options, inputs, invariants, tests, references or metadata.")
        return "\n".join(lines) + "\n"
    counts = {name: len(changes) for name, changes in d.sections.items() if changes}
    lines.append("Summary: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".")
    verbs = {"added": "Added", "removed": "Removed", "changed": "Changed"}
    for name, changes in d.sections.items():
        if not changes:
            continue
        lines += ["", f"## {name.capitalize()}", ""]
        for c in changes:
            lines.append(f'<a id="{_anchor(name, c.key)}"></a>')
            label = f"`{c.key}`" if c.key != "metadata" else ""
            lines.append(
                f"### {verbs[c.kind]} {name[:-1] if name.endswith('s') else name} {label} - {c.title}".replace(
                    "  ", " "
                )
            )
            if c.fields:
                lines += ["", "| | Before | After |", "|---|---|---|"]
                for what, was, now in c.fields:
                    lines.append(f"| {_cell(what)} | {_cell(was)} | {_cell(now)} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
