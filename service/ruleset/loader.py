"""Read a ruleset file strictly and report every problem in it at once.

Strict means: unknown keys, undefined options, fields, values, references or strengths, duplicate ids
and type mismatches are all errors. A file with any error never becomes a `Ruleset`, so it can never
replace a good one (see registry.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from pathlib import Path as FsPath
from typing import Any

from . import yamlsrc
from .errors import Problem, RulesetError, suggest
from .model import STATUSES, Ruleset, TestCase
from .reader import SEMVER, TreeReader
from .rules import read_invariants, read_rules
from .sections import read_groups, read_inputs, read_options, read_people, read_references, read_strengths
from .testcases import read_tests

TOP_KEYS = {
    "id": True,
    "version": True,
    "title": True,
    "status": True,
    "institution": True,
    "authors": True,
    "reviewers": True,
    "effective": True,
    "review_due": True,
    "purpose": True,
    "explanation": True,
    "keywords": True,
    "references": True,
    "strengths": True,
    "groups": False,
    "inputs": True,
    "options": True,
    "rules": True,
    "invariants": True,
    "tests": False,
}
TEST_FILE_SUFFIX = ".tests.yaml"

Path = tuple[Any, ...]


def load_file(path: str | FsPath) -> Ruleset:
    """Load and validate one ruleset file (and its sibling `.tests.yaml`, if any)."""
    path = FsPath(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesetError(str(path), [Problem(str(path), None, None, f"cannot read file: {exc.strerror}")]) from None
    tests_path = path.with_name(path.name.removesuffix(".yaml").removesuffix(".yml") + TEST_FILE_SUFFIX)
    tests_text = None
    if tests_path.exists() and tests_path != path:
        tests_text = tests_path.read_text(encoding="utf-8")
    return load_text(raw, str(path), tests_text=tests_text, tests_file=str(tests_path) if tests_text else "")


def load_text(
    raw: bytes | str, file: str = "<ruleset>", tests_text: str | None = None, tests_file: str = ""
) -> Ruleset:
    """Validate ruleset text. Raises RulesetError listing every problem found."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesetError(file, [Problem(file, None, None, f"file is not UTF-8 text ({exc.reason})")]) from None
    try:
        src = yamlsrc.parse(text)
    except yamlsrc.YamlSyntaxError as exc:
        raise RulesetError(file, [Problem(file, exc.line, None, f"YAML syntax error: {exc.message}")]) from None
    reader = TreeReader(file, src)
    for line, message in src.problems:
        reader.error((), message, line=line)
    ruleset = _build(reader, src.data, file, text, hashlib.sha256(raw).hexdigest())

    if tests_text is not None:
        try:
            tsrc = yamlsrc.parse(tests_text)
        except yamlsrc.YamlSyntaxError as exc:
            reader.problems.append(Problem(tests_file, exc.line, None, f"YAML syntax error: {exc.message}"))
        else:
            treader = TreeReader(tests_file, tsrc)
            for line, message in tsrc.problems:
                treader.error((), message, line=line)
            extra: tuple[TestCase, ...] = ()
            if ruleset is not None:
                if not isinstance(tsrc.data, dict) or set(tsrc.data) != {"tests"}:
                    treader.error((), "a tests file holds one key, `tests`, with a list of test cases")
                else:
                    extra = read_tests(treader, tsrc.data["tests"], ("tests",), ruleset)
            reader.problems.extend(treader.problems)
            if ruleset is not None:
                ruleset = _replace(ruleset, tests=ruleset.tests + extra, tests_path=tests_file)
    if ruleset is not None and not ruleset.tests:
        reader.error((), "the ruleset has no tests: add `tests:` or a sibling file ending in .tests.yaml")
    if reader.problems or ruleset is None:
        raise RulesetError(file, reader.problems or [Problem(file, None, None, "invalid ruleset")])
    if ruleset.tests:
        names = [t.name for t in ruleset.tests]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RulesetError(file, [Problem(file, None, None, f"duplicate test names: {', '.join(dupes)}")])
    return ruleset


def _replace(ruleset: Ruleset, **changes: Any) -> Ruleset:
    return dataclasses.replace(ruleset, **changes)


def _build(r: TreeReader, data: Any, file: str, text: str, sha: str) -> Ruleset | None:
    if not isinstance(data, dict):
        r.error((), "a ruleset file must be a YAML mapping starting with `id:`, `version:`, `title:` ...")
        return None
    r.keys(data, (), TOP_KEYS, "the ruleset")
    meta = "the ruleset"

    rid = data.get("id")
    if not isinstance(rid, str) or not re.match(r"^[a-z0-9][a-z0-9-]*$", rid or ""):
        r.error(("id",), "`id` must be lower-case letters, digits and dashes, e.g. `androgenetic-alopecia`")
        rid = str(rid)
    version = data.get("version")
    if not isinstance(version, str) or not SEMVER.match(version):
        hint = ' (write it in quotes, e.g. "1.0.0")' if isinstance(version, (int, float)) else ""
        r.error(("version",), f"`version` must be a semantic version like 1.2.0, not {version!r}{hint}")
        version = str(version)
    status = data.get("status")
    if status not in STATUSES:
        r.error(("status",), f"`status` is {status!r}, which is not a valid status{suggest(status, STATUSES)}")

    authors = read_people(r, data.get("authors"), ("authors",), "authors", need_date=False)
    reviewers = read_people(r, data.get("reviewers"), ("reviewers",), "reviewers", need_date=True)
    effective = r.date(data, "effective", (), meta)
    review_due = r.date(data, "review_due", (), meta)
    if effective and review_due and review_due <= effective:
        r.error(("review_due",), "`review_due` must be after `effective`")
    keywords = r.text_list(data, "keywords", (), meta)
    if "keywords" in data and not keywords:
        r.error(("keywords",), "`keywords` must list at least one keyword")

    raw_rules = data.get("rules")
    if isinstance(raw_rules, list):  # ids like H-5, M-3, TX-1: a short text must not name them
        ids = (item.get("id") for item in raw_rules if isinstance(item, dict))
        r.rule_ids = tuple(i for i in ids if isinstance(i, str) and "-" in i and any(ch.isdigit() for ch in i))
    references = read_references(r, data.get("references"))
    strengths = read_strengths(r, data.get("strengths"))
    groups = read_groups(r, data.get("groups"))
    inputs = read_inputs(r, data.get("inputs"), groups)
    options = read_options(r, data.get("options"), references, inputs)

    ruleset = Ruleset(
        id=rid,
        version=version,
        title=r.text(data, "title", (), meta),
        status=status if status in STATUSES else "draft",
        institution=r.text(data, "institution", (), meta),
        authors=authors,
        reviewers=reviewers,
        effective=effective or dt.date.min,
        review_due=review_due or dt.date.min,
        purpose=r.text(data, "purpose", (), meta),
        explanation=r.text(data, "explanation", (), meta),
        keywords=keywords,
        references=references,
        strengths=strengths,
        inputs=inputs,
        groups=groups,
        options=options,
        rules=(),
        invariants=(),
        tests=(),
        path=file,
        source_text=text,
        sha256=sha,
    )
    rules = read_rules(r, data.get("rules"), ruleset)
    r.rule = None
    invariants = read_invariants(r, data.get("invariants"), ruleset)
    r.rule = None
    ruleset = _replace(ruleset, rules=rules, invariants=invariants)
    tests = read_tests(r, data["tests"], ("tests",), ruleset) if "tests" in data else ()
    return _replace(ruleset, tests=tests)


def ruleset_files(folder: str | FsPath) -> list[FsPath]:
    """Ruleset files in a folder: *.yaml except test files and FHIR mapping files."""
    folder = FsPath(folder)
    if folder.is_file():
        return [folder]
    return sorted(
        p
        for p in folder.glob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and not p.name.endswith(TEST_FILE_SUFFIX) and ".fhir." not in p.name
    )
