"""Reading a parsed YAML tree while collecting every problem with its line."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from . import yamlsrc
from .errors import Problem, suggest

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
RESERVED_FIELDS = {"sid", "t", "id"}

# The text layers (rulesets/README.md, "Text layers"): what a clinician reads first is short and free of
# authoring marks; the marks live in the evidence layer, for auditors.
SHORT_MAX, DETAIL_MAX, EVIDENCE_MAX, PATIENT_MAX = 160, 600, 1500, 400
TAG = re.compile(r"\[[^\]]*\]")
HARD_ID = re.compile(r"\bH-\d+[A-Za-z]*\b")
# A sentence ends at . ! or ? followed by a space and a capital or digit; common abbreviations do not end one.
SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\betc)(?<!\bDr)(?<!\bapprox)[.!?]\s+[A-Z0-9(]")


Path = tuple[Any, ...]


class TreeReader:
    """Reads one parsed YAML file (ruleset, tests or FHIR mapping) and collects every problem with its line.

    The section readers (sections.py, rules.py, conditions.py, testcases.py, cds/mapping.py) share it, so
    a file is reported in full at once rather than stopping at its first mistake.
    """

    def __init__(self, file: str, src: yamlsrc.Source) -> None:
        self.file = file
        self.src = src
        self.problems: list[Problem] = []
        self.rule: str | None = None
        self.rule_ids: tuple[str, ...] = ()  # ids a short text must not name (set by the loader)

    def error(self, path: Path, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.file, line or self.src.line(path), self.rule, message))

    def keys(self, node: Any, path: Path, allowed: dict[str, bool], what: str) -> bool:
        """Check a mapping's keys: required ones present, nothing unknown."""
        if not isinstance(node, dict):
            self.error(path, f"{what} must be a mapping of keys to values, not {kind_of(node)}")
            return False
        for key in node:
            if key not in allowed:
                self.error((*path, key), f"unknown key `{key}` in {what}{suggest(key, allowed)}")
        for key, required in allowed.items():
            if required and key not in node:
                self.error(path, f"{what} is missing the required key `{key}`")
        return True

    def text(self, node: Any, key: str, path: Path, what: str, required: bool = True) -> str:
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.error((*path, key), f"`{key}` of {what} must be non-empty text, not {kind_of(value)}")
            return ""
        return value.strip()

    def text_list(self, node: Any, key: str, path: Path, what: str) -> tuple[str, ...]:
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.error((*path, key), f"`{key}` of {what} must be a list of texts")
            return ()
        return tuple(v.strip() for v in value)

    def layered(self, node: Any, key: str, path: Path, what: str, layer: str, required: bool = False) -> str:
        """A text of one layer (`short`, `detail`, `evidence`, `patient`, `long`), checked against its limits."""
        value = self.text(node, key, path, what, required=required)
        if value:
            for message in layer_problems(value, layer, self.rule_ids):
                self.error((*path, key), f"`{key}` of {what} {message}")
        return value

    def date(self, node: Any, key: str, path: Path, what: str) -> dt.date | None:
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.error((*path, key), f"`{key}` of {what} must be a date written YYYY-MM-DD, not {value!r}")
        return None


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "a yes/no value",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def layer_problems(text: str, layer: str, rule_ids: Any = ()) -> list[str]:
    """Why a text does not fit its layer (empty when it does). `long`: regimen, course, cost (tags allowed)."""
    limit = {"short": SHORT_MAX, "detail": DETAIL_MAX, "evidence": EVIDENCE_MAX, "patient": PATIENT_MAX}.get(
        layer, DETAIL_MAX
    )
    out = []
    if len(text) > limit:
        out.append(f"is {len(text)} characters; a {layer} text has at most {limit}")
    if layer in ("evidence", "long"):
        return out
    tag = TAG.search(text)
    if tag:
        out.append(f"carries the tag `{tag.group(0)}`: tags belong in `evidence`")
    if "§" in text:
        out.append("cites a section (`§`): section numbers belong in `evidence`")
    if layer == "short":
        hard = HARD_ID.search(text)
        if hard:
            out.append(f"names the exclusion id `{hard.group(0)}`: ids belong in `evidence`")
        else:
            for rid in rule_ids:
                if re.search(rf"(?<![\w-]){re.escape(rid)}(?![\w-])", text):
                    out.append(f"names the rule id `{rid}`: ids belong in `evidence`")
                    break
        if SENTENCE_END.search(text.rstrip(".!? ")):
            out.append("has more than one sentence; a short text is one sentence (put the rest in `detail`)")
    return out
