"""Everything a ruleset must pass before it is activated, and the report auditors read.

1. Cross-check: durable_rules and the reference evaluator fire the same rules on a systematic sample
   (every boundary of every condition in several base profiles, one SMT-built profile per rule, and
   random profiles). Any disagreement rejects the ruleset.
2. Invariants: proven for every valid profile with z3, or refuted with a counterexample that is then
   replayed through the real engine. When the space cut at the rules' boundaries is small, every
   piece is also enumerated through durable_rules as an independent confirmation.
3. Tests: every named case, with rule coverage.
4. Analysis: rules that can never fire, options never reachable, gaps (profiles with no answer).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import z3

from ..engine import Engine, reference
from ..engine.answer import Decision
from ..ruleset import space
from ..ruleset.model import Invariant, Ruleset
from ..ruleset.profile import validate_profile
from .smt import Encoding

ENUMERATION_LIMIT = 20_000
RANDOM_PROFILES = 400


@dataclass
class InvariantResult:
    id: str
    title: str
    status: str  # proven | refuted | undecided
    method: str
    counterexample: dict[str, Any] | None = None
    detail: str = ""


@dataclass
class TestResult:
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)


@dataclass
class Report:
    ruleset: str
    version: str
    sha256: str
    crosscheck_profiles: int = 0
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    covered_rules: list[str] = field(default_factory=list)
    uncovered_rules: list[str] = field(default_factory=list)
    dead_rules: list[str] = field(default_factory=list)
    unreachable_options: list[str] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    partitions: int = 0
    enumerated: bool = False
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def coverage(self) -> float:
        total = len(self.covered_rules) + len(self.uncovered_rules)
        return 100.0 * len(self.covered_rules) / total if total else 100.0

    @property
    def ok(self) -> bool:
        return (
            not self.disagreements
            and not self.errors
            and not self.dead_rules
            and all(i.status == "proven" for i in self.invariants)
            and all(t.passed for t in self.tests)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "version": self.version,
            "sha256": self.sha256,
            "ok": self.ok,
            "crosscheck": {"profiles": self.crosscheck_profiles, "disagreements": self.disagreements},
            "invariants": [vars(i) for i in self.invariants],
            "tests": [vars(t) for t in self.tests],
            "coverage": {
                "percent": round(self.coverage, 1),
                "covered": self.covered_rules,
                "uncovered": self.uncovered_rules,
            },
            "analysis": {
                "dead_rules": self.dead_rules,
                "unreachable_options": self.unreachable_options,
                "gaps": self.gaps,
                "partitions": self.partitions,
                "enumerated": self.enumerated,
            },
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
        }


def _jsonable(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in profile.items()}


def crosscheck(ruleset: Ruleset, engine: Engine, seed: int = 20261122) -> tuple[int, list[dict[str, Any]]]:
    """Compare durable_rules with the reference evaluator; return (profiles tried, disagreements)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    profiles: list[dict[str, Any]] = list(space.boundary_profiles(ruleset, rng))
    profiles += [space.random_profile(ruleset, rng) for _ in range(RANDOM_PROFILES)]
    enc = Encoding(ruleset)
    for rule in ruleset.rules:
        found = enc.find(enc.fires[rule.id])
        if isinstance(found, dict):
            profiles.append(validate_profile(ruleset, found).profile or found)
    disagreements = []
    for p in profiles:
        durable = engine.fired(p)
        oracle = reference.fired_rules(ruleset, p)
        if durable != oracle:
            disagreements.append({"profile": _jsonable(p), "durable_rules": durable, "reference": oracle})
            if len(disagreements) >= 5:
                break
    return len(profiles), disagreements


def invariant_holds(ruleset: Ruleset, inv: Invariant, profile: dict[str, Any], decision: Decision) -> bool:
    if inv.when is not None and reference.evaluate(ruleset, inv.when, profile) is not True:
        return True
    candidates = {c.option for c in decision.candidates}
    excluded = decision.excluded_ids()
    referrals = {r.option for r in decision.referrals}
    if inv.kind == "never_candidate":
        return not candidates & set(inv.options)
    if inv.kind == "always_excluded":
        return set(inv.options) <= excluded
    if inv.kind == "always_referral":
        return set(inv.options) <= referrals
    if inv.kind == "at_most":
        rank = {s.id: i for i, s in enumerate(ruleset.strengths)}
        return all(rank[c.strength] >= rank[inv.strength] for c in decision.candidates if c.option in inv.options)
    return bool(candidates or referrals)


def _describe_decision(decision: Decision) -> str:
    cands = ", ".join(f"{c.option} ({c.strength})" for c in decision.candidates) or "none"
    refs = ", ".join(r.option for r in decision.referrals) or "none"
    excl = ", ".join(e.option for e in decision.excluded) or "none"
    fired = ", ".join(decision.fired_rules) or "none"
    return f"candidates: {cands}; referrals: {refs}; excluded: {excl}; fired: {fired}"


def prove(ruleset: Ruleset, engine: Engine, enc: Encoding) -> list[InvariantResult]:
    results = []
    for inv in ruleset.invariants:
        when = enc.truth(inv.when) if inv.when is not None else z3.BoolVal(True)
        found = enc.find(when, z3.Not(enc.holds(inv)))
        if found is None:
            results.append(InvariantResult(inv.id, inv.title, "proven", "SMT (z3): no valid profile violates it"))
        elif found == "unknown":
            results.append(InvariantResult(inv.id, inv.title, "undecided", "SMT (z3) timed out"))
        else:
            assert isinstance(found, dict)
            profile = validate_profile(ruleset, found).profile
            decision = engine.assembler.assemble(engine.fired(profile))
            confirmed = not invariant_holds(ruleset, inv, profile, decision)
            detail = _describe_decision(decision)
            if not confirmed:
                detail = "the solver's counterexample did not reproduce on durable_rules: " + detail
            results.append(
                InvariantResult(
                    inv.id,
                    inv.title,
                    "refuted" if confirmed else "undecided",
                    "SMT (z3) counterexample, replayed on durable_rules",
                    counterexample=found,
                    detail=detail,
                )
            )
    return results


def enumerate_space(ruleset: Ruleset, engine: Engine, report: Report) -> None:
    """Confirm every invariant on one profile of each piece of the space, through durable_rules."""
    by_id = {i.id: i for i in report.invariants}
    for profile in space.enumerate_partitions(ruleset):
        decision = engine.assembler.assemble(engine.fired(profile))
        for inv in ruleset.invariants:
            if not invariant_holds(ruleset, inv, profile, decision):
                res = by_id[inv.id]
                if res.status == "proven":
                    report.errors.append(
                        f"invariant {inv.id}: z3 proved it but enumeration found a violation: {_jsonable(profile)}"
                    )
                    res.status = "refuted"
                    res.counterexample = _jsonable(profile)
                    res.detail = _describe_decision(decision)
    for res in report.invariants:
        if res.status == "proven":
            res.method += (
                f"; confirmed by enumerating all {report.partitions} pieces of the input space on durable_rules"
            )


def run_tests(ruleset: Ruleset, engine: Engine) -> list[TestResult]:
    results = []
    for case in ruleset.tests:
        check = validate_profile(ruleset, case.profile)
        if not check.ok:
            results.append(TestResult(case.name, False, [e.message for e in check.errors]))
            continue
        d = engine.decide(check.profile)
        cands = [c.option for c in d.candidates]
        strengths = {c.option: c.strength for c in d.candidates}
        excluded = d.excluded_ids()
        referrals = [r.option for r in d.referrals]
        fails: list[str] = []
        ex = case.expect
        if ex.candidates is not None and set(ex.candidates) != set(cands):
            missing = sorted(set(ex.candidates) - set(cands))
            extra = sorted(set(cands) - set(ex.candidates))
            fails.append(f"candidates differ: missing {missing or '[]'}, unexpected {extra or '[]'}")
        for o in ex.includes:
            if o not in cands:
                fails.append(f"expected candidate `{o}` is missing")
        for o in ex.not_candidates:
            if o in cands:
                fails.append(f"`{o}` is a candidate but must not be")
        if ex.excluded is not None:
            for o in ex.excluded:
                if o not in excluded:
                    fails.append(f"expected `{o}` to be excluded")
        if ex.referrals is not None and set(ex.referrals) != set(referrals):
            fails.append(f"referrals differ: expected {sorted(ex.referrals)}, got {sorted(referrals)}")
        for o, s in ex.strengths:
            if strengths.get(o) != s:
                fails.append(f"strength of `{o}`: expected {s}, got {strengths.get(o, 'not a candidate')}")
        for rid in ex.fired:
            if rid not in d.fired_rules:
                fails.append(f"rule `{rid}` did not fire")
        for rid in ex.not_fired:
            if rid in d.fired_rules:
                fails.append(f"rule `{rid}` fired but must not")
        results.append(TestResult(case.name, not fails, fails, list(d.fired_rules)))
    return results


def verify(ruleset: Ruleset, engine: Engine | None = None) -> Report:
    """Run every check; `report.ok` decides whether the ruleset may be activated."""
    started = time.perf_counter()
    own_engine = engine is None
    engine = engine or Engine(ruleset)
    report = Report(ruleset.id, ruleset.version, ruleset.sha256)
    try:
        report.crosscheck_profiles, report.disagreements = crosscheck(ruleset, engine)
        enc = Encoding(ruleset)
        report.invariants = prove(ruleset, engine, enc)
        report.partitions = space.partition_size(ruleset)
        if report.partitions <= ENUMERATION_LIMIT:
            report.enumerated = True
            enumerate_space(ruleset, engine, report)
        report.tests = run_tests(ruleset, engine)
        covered = {rid for t in report.tests for rid in t.fired}
        report.covered_rules = [r.id for r in ruleset.rules if r.id in covered]
        report.uncovered_rules = [r.id for r in ruleset.rules if r.id not in covered]
        report.dead_rules = [r.id for r in ruleset.rules if enc.find(enc.fires[r.id]) is None]
        report.unreachable_options = [
            o
            for o, opt in ruleset.options.items()
            if enc.find(enc.referral(o) if opt.kind == "referral" else enc.candidate(o)) is None
        ]
        report.gaps = [_jsonable(p) for p in enc.find_many(z3.Not(enc.some_answer()), 3)]
    finally:
        if own_engine:
            engine.close()
    report.seconds = time.perf_counter() - started
    return report
