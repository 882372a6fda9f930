"""The active rulesets: loaded, compiled, verified, then activated - or kept out with their errors.

A ruleset becomes active only when its file loads without a single problem and `verify` passes
(evaluators agree, every invariant proven, every test green, no dead rule). A reload that fails keeps
the last good revision of that ruleset serving and records why. Every revision ever activated stays
reachable by sha256, so a past decision can be replayed against the exact file that made it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Engine
from .ruleset import Ruleset, RulesetError, load_file, ruleset_files
from .verify import Report, verify

log = logging.getLogger(__name__)

# Verification is deterministic for a given file, so its result is shared by every registry in the
# process (tests and CLI commands build several apps; gunicorn --preload verifies once in the master).
_reports: dict[str, Report] = {}
_reports_lock = threading.Lock()


def verified(ruleset: Ruleset) -> Report:
    with _reports_lock:
        report = _reports.get(ruleset.sha256)
    if report is None:
        report = verify(ruleset)
        with _reports_lock:
            _reports[ruleset.sha256] = report
    return report


@dataclass
class Active:
    ruleset: Ruleset
    engine: Engine
    report: Report
    stage: str = "production"  # or "testing": evaluated only when a request names it (id@version or sha)


@dataclass
class Failure:
    path: str
    problems: list[str]
    kept_sha256: str | None = None


@dataclass
class Registry:
    folder: Path
    active: dict[str, Active] = field(default_factory=dict)
    revisions: dict[str, Ruleset] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # file -> id of the ruleset it last activated
    testing: dict[str, Active] = field(default_factory=dict)  # sha256 -> testing revision (service/lifecycle)
    shadow: dict[str, Active] = field(default_factory=dict)  # ruleset id -> testing revision shadowing it
    # Called with (production Active, decision, profile) after each recorded decision; must never block.
    shadow_sink: Callable[[Active, dict[str, Any], dict[str, Any]], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_folder(cls, folder: str | Path) -> Registry:
        reg = cls(Path(folder))
        reg.reload()
        return reg

    def reload(self) -> dict[str, Failure]:
        """(Re)load every file of the folder; bad files never replace good revisions."""
        failures: dict[str, Failure] = {}
        if not self.folder.is_dir():
            failures[str(self.folder)] = Failure(str(self.folder), ["rulesets folder does not exist"])
        seen: set[str] = set()
        for path in ruleset_files(self.folder) if self.folder.is_dir() else []:
            try:
                candidate = load_file(path)
            except RulesetError as exc:
                previous = self.active.get(self.paths.get(str(path), ""))
                kept = previous.ruleset.sha256 if previous else None
                failures[str(path)] = Failure(str(path), [str(p) for p in exc.problems], kept)
                continue
            if candidate.id in seen:
                failures[str(path)] = Failure(str(path), [f"{path}: ruleset id `{candidate.id}` is used by two files"])
                continue
            seen.add(candidate.id)
            current = self.active.get(candidate.id)
            if current and current.ruleset.sha256 == candidate.sha256:
                continue
            error = self._activate(candidate)
            if not error:
                self.paths[str(path)] = candidate.id
            if error:
                failures[str(path)] = Failure(str(path), error, current.ruleset.sha256 if current else None)
        with self._lock:
            self.failures = failures
        for f in failures.values():
            kept = f" (still serving {f.kept_sha256[:12]})" if f.kept_sha256 else ""
            log.error("ruleset not activated%s: %s", kept, "; ".join(f.problems))
        return failures

    def _activate(self, ruleset: Ruleset) -> list[str] | None:
        engine = Engine(ruleset)
        report = verified(ruleset)
        if not report.ok:
            engine.close()
            return [f"{ruleset.path}: verification failed: {reason}" for reason in failure_reasons(report)]
        with self._lock:
            self.active[ruleset.id] = Active(ruleset, engine, report)
            self.revisions[ruleset.sha256] = ruleset
        # The previous engine is left to the garbage collector rather than freed here: a request in
        # another thread may still be evaluating on it (durable_rules has no reference counting).
        log.info("activated ruleset %s %s (%s)", ruleset.id, ruleset.version, ruleset.sha256[:12])
        return None

    def install(self, ruleset: Ruleset, stage: str = "production") -> None:
        """Swap in a revision that passed the gate (service/lifecycle): one dict assignment, so a request
        sees either the old Active or the new one, never a mix."""
        entry = Active(ruleset, Engine(ruleset), verified(ruleset), stage)
        with self._lock:
            if stage == "production":
                self.active[ruleset.id] = entry
            else:
                self.testing[ruleset.sha256] = entry
            self.revisions[ruleset.sha256] = ruleset
        log.info("installed %s ruleset %s %s (%s)", stage, ruleset.id, ruleset.version, ruleset.sha256[:12])

    def withdraw(self, ruleset_id: str, path: str, why: str) -> None:
        """Stop serving a revision the folder activated (the lifecycle refused it, e.g. unsigned); the
        reason is listed among the failures (/readyz, the rulesets page)."""
        with self._lock:
            self.active.pop(ruleset_id, None)
            self.failures = {**self.failures, path: Failure(path, [why])}

    def drop_testing(self, keep: set[str]) -> None:
        with self._lock:
            self.testing = {sha: a for sha, a in self.testing.items() if sha in keep}

    def get(self, ruleset_id: str) -> Active | None:
        return self.active.get(ruleset_id)

    def lookup(self, ref: str) -> Active | None:
        """A revision named explicitly: `<id>@<version>` or a sha256 (production or testing)."""
        candidates = [*self.active.values(), *self.testing.values()]
        if "@" in ref:
            ruleset_id, _, version = ref.partition("@")
            for a in candidates:
                if a.ruleset.id == ruleset_id and (a.ruleset.version == version or a.ruleset.sha256 == version):
                    return a
            return None
        for a in candidates:
            if a.ruleset.sha256 == ref:
                return a
        return None

    def default(self) -> Active | None:
        """The ruleset to use when a request names none: the only production one, if exactly one."""
        production = [a for a in self.active.values() if a.ruleset.status == "production"]
        return production[0] if len(production) == 1 else None

    def all(self) -> list[Active]:
        return sorted(self.active.values(), key=lambda a: a.ruleset.id)


def failure_reasons(report: Report) -> list[str]:
    reasons = []
    if report.disagreements:
        reasons.append(f"durable_rules and the reference evaluator disagree on {len(report.disagreements)} profile(s)")
    for inv in report.invariants:
        if inv.status != "proven":
            reasons.append(f"invariant {inv.id} {inv.status}: counterexample {inv.counterexample}")
    for test in report.tests:
        if not test.passed:
            reasons.append(f"test '{test.name}' failed: {'; '.join(test.failures)}")
    if report.dead_rules:
        reasons.append(f"rules that can never fire: {', '.join(report.dead_rules)}")
    reasons.extend(report.errors)
    return reasons
