"""Impact analysis over a large decision log: `rulesets impact` on 100,000 logged decisions, against its floor.

The log is filled with real decisions: the bundled ruleset decides random valid profiles (service.ruleset.
space) and DecisionLog.record appends each one, as the service does. By default every decision has a
profile of its own, the worst case (the analysis evaluates each distinct profile once); real traffic
repeats profiles, which BENCH_IMPACT_PROFILES (a smaller pool of distinct profiles) imitates. The
candidate is the bundled ruleset with its adult age threshold moved from 18 to 21, so some decisions change.

Measured in the same run, on the same log:
- floor: reading the decisions in the impact analysis's pages (same query, same columns), nothing else;
- impact: service.lifecycle.impact.impact, what `rulesets impact NEW` runs.
Printed: both times, the impact/floor ratio, and the impact time against the issue's target (100,000
decisions in under 60 s, issue 14).

    .venv/bin/python -m bench.impact                          # SQLite in a temporary folder
    BENCH_IMPACT_DATABASE_URL=postgresql://... .venv/bin/python -m bench.impact   # an empty database
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import func, select

from service.decisions import DecisionLog
from service.decisions.identifiers import IdentifierKey
from service.decisions.models import Decision
from service.engine import Engine
from service.lifecycle.impact import impact, pages
from service.ruleset import Ruleset, load_file, load_text, space

ROOT = Path(__file__).resolve().parent.parent
DECISIONS = int(os.environ.get("BENCH_IMPACT_DECISIONS", "100000"))
PROFILES = int(os.environ.get("BENCH_IMPACT_PROFILES", str(DECISIONS)))
TARGET_SECONDS = 60.0 * DECISIONS / 100_000  # issue 14: 100,000 decisions under a minute
KEY = IdentifierKey(b"bench-" + b"k" * 40)


def _bundled() -> Path:
    path = ROOT / "rulesets" / "androgenetic-alopecia.yaml"
    return path if path.exists() else ROOT / "rulesets" / "examples" / "minimal.yaml"


def candidate(rs: Ruleset) -> Ruleset:
    """The same ruleset with its adult age threshold moved from 18 to 21 (an edit that changes decisions).

    Only the benchmark evaluates it; it is never published or served."""
    text = rs.source_text
    for op in ("at_least", "below"):
        text = text.replace(f"{{field: age, {op}: 18}}", f"{{field: age, {op}: 21}}")
    text = text.replace(f'version: "{rs.version}"', 'version: "99.0.0-bench"', 1)
    tests = Path(rs.tests_path).read_text(encoding="utf-8") if rs.tests_path else None
    return load_text(text, "candidate.yaml", tests_text=tests, tests_file=rs.tests_path)


def fill(log: DecisionLog, rs: Ruleset, decisions: int, profiles: int, seed: int = 14) -> float:
    """Append `decisions` real decisions over `profiles` distinct profiles; returns the seconds it took."""
    rng = random.Random(seed)
    engine = Engine(rs)
    started = time.perf_counter()
    try:
        pool = [engine.check(space.random_profile(rs, rng)) for _ in range(profiles)]
        bodies = [engine.decide(p) for p in pool]
        log.store_revisions([rs])
        stamp = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        for n in range(decisions):
            i = n if n < profiles else rng.randrange(profiles)
            at = (stamp + dt.timedelta(seconds=n)).isoformat()
            decision = dataclasses.replace(bodies[i], decision_id=str(uuid.uuid4()), evaluated_at=at)
            log.record(decision, channel="api", profile=pool[i], latency_ms=0.05)
            if n % 10_000 == 0 and n:
                print(f"  filled {n:,} decisions", flush=True)
    finally:
        engine.close()
    return time.perf_counter() - started


def floor(db: DbEngine, ruleset_id: str) -> tuple[int, float]:
    """Read every decision of the ruleset in the impact analysis's own pages: the I/O it cannot avoid."""
    started = time.perf_counter()
    read = sum(len(rows) for rows in pages(db, ruleset_id))
    return read, time.perf_counter() - started


def measure() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-impact-"))
    url = os.environ.get("BENCH_IMPACT_DATABASE_URL") or f"sqlite:///{folder / 'decisions.sqlite3'}"
    rs = load_file(_bundled())
    log = DecisionLog.open(url, KEY)
    try:
        with log.engine.connect() as conn:
            existing = conn.execute(select(func.count()).select_from(Decision)).scalar_one()
        if existing:
            raise RuntimeError(f"the benchmark needs an empty decision log; {url} holds {existing:,} decisions")
        print(f"  filling the log: {DECISIONS:,} decisions over {min(PROFILES, DECISIONS):,} profiles", flush=True)
        filled = fill(log, rs, DECISIONS, min(PROFILES, DECISIONS))
        new = candidate(rs)
        read, floor_s = floor(log.engine, rs.id)
        started = time.perf_counter()
        result = impact(log.engine, new)
        impact_s = time.perf_counter() - started
        if result.decisions != read or read != DECISIONS:
            raise RuntimeError(f"read {read:,}, impact counted {result.decisions:,}, filled {DECISIONS:,}")
        return {
            "name": "impact",
            "backend": log.backend,
            "ruleset": f"{rs.id} {rs.version} -> {new.version}",
            "decisions": DECISIONS,
            "distinct_profiles": result.profiles,
            "changed_decisions": result.changed,
            "fill_s": round(filled, 1),
            "floor_s": round(floor_s, 2),
            "impact_s": round(impact_s, 2),
            "ratio": round(impact_s / floor_s, 2) if floor_s else None,
            "target_s": TARGET_SECONDS,
            "ok": impact_s < TARGET_SECONDS,
        }
    finally:
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def run() -> dict[str, Any]:
    """Print the report (python -m bench calls this) and return the figures."""
    r = measure()
    print(
        f"impact ({r['backend']}, {r['ruleset']}): {r['decisions']:,} decisions, {r['distinct_profiles']:,} distinct "
        f"profiles, {r['changed_decisions']:,} would change; log filled in {r['fill_s']} s\n"
        f"  reading the log alone (floor) {r['floor_s']} s, impact analysis {r['impact_s']} s, "
        f"ratio impact/floor {r['ratio']}; target under {r['target_s']:.0f} s "
        f"{'OK' if r['ok'] else 'ABOVE TARGET'}",
        flush=True,
    )
    return r


def main() -> int:
    return 0 if run()["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
