"""Per-evaluation cost: the durable_rules path vs the pure-Python (reference) evaluator, same run.

Both paths assemble the full decision, so the ratio is what choosing durable_rules costs per request.
The ruleset is the bundled clinical ruleset when present, plus a generated one of 40 rules; profiles are
random valid profiles with unknown optional inputs. Repetitions are interleaved so machine noise hits
both paths alike. Target (issue 2): durable_rules path median <= 60 µs including decision assembly.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from service.engine import Engine, reference
from service.engine.assemble import assemble
from service.ruleset import Ruleset, load_file, load_text, space

ROOT = Path(__file__).resolve().parent.parent
PROFILES = 2000
REPETITIONS = 5


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


def measure(rs: Ruleset) -> dict[str, Any]:
    engine = Engine(rs)
    rng = random.Random(11)
    profiles = [space.random_profile(rs, rng) for _ in range(PROFILES)]

    def durable_path(p: dict[str, Any]) -> Any:
        return engine.decide(p)

    def python_path(p: dict[str, Any]) -> Any:
        return assemble(rs, reference.fired_rules(rs, p))

    paths = {"durable_rules": durable_path, "pure_python": python_path}
    for p in profiles[:200]:  # warm up
        for fn in paths.values():
            fn(p)
    medians: dict[str, list[float]] = {k: [] for k in paths}
    p99s: dict[str, list[float]] = {k: [] for k in paths}
    for rep in range(REPETITIONS):
        order = list(paths) if rep % 2 == 0 else list(reversed(paths))
        for name in order:
            fn = paths[name]
            samples = []
            for p in profiles:
                t0 = time.perf_counter_ns()
                fn(p)
                samples.append(time.perf_counter_ns() - t0)
            medians[name].append(_percentile(samples, 0.5))
            p99s[name].append(_percentile(samples, 0.99))
    engine.close()
    result = {
        name: {"median_us": statistics.median(medians[name]), "p99_us": statistics.median(p99s[name])} for name in paths
    }
    result["ratio_durable_over_python"] = result["durable_rules"]["median_us"] / result["pure_python"]["median_us"]
    return result


def run() -> None:
    rulesets = [generated_ruleset()]
    default = ROOT / "rulesets" / "androgenetic-alopecia.yaml"
    if default.exists():
        rulesets.insert(0, load_file(default))
    print("engine: per-evaluation time incl. decision assembly (median of 5 interleaved repetitions)")
    for rs in rulesets:
        r = measure(rs)
        d, p = r["durable_rules"], r["pure_python"]
        verdict = "meets" if d["median_us"] <= 60 else "MISSES"
        print(f"  {rs.id} ({len(rs.rules)} rules, {PROFILES} profiles)")
        print(
            f"    durable_rules path: median {d['median_us']:.1f} µs, p99 {d['p99_us']:.1f} µs ({verdict} 60 µs target)"
        )
        print(f"    pure-Python path:   median {p['median_us']:.1f} µs, p99 {p['p99_us']:.1f} µs")
        print(f"    ratio durable_rules / pure-Python (median): {r['ratio_durable_over_python']:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    run()
