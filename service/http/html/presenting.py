"""Words and shapes the page templates need, derived from the ruleset so no template knows the vocabulary.

The templates only loop and print: grouping inputs into fieldsets, the words for a patient's value, the
verdict of a condition and the inline code marks of generated sentences are all decided here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from markupsafe import Markup, escape

from ...ruleset.model import InputField, Ruleset
from ...ruleset.words import (
    COURSE_LABELS,
    LEVEL_WORDS,
    SEMANTICS,
    allowed_words,
    describe,
    describe_action,
    invariant_words,
)

UNGROUPED = "Other facts"
VERDICTS = {"true": "holds", "false": "does not hold", "unknown": "undecided"}
RULE_STATUS = {"fired": "fired", "not_fired": "did not fire", "undecided": "undecided"}
_CODE = re.compile(r"`([^`]+)`")
_EMPHASIS = re.compile(r"\*([^*]+)\*")


@dataclass(frozen=True)
class Fieldset:
    heading: str
    fields: tuple[InputField, ...]


def fieldsets(ruleset: Ruleset) -> list[Fieldset]:
    """Inputs grouped under the ruleset's group headings, in the file's order; ungrouped ones last."""
    out = []
    for gid, heading in ruleset.groups:
        fields = tuple(f for f in ruleset.inputs.values() if f.group == gid)
        if fields:
            out.append(Fieldset(heading, fields))
    rest = tuple(f for f in ruleset.inputs.values() if not f.group)
    if rest:
        out.append(Fieldset(UNGROUPED if out else "Patient facts", rest))
    return out


def value_words(f: InputField, value: Any, empty: str = "None of these") -> str:
    """A recorded value as a clinician reads it: labels, yes/no, numbers with their unit."""
    if value is None:
        return "not recorded"
    if f.type == "boolean":
        return "Yes" if value else "No"
    if f.type == "integer":
        return f"{value} {f.unit}".strip()
    if f.type == "set":
        return ", ".join(f.value_label(v) for v in value) if value else empty
    return f.value_label(value)


def profile_rows(ruleset: Ruleset, profile: dict[str, Any], empty: str = "None of these") -> list[tuple[str, str]]:
    """(label, value) of every recorded input, in the ruleset's order; `empty` words a set recorded as empty."""
    return [(f.label, value_words(f, profile[fid], empty)) for fid, f in ruleset.inputs.items() if fid in profile]


def inline(text: str) -> Markup:
    """Escape generated text, then show its `code` marks as <code> and *emphasis* as <em>."""
    html = str(escape(text))
    html = _CODE.sub(r"<code>\1</code>", html)
    return Markup(_EMPHASIS.sub(r"<em>\1</em>", html))  # noqa: S704 - built from escaped text only


def node_value(ruleset: Ruleset, node: dict[str, Any]) -> str:
    """The patient's value shown beside one condition of the explanation."""
    f = ruleset.inputs[node["field"]]
    if node["type"] in ("known", "unknown"):
        return "recorded" if node["known"] else "not recorded"
    return value_words(f, node["actual"]) if node["known"] else "not recorded"


def review_overdue(ruleset: Ruleset, today: dt.date | None = None) -> bool:
    return ruleset.review_due < (today or dt.datetime.now(dt.UTC).date())


def relative_paths(text: str, folder: str) -> str:
    """Problems name files relative to the rulesets folder: the server's own paths are not for the page."""
    prefix = folder.rstrip("/") + "/"
    return text.replace(prefix, "")


def register(app: Flask) -> None:
    """Make the helpers available to every template."""
    app.add_template_filter(inline)
    app.jinja_env.globals.update(
        COURSE_LABELS=COURSE_LABELS,
        LEVEL_WORDS=LEVEL_WORDS,
        RULE_STATUS=RULE_STATUS,
        SEMANTICS=SEMANTICS,
        VERDICTS=VERDICTS,
        allowed_words=allowed_words,
        describe=describe,
        describe_action=describe_action,
        invariant_words=invariant_words,
        node_value=node_value,
        review_overdue=review_overdue,
        value_words=value_words,
    )
