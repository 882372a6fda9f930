"""Per-evaluation cost: the durable_rules path against its peers, all measured in the same run.

Paths, each given the same validated profiles:
- durable_rules path: `Engine.decide` (durable_rules decides, then the decision is assembled);
- pure-Python path: the reference evaluator's fired rules, assembled the same way;
- durable_rules fired: `Engine.fired` alone (fact, assert_fact, action drain, delete_state);
- ZEN fired: the ruleset as a GoRules ZEN decision table, collect hit policy (bench/peers.py);
- generated-Python floor: Python source for the conditions, compiled once (bench/peers.py);
- reference fired: the pure-Python evaluator alone.
The three "fired" peers answer the same question as `Engine.fired` (which rules fire), so those ratios
are like for like; the decide ratios also count the decision assembly.

Before anything is timed, every evaluator must give the same fired rules on every profile (random
profiles with unknown optional inputs plus the boundary sample of service.ruleset.space); a disagreement
stops the benchmark with the profiles that differ. Repetitions are interleaved (the order alternates) so
machine noise hits every path alike, and the median of the repetitions' medians and p99s is printed.
A seventh, instrumented pass of `Engine.fired` times the C calls (assert_fact, the action drain,
delete_state) to give the raw assert_fact share.

Targets: engine path (bundled ruleset) median <= 40 µs (issue 15); durable_rules >= 2x ZEN's speed and
within 25x the generated-Python floor (issue 15, item 4).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.engine import Engine, reference
from service.engine.assemble import assemble
from service.ruleset import Ruleset, load_file, load_text, space

from .peers import FloorEvaluator, Untranslatable, ZenEvaluator, describe_table

ROOT = Path(__file__).resolve().parent.parent
PROFILES = 2000
REPETITIONS = 5
ENGINE_TARGET_US = 40.0
ZEN_SPEED_TARGET = 2.0  # durable_rules at least twice ZEN's speed
FLOOR_RATIO_TARGET = 25.0  # durable_rules within 25x the generated-Python floor

Profile = dict[str, Any]
Fired = Callable[[Profile], list[str]]


def generated_ruleset(n_rules: int = 40, seed: int = 7) -> Ruleset:
    """A 40-rule ruleset over one field of every type (deterministic)."""
    rng = random.Random(seed)
    head = (ROOT / "tests" / "engine" / "vocab.py").read_text(encoding="utf-8")
    yaml_head = head.split('HEAD = """', 1)[1].split('"""', 1)[0]
    leaves = [
        {"field": "age", "at_least": 18},
        {"field": "age", "below": 40},
        {"field": "sex", "equals": "female"},
        {"field": "sex", "equals": "male"},
        {"field": "pregnant", "equals": True},
        {"unknown": "pregnant"},
        {"field": "stage", "at_least": "moderate"},
        {"field": "stage", "in": ["mild", "severe"]},
        {"field": "months", "below": 6},
        {"field": "conditions", "contains": "a"},
        {"field": "conditions", "contains_any": ["b", "c"]},
        {"not": {"field": "pregnant", "equals": False}},
    ]
    rules = []
    for i in range(n_rules):
        when = {"all": rng.sample(leaves, rng.randint(1, 4))}
        if i % 3 == 0:
            then = [{"exclude": rng.choice(["x", "y", "z"]), "reason": f"reason {i}"}]
        else:
            then = [
                {
                    "recommend": rng.choice(["x", "y", "z"]),
                    "strength": rng.choice(["strong", "weak"]),
                    "rationale": f"rationale {i}",
                }
            ]
        rules.append({"id": f"r{i}", "title": f"rule {i}", "when": when, "then": then})
    text = yaml_head + "rules: " + json.dumps(rules) + "\n"
    text += "invariants: [{id: i, title: t, never_candidate: [refer]}]\n"
    text += "tests: [{name: t, profile: {sex: male, age: 30}, expect: {}}]\n"
    return load_text(text, "generated-40.yaml")


def _percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


class Disagreement(AssertionError):
    """Two evaluators fired different rules for one profile: no timing means anything then."""


def check_agreement(evaluators: dict[str, Fired], profiles: list[Profile]) -> int:
    """Every evaluator fires the same rules on every profile; raises Disagreement with examples if not."""
    names = list(evaluators)
    bad: list[str] = []
    count = 0
    for p in profiles:
        answers = {name: evaluators[name](p) for name in names}
        first = answers[names[0]]
        if any(a != first for a in answers.values()):
            count += 1
            if len(bad) < 3:
                lines = [f"    {name}: {answers[name]}" for name in names]
                bad.append(f"  profile {p}\n" + "\n".join(lines))
    if count:
        raise Disagreement(f"{count} of {len(profiles)} profiles: evaluators disagree\n" + "\n".join(bad))
    return len(profiles)


class _TimedDre:
    """Stands in for the durable_rules_engine module inside service.engine.durable and times its C calls."""

    TIMED = ("assert_fact", "start_action_for_state", "complete_and_start_action", "delete_state")

    def __init__(self, real: Any) -> None:
        self._real = real
        self.ns = dict.fromkeys(self.TIMED, 0)
        for name in self.TIMED:
            setattr(self, name, self._wrap(name, getattr(real, name)))

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        ns = self.ns
        clock = time.perf_counter_ns

        def timed(*args: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args)
            finally:
                ns[name] += clock() - t0

        return timed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _instrumented(engine: Engine) -> tuple[Fired, dict[str, list[int]]] | None:
    """`Engine.fired` with its durable_rules C calls timed per evaluation, or None if it cannot be."""
    from service.engine import durable

    real = getattr(durable, "dre", None)
    if real is None or not all(hasattr(real, n) for n in _TimedDre.TIMED):
        return None
    timed = _TimedDre(real)
    calls: dict[str, list[int]] = {"total": [], "assert_fact": [], "drain": [], "delete_state": []}
    clock = time.perf_counter_ns

    def fired(p: Profile) -> list[str]:
        for k in timed.ns:
            timed.ns[k] = 0
        durable.dre = timed
        t0 = clock()
        try:
            return engine.fired(p)
        finally:
            calls["total"].append(clock() - t0)
            durable.dre = real
            ns = timed.ns
            calls["assert_fact"].append(ns["assert_fact"])
            calls["drain"].append(ns["start_action_for_state"] + ns["complete_and_start_action"])
            calls["delete_state"].append(ns["delete_state"])

    return fired, calls


def measure(rs: Ruleset, profiles: int = PROFILES, repetitions: int = REPETITIONS) -> dict[str, Any]:
    """Agreement first, then interleaved timings of every path; returns medians, p99s, ratios, skips."""
    engine = Engine(rs)
    rng = random.Random(11)
    sample = [space.random_profile(rs, rng) for _ in range(profiles)]
    skipped: dict[str, str] = {}
    fired: dict[str, Fired] = {
        "durable_rules fired": engine.fired,
        "reference fired": lambda p: reference.fired_rules(rs, p),
    }
    zen_table = ""
    try:
        zen = ZenEvaluator(rs)
        fired["ZEN fired"] = zen.fired
        zen_table = describe_table(zen.content)
    except Untranslatable as exc:
        skipped["ZEN fired"] = str(exc)
    try:
        fired["generated-Python floor"] = FloorEvaluator(rs).fired
    except Untranslatable as exc:
        skipped["generated-Python floor"] = str(exc)
    checked = check_agreement(fired, sample + list(space.boundary_profiles(rs, random.Random(5))))

    paths: dict[str, Fired | Callable[[Profile], Any]] = {
        "durable_rules path": engine.decide,
        "pure-Python path": lambda p: assemble(rs, reference.fired_rules(rs, p)),
        **fired,
    }
    instrumented = _instrumented(engine)
    if instrumented is not None:
        paths["durable_rules fired, C calls timed"] = instrumented[0]
    for p in sample[:200]:  # warm up
        for fn in paths.values():
            fn(p)
    if instrumented is not None:
        for samples in instrumented[1].values():
            samples.clear()
    medians: dict[str, list[float]] = {k: [] for k in paths}
    p99s: dict[str, list[float]] = {k: [] for k in paths}
    for rep in range(repetitions):
        order = list(paths) if rep % 2 == 0 else list(reversed(paths))
        for name in order:
            fn = paths[name]
            samples = []
            for p in sample:
                t0 = time.perf_counter_ns()
                fn(p)
                samples.append(time.perf_counter_ns() - t0)
            medians[name].append(_percentile(samples, 0.5))
            p99s[name].append(_percentile(samples, 0.99))
    engine.close()
    result: dict[str, Any] = {
        "paths": {
            name: {"median_us": statistics.median(medians[name]), "p99_us": statistics.median(p99s[name])}
            for name in paths
        },
        "profiles_checked": checked,
        "skipped": skipped,
        "zen_table": zen_table,
    }
    med = {name: v["median_us"] for name, v in result["paths"].items()}
    result["ratio_durable_over_python"] = med["durable_rules path"] / med["pure-Python path"]
    if "ZEN fired" in med:
        result["zen_speed_ratio"] = med["ZEN fired"] / med["durable_rules fired"]
        result["zen_speed_ratio_decide"] = med["ZEN fired"] / med["durable_rules path"]
    if "generated-Python floor" in med:
        result["floor_ratio"] = med["durable_rules fired"] / med["generated-Python floor"]
        result["floor_ratio_decide"] = med["durable_rules path"] / med["generated-Python floor"]
    if instrumented is not None:
        calls = instrumented[1]
        total = sum(calls["total"]) or 1
        result["c_calls"] = {
            part: {"median_us": _percentile(calls[part], 0.5), "share": sum(calls[part]) / total}
            for part in ("assert_fact", "drain", "delete_state")
        }
        result["python_share"] = 1 - sum(v["share"] for v in result["c_calls"].values())
        assert_us = result["c_calls"]["assert_fact"]["median_us"]
        result["assert_fact_share_of_decide"] = assert_us / med["durable_rules path"]
    return result


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(rs: Ruleset, r: dict[str, Any], bundled: bool) -> None:
    paths = r["paths"]
    print(f"  {rs.id} ({len(rs.rules)} rules; {r['profiles_checked']} profiles agree on every evaluator)")
    if r["zen_table"]:
        print(f"    ZEN decision table: {r['zen_table']}")
    for name, skip in r["skipped"].items():
        print(f"    {name}: skipped, the conditions do not translate ({skip})")
    width = max(len(n) for n in paths) + 2
    for name, v in paths.items():
        line = f"    {name + ':':<{width}} median {v['median_us']:8.1f} µs   p99 {v['p99_us']:8.1f} µs"
        if name == "durable_rules path" and bundled:
            ok = v["median_us"] <= ENGINE_TARGET_US
            line += f"   (target <= {ENGINE_TARGET_US:.0f} µs: {_verdict(ok)})"
        print(line)
    print(f"    ratio durable_rules path / pure-Python path (median): {r['ratio_durable_over_python']:.2f}")
    if "zen_speed_ratio" in r:
        ok = r["zen_speed_ratio"] >= ZEN_SPEED_TARGET
        print(
            f"    speed durable_rules fired vs ZEN fired (ZEN time / durable time): {r['zen_speed_ratio']:.2f}x"
            f" (target >= {ZEN_SPEED_TARGET:.0f}x: {_verdict(ok)}); durable_rules path incl. assembly:"
            f" {r['zen_speed_ratio_decide']:.2f}x"
        )
    if "floor_ratio" in r:
        ok = r["floor_ratio"] <= FLOOR_RATIO_TARGET
        print(
            f"    durable_rules fired / generated-Python floor: {r['floor_ratio']:.1f}x"
            f" (target <= {FLOOR_RATIO_TARGET:.0f}x: {_verdict(ok)}); durable_rules path incl. assembly:"
            f" {r['floor_ratio_decide']:.1f}x"
        )
    if "c_calls" in r:
        c = r["c_calls"]
        print(
            f"    raw assert_fact: median {c['assert_fact']['median_us']:.1f} µs ="
            f" {c['assert_fact']['share']:.0%} of durable_rules fired,"
            f" {r['assert_fact_share_of_decide']:.0%} of the durable_rules path;"
            f" action drain {c['drain']['share']:.0%}, delete_state {c['delete_state']['share']:.0%},"
            f" Python around them (fact, JSON, action names) {r['python_share']:.0%}"
        )
    else:
        print("    raw assert_fact share: not measured (service.engine.durable no longer calls its C module `dre`)")


def run() -> None:
    rulesets = [(generated_ruleset(), False)]
    default = ROOT / "rulesets" / "androgenetic-alopecia.yaml"
    if default.exists():
        rulesets.insert(0, (load_file(default), True))
    print(f"engine: per-evaluation time, median of {REPETITIONS} interleaved repetitions over {PROFILES} profiles")
    for rs, bundled in rulesets:
        report(rs, measure(rs), bundled)
    sys.stdout.flush()


if __name__ == "__main__":
    run()
