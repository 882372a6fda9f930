"""HTTP benchmark: POST /v1/evaluations against GET /healthz (the no-op floor), side by side, under real gunicorn.

Both endpoints go through the same gunicorn (gunicorn.conf.py: sync workers, one per CPU), the same Flask
app and the same loopback client in the same run, alternating in short rounds so that both see the same
machine; the ratio of their throughputs is what the evaluation itself costs. Then each is driven at half
the maximum evaluation rate on a fixed schedule, for the p99 latency a lightly loaded service gives.
Where wrk is installed (bench/wrk.py), the same two endpoints are also driven by wrk (C, keep-alive, 8
connections), alternating in the same way, and both clients' figures and their ratios are printed: the
asyncio client shares the 2 cores with the server and so flatters the ratio.
Last, POST /v1/evaluations:batch with BATCH_SIZE profiles (the ruleset's test profiles, cycled) is timed
a few times one after another, each batch recorded like single answers (channel "batch").
Targets (issue 4): ratio >= 0.7; p99 <= 10 ms at half the maximum rate; with wrk (issue 15) ratio >= 0.5;
a batch of 1,000 under 0.5 s (issue 15).
Everything stays on 127.0.0.1
and the measurement is bounded (about 25 s with the defaults) after gunicorn is ready; start-up time
depends on how long the rulesets take to verify.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from service.config import ROOT
from service.ruleset import RulesetError, load_file, ruleset_files

from . import wrk
from .loadgen import Result, Target, closed_loop, open_loop
from .server import gunicorn

STARTUP_TIMEOUT = 600.0
RATIO_TARGET = 0.7
WRK_RATIO_TARGET = 0.5
WRK_CONNECTIONS = 8
P99_TARGET_MS = 10.0
EXAMPLE = ROOT / "rulesets" / "examples" / "minimal.yaml"
BATCH_SIZE = 1000
BATCH_RUNS = 5
BATCH_TARGET_S = 0.5


def _test_profiles(folder: Path, ruleset_id: str) -> list[dict[str, Any]]:
    for path in ruleset_files(folder):
        try:
            rs = load_file(path)
        except RulesetError:
            continue
        if rs.id == ruleset_id:
            return [json.loads(json.dumps(t.profile, default=list)) for t in rs.tests]
    return []


def _measure_batch(url: str, ruleset_id: str, profiles: list[dict[str, Any]]) -> tuple[list[float], int]:
    """Wall time of each of BATCH_RUNS batches of BATCH_SIZE profiles (sent one after another), and the
    size of one answer in bytes."""
    import urllib.request

    body = json.dumps(
        {"ruleset": ruleset_id, "profiles": [profiles[i % len(profiles)] for i in range(BATCH_SIZE)]}
    ).encode()
    times, size = [], 0
    for _ in range(BATCH_RUNS + 1):  # the first warms up
        req = urllib.request.Request(
            url + "/v1/evaluations:batch", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as resp:
            data = resp.read()
        times.append(time.perf_counter() - t0)
        answers = json.loads(data)["decisions"]
        if len(answers) != BATCH_SIZE or any("error" in a for a in answers):
            raise RuntimeError("the batch benchmark's profiles were not all decided")
        size = len(data)
    return times[1:], size


def _bundled_default(folder: Path) -> tuple[str, dict[str, Any]] | None:
    """The ruleset the service would use by default (the only production one) and a profile from its tests."""
    production = []
    for path in ruleset_files(folder) if folder.is_dir() else []:
        try:
            rs = load_file(path)
        except RulesetError:
            continue
        if rs.status == "production" and rs.tests:
            production.append(rs)
    if len(production) != 1:
        return None
    rs = production[0]
    return rs.id, json.loads(json.dumps(rs.tests[0].profile, default=list))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def _row(label: str, r: Result) -> str:
    errors = sum(r.errors.values()) + sum(n for s, n in r.statuses.items() if not 200 <= s < 300)
    return f"  {label:<24}{r.ok:>9}{r.throughput:>10.0f}{_ms(r.percentile(50))}{_ms(r.percentile(99))}{errors:>8}"


HEADER = f"  {'endpoint':<24}{'requests':>9}{'req/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}"


async def _measure(
    host: str, port: int, floor: Target, evaluation: Target, concurrency: int, rounds: int, seconds: float
) -> tuple[Result, Result]:
    for target in (floor, evaluation):  # warm up: first requests build schemas, caches, connections
        await closed_loop(host, port, target, concurrency, min(1.0, seconds))
    totals = {floor.name: Result(floor), evaluation.name: Result(evaluation)}
    for i in range(rounds):
        order = (floor, evaluation) if i % 2 == 0 else (evaluation, floor)
        for target in order:
            totals[target.name].merge(await closed_loop(host, port, target, concurrency, seconds))
    return totals[floor.name], totals[evaluation.name]


def _wrk_row(r: wrk.WrkResult) -> str:
    return f"  {r.name:<24}{r.requests:>9}{r.throughput:>10.0f}{_ms(r.p50)}{_ms(r.p99)}{r.errors:>8}"


def _measure_wrk(url: str, floor: Target, evaluation: Target, rounds: int, seconds: float) -> dict[str, wrk.WrkResult]:
    """wrk rounds alternating between the two targets, like the asyncio rounds."""
    for target in (floor, evaluation):  # warm up
        wrk.drive(url, target, 1, connections=WRK_CONNECTIONS)
    runs: dict[str, list[wrk.WrkResult]] = {floor.name: [], evaluation.name: []}
    for i in range(rounds):
        order = (floor, evaluation) if i % 2 == 0 else (evaluation, floor)
        for target in order:
            runs[target.name].append(wrk.drive(url, target, seconds, connections=WRK_CONNECTIONS))
    return {name: wrk.merge(results) for name, results in runs.items()}


def run(
    *,
    rounds: int = 3,
    seconds: float = 2.0,
    half_rate_seconds: float = 4.0,
    workers: int | None = None,
    worker_class: str | None = None,
    threads: int | None = None,
    rulesets_dir: Path | None = None,
    use_wrk: bool = True,
) -> dict[str, float]:
    """Measure, print the report, return the headline numbers (RULESETS_DIR or rulesets/ by default).

    `worker_class`/`threads` default to gunicorn.conf.py's (GUNICORN_WORKER_CLASS, GUNICORN_THREADS).
    """
    folder = rulesets_dir or Path(os.environ.get("RULESETS_DIR", ROOT / "rulesets"))
    chosen = _bundled_default(folder)
    with tempfile.TemporaryDirectory(prefix="hairloss-bench-") as tmp:
        note = ""
        if chosen is None:
            # No single production ruleset to measure yet: the format example stands in, as production.
            folder = Path(tmp)
            text = re.sub(r"(?m)^status: draft$", "status: production", EXAMPLE.read_text(encoding="utf-8"))
            (folder / "example.yaml").write_text(text, encoding="utf-8")
            chosen = _bundled_default(folder)
            note = f" (stand-in: {EXAMPLE.relative_to(ROOT)}; rulesets/ has no single production ruleset)"
        assert chosen is not None
        ruleset_id, profile = chosen
        floor = Target("GET /healthz (floor)", "GET", "/healthz")
        evaluation = Target.json("POST /v1/evaluations", "/v1/evaluations", {"ruleset": ruleset_id, "profile": profile})
        n_workers = workers or os.cpu_count() or 1  # gunicorn.conf.py's default: one per CPU
        started = time.perf_counter()
        # Start-up verifies every ruleset (proofs, tests) in the master; a large one takes a while.
        numbers: dict[str, float] = {}
        with gunicorn(
            folder,
            workers=n_workers,
            worker_class=worker_class,
            threads=threads,
            startup_timeout=STARTUP_TIMEOUT,
        ) as server:
            concurrency = 4 * n_workers
            ready = time.perf_counter() - started
            print(f"gunicorn {n_workers} {server.worker_class} worker(s) on {server.url}, ready in {ready:.1f} s")
            print(f"ruleset {ruleset_id}{note}")
            print(f"profile: {json.dumps(profile)}")
            host, port = server.host, server.port
            f, e = asyncio.run(_measure(host, port, floor, evaluation, concurrency, rounds, seconds))
            print(f"\nmaximum rate: closed loop, {concurrency} connections, {rounds} alternating rounds of {seconds} s")
            print(HEADER)
            print(_row(f.target.name, f))
            print(_row(e.target.name, e))
            ratio = e.throughput / f.throughput if f.throughput else 0.0
            verdict = "met" if ratio >= RATIO_TARGET else "NOT met"
            print(f"  ratio evaluations/floor: {ratio:.2f} (target >= {RATIO_TARGET}: {verdict})")

            why_not = wrk.missing() if use_wrk else "wrk not requested; wrk figures skipped"
            if why_not:
                print(f"\nwrk: {why_not}")
            else:
                w = _measure_wrk(server.url, floor, evaluation, rounds, seconds)
                wf, we = w[floor.name], w[evaluation.name]
                print(
                    f"\nmaximum rate, wrk: keep-alive, {WRK_CONNECTIONS} connections, {rounds} alternating rounds"
                    f" of {max(1, round(seconds))} s (p50/p99: median of the rounds)"
                )
                print(HEADER)
                print(_wrk_row(wf))
                print(_wrk_row(we))
                wrk_ratio = we.throughput / wf.throughput if wf.throughput else 0.0
                verdict = "met" if wrk_ratio >= WRK_RATIO_TARGET else "NOT met"
                print(f"  ratio evaluations/floor (wrk): {wrk_ratio:.2f} (target >= {WRK_RATIO_TARGET}: {verdict})")
                print(
                    "  wrk / asyncio client throughput:"
                    f" floor {wf.throughput / f.throughput if f.throughput else 0:.2f},"
                    f" evaluations {we.throughput / e.throughput if e.throughput else 0:.2f}"
                )
                numbers.update(
                    wrk_floor_rps=wf.throughput,
                    wrk_evaluations_rps=we.throughput,
                    wrk_ratio=wrk_ratio,
                    wrk_errors=float(wf.errors + we.errors),
                )

            rate = max(1.0, e.throughput / 2)
            half_e = asyncio.run(open_loop(host, port, evaluation, rate, half_rate_seconds))
            half_f = asyncio.run(open_loop(host, port, floor, rate, half_rate_seconds))
            print(f"\nhalf the maximum evaluation rate: open loop, {rate:.0f} req/s for {half_rate_seconds} s each")
            print(HEADER)
            print(_row(half_f.target.name, half_f))
            print(_row(half_e.target.name, half_e))
            p99 = half_e.percentile(99) * 1000
            verdict = "met" if p99 <= P99_TARGET_MS else "NOT met"
            print(
                f"  p99 of evaluations at half the maximum rate: {p99:.2f} ms (target <= {P99_TARGET_MS} ms: {verdict})"
            )
            profiles = _test_profiles(folder, ruleset_id) or [profile]
            batch_times, batch_bytes = _measure_batch(server.url, ruleset_id, profiles)
            batch_s = sorted(batch_times)[len(batch_times) // 2]
            verdict = "met" if batch_s <= BATCH_TARGET_S else "NOT met"
            print(
                f"\nbatch: POST /v1/evaluations:batch with {BATCH_SIZE} profiles ({len(profiles)} test profiles"
                f" cycled), {BATCH_RUNS} in a row: median {batch_s:.3f} s, best {min(batch_times):.3f} s,"
                f" {batch_bytes / 1024:.0f} KiB answer (target < {BATCH_TARGET_S} s: {verdict})"
            )
            numbers.update(batch_s=batch_s, batch_best_s=min(batch_times))
    return {
        **numbers,
        "floor_rps": f.throughput,
        "evaluations_rps": e.throughput,
        "ratio": ratio,
        "half_rate_rps": rate,
        "half_rate_p99_ms": p99,
        "errors": float(sum(r.ok != len(r.latencies) or bool(r.errors) for r in (f, e, half_e, half_f))),
    }
