"""Named test cases: a profile and what the decision must contain."""

from __future__ import annotations

from typing import Any

from .errors import suggest
from .model import Expectation, Ruleset, TestCase
from .profile import validate_profile
from .reader import Path, TreeReader

EXPECT_KEYS = {
    "candidates": False,
    "includes": False,
    "not_candidates": False,
    "excluded": False,
    "referrals": False,
    "strengths": False,
    "fired": False,
    "not_fired": False,
}


class _Expect:
    """Reads one `expect:` mapping; every id it names must exist in the ruleset."""

    def __init__(self, r: TreeReader, rs: Ruleset, node: dict[str, Any], path: Path, what: str) -> None:
        self.r, self.rs, self.node, self.path, self.what = r, rs, node, path, what

    def options(self, key: str) -> tuple[str, ...] | None:
        if key not in self.node:
            return None
        v = self.node[key] or []
        if not isinstance(v, list) or not all(isinstance(o, str) for o in v):
            self.r.error((*self.path, key), f"`{key}` of {self.what} must be a list of option ids")
            return None
        for o in v:
            if o not in self.rs.options:
                self.r.error(
                    (*self.path, key),
                    f"{self.what} expects option `{o}`, which is not in `options`{suggest(o, self.rs.options)}",
                )
        return tuple(v)

    def rules(self, key: str) -> tuple[str, ...]:
        v = self.node.get(key) or []
        ids = [x.id for x in self.rs.rules]
        if not isinstance(v, list):
            self.r.error((*self.path, key), f"`{key}` of {self.what} must be a list of rule ids")
            return ()
        for x in v:
            if x not in ids:
                self.r.error((*self.path, key), f"{self.what} names rule `{x}`, which does not exist{suggest(x, ids)}")
        return tuple(v)

    def strengths(self) -> tuple[tuple[str, str], ...]:
        sv = self.node.get("strengths")
        if sv is None:
            return ()
        if not isinstance(sv, dict):
            self.r.error((*self.path, "strengths"), f"`strengths` of {self.what} must map options to strengths")
            return ()
        ids = [s.id for s in self.rs.strengths]
        for o, s in sv.items():
            if o not in self.rs.options:
                self.r.error(
                    (*self.path, "strengths", o), f"{self.what}: unknown option `{o}`{suggest(o, self.rs.options)}"
                )
            if s not in ids:
                self.r.error((*self.path, "strengths", o), f"{self.what}: unknown strength `{s}`{suggest(s, ids)}")
        return tuple(sv.items())

    def build(self) -> Expectation:
        return Expectation(
            candidates=self.options("candidates"),
            includes=self.options("includes") or (),
            not_candidates=self.options("not_candidates") or (),
            excluded=self.options("excluded"),
            referrals=self.options("referrals"),
            strengths=self.strengths(),
            fired=self.rules("fired"),
            not_fired=self.rules("not_fired"),
        )


def read_tests(r: TreeReader, node: Any, path: Path, rs: Ruleset) -> tuple[TestCase, ...]:
    if not isinstance(node, list):
        r.error(path, "`tests` must be a list of test cases")
        return ()
    out = []
    for i, item in enumerate(node):
        p = (*path, i)
        r.rule = None
        if not r.keys(item, p, {"name": True, "profile": True, "expect": True, "description": False}, "a test case"):
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            r.error((*p, "name"), "test `name` must be text")
            continue
        what = f"test `{name}`"
        profile = item.get("profile")
        if not isinstance(profile, dict):
            r.error((*p, "profile"), f"`profile` of {what} must be a mapping of field ids to values")
            continue
        for problem in validate_profile(rs, profile).errors:
            where = (*p, "profile", problem.field) if problem.field in profile else (*p, "profile")
            r.error(where, f"{what}: {problem.message}")
        ep = (*p, "expect")
        if not r.keys(item.get("expect"), ep, EXPECT_KEYS, f"`expect` of {what}"):
            continue
        expect = _Expect(r, rs, item["expect"], ep, what).build()
        out.append(TestCase(name=name.strip(), profile=profile, expect=expect, line=r.src.line(p)))
    return tuple(out)
