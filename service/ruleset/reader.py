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
