"""Load errors that an auditor can act on: file, line, rule and a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    rule: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f" rule `{self.rule}`:" if self.rule else ""
        return f"{where}:{rule} {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "rule": self.rule, "message": self.message}


class RulesetError(Exception):
    """Every problem found in one file, reported together so one edit cycle fixes them all."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def suggest(name: object, choices: Iterable[object]) -> str:
    """` (did you mean `x`?)` when a close match exists, else a list of what is allowed."""
    options = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean `{close[0]}`?)"
    if options and len(options) <= 25:
        return " (allowed: " + ", ".join(f"`{o}`" for o in options) + ")"
    return ""
