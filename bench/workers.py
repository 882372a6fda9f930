"""gunicorn sync workers against threaded (gthread) workers, for the service's mix, in the same run.

Two real gunicorn servers on the bundled rulesets, same number of worker processes (one per CPU), each
with its own SQLite decision log: one with sync workers, one with gthread workers (GUNICORN_THREADS
threads each). Both run all the time; the measured rounds alternate between them (sync, gthread,
gthread, sync, ...) so the machine's noise hits both alike. Two loads:

- evaluations only: POST /v1/evaluations in a closed loop - CPU, plus the decision log's write wait;
- the mix: the same evaluations, plus CDS Hooks patient-view calls on a fixed schedule (open loop) whose
  FHIR data is not prefetched, so the service reads it from the EHR's FHIR server - here a loopback
  FHIR stand-in (tests/cds/helpers.py) that answers each read after BENCH_FHIR_DELAY_MS (default 500 ms,
  under the service's 2 s CDS_HOOKS_FHIR_TIMEOUT); BENCH_CDS_RATE calls per second (default 1). The
  bundled mapping reads 7 keys, 4 at a time, so a call waits about twice the delay; a sync worker waits
  it out doing nothing else. The call is also CPU work: FHIR gives no pattern or treatment history, so
  the service decides over every completion of the missing facts (a partial decision);
- CDS Hooks calls only, at the same rate: what one call costs, wait and CPU, without competition.

CDS_HOOKS_AUTH=disabled on both servers: the JWT check is CPU work identical for both worker kinds, and a
fixed request body cannot carry a fresh token per call; the FHIR wait is what tells the two apart.
Printed: throughput and p50/p99 per request kind, errors, and gthread/sync ratios. The choice of default
in gunicorn.conf.py is written from these figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.config import ROOT
from tests.cds.helpers import FhirStandIn, condition, patient

from . import wrk
from .http_api import _bundled_default
from .loadgen import Result, Target, closed_loop, open_loop
from .server import Server, gunicorn

FHIR_DELAY = int(os.environ.get("BENCH_FHIR_DELAY_MS", "500")) / 1000.0
THREADS = int(os.environ.get("BENCH_GTHREAD_THREADS", "4"))
CDS_RATE = float(os.environ.get("BENCH_CDS_RATE", "1"))  # CDS Hooks calls per second in the mix
TOKEN = "bench-fhir-access-token"


class SlowFhir(FhirStandIn):
    """The FHIR stand-in, answering every read after a fixed delay (a busy EHR)."""

    def __init__(self, delay: float, resources: list[dict[str, Any]]) -> None:
        self.delay = delay
        super().__init__(TOKEN, resources)

    def _handle(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        time.sleep(self.delay)
        return super()._handle(path, headers)


def cds_target(ruleset_id: str, fhir: SlowFhir) -> Target:
    """A patient-view call without prefetch: every key is read from the FHIR server."""
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/dr-1", "patientId": "p1"},
        "fhirServer": fhir.base,
        "fhirAuthorization": {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        },
    }
    return Target.json("CDS Hooks patient-view", f"/cds-services/{ruleset_id}-patient-view", body)


@contextlib.contextmanager
def _servers(folder: Path, workers: int, tmp: Path) -> Iterator[dict[str, Server]]:
    with contextlib.ExitStack() as stack:
        servers = {}
        for kind, threads in (("sync", None), ("gthread", THREADS)):
            env = {"INSTANCE_PATH": str(tmp / kind), "CDS_HOOKS_AUTH": "disabled"}
            servers[kind] = stack.enter_context(
                gunicorn(folder, workers=workers, worker_class=kind, threads=threads, env=env, startup_timeout=600)
            )
        yield servers


def _errors(r: Result) -> int:
    return sum(r.errors.values()) + sum(n for s, n in r.statuses.items() if not 200 <= s < 300)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


HEADER = f"    {'':<26}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"


def _row(label: str, r: Result) -> str:
    return f"    {label:<26}{r.ok:>9}{r.throughput:>9.1f}{_ms(r.percentile(50))}{_ms(r.percentile(99))}{_errors(r):>8}"


async def _mix(
    server: Server, evaluation: Target, cds: Target, connections: int, seconds: float, rate: float
) -> list[Result]:
    return list(
        await asyncio.gather(
            closed_loop(server.host, server.port, evaluation, connections, seconds),
            open_loop(server.host, server.port, cds, rate, seconds),
        )
    )


def run(
    *,
    rounds: int = 2,
    seconds: float = 6.0,
    workers: int | None = None,
    rulesets_dir: Path | None = None,
    use_wrk: bool = True,
    cds_rate: float = CDS_RATE,
) -> dict[str, Any]:
    """Measure both worker kinds on both loads; print the report; return the merged results by kind."""
    folder = rulesets_dir or Path(os.environ.get("RULESETS_DIR", ROOT / "rulesets"))
    chosen = _bundled_default(folder)
    if chosen is None or not (folder / f"{chosen[0]}.fhir.yaml").exists():
        print("workers: skipped, needs one production ruleset with its FHIR mapping in", folder)
        return {}
    ruleset_id, profile = chosen
    n_workers = workers or os.cpu_count() or 1
    connections = 4 * n_workers
    evaluation = Target.json("POST /v1/evaluations", "/v1/evaluations", {"ruleset": ruleset_id, "profile": profile})
    fhir = SlowFhir(FHIR_DELAY, [patient("p1", "male", "1990-03-01"), condition("L64.9")])
    cds = cds_target(ruleset_id, fhir)
    kinds = ("sync", "gthread")
    wrk_runs: dict[str, list[wrk.WrkResult]] = {k: [] for k in kinds}
    totals = {(k, load): [Result(evaluation), Result(cds)] for k in kinds for load in ("alone", "cds", "mix")}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="hairloss-workers-") as tmp,
            _servers(folder, n_workers, Path(tmp)) as s,
        ):
            # The CDS call must really decide (and record) through the FHIR server, or the mix measures nothing.
            for kind in kinds:
                status, body = _post(s[kind], cds)
                if status != 200 or not body.get("cards"):
                    raise RuntimeError(f"CDS Hooks call on {kind} answered {status}: {json.dumps(body)[:400]}")
                for target in (evaluation, cds):  # warm up
                    asyncio.run(closed_loop(s[kind].host, s[kind].port, target, 2, 0.5))
            reads = len(fhir.requests)
            for i in range(rounds):
                order = kinds if i % 2 == 0 else tuple(reversed(kinds))
                for kind in order:
                    server = s[kind]
                    alone = asyncio.run(closed_loop(server.host, server.port, evaluation, connections, seconds))
                    totals[(kind, "alone")][0].merge(alone)
                    totals[(kind, "cds")][1].merge(
                        asyncio.run(open_loop(server.host, server.port, cds, cds_rate, seconds))
                    )
                    for total, part in zip(
                        totals[(kind, "mix")],
                        asyncio.run(_mix(server, evaluation, cds, connections, seconds, cds_rate)),
                        strict=True,
                    ):
                        total.merge(part)
            calls = sum(
                totals[(k, load)][1].ok + len(totals[(k, load)][1].errors) for k in kinds for load in ("cds", "mix")
            )
            reads = (len(fhir.requests) - reads) / max(1, calls)
            if use_wrk and not wrk.missing():
                for i in range(rounds):
                    for kind in kinds if i % 2 == 0 else tuple(reversed(kinds)):
                        wrk_runs[kind].append(wrk.drive(s[kind].url, evaluation, seconds, connections=connections))
    finally:
        fhir.close()
    _report(totals, n_workers, connections, rounds, seconds, reads, cds_rate)
    if not use_wrk:
        print("  wrk: not requested")
    elif wrk.missing():
        print(f"  wrk: {wrk.missing()}")
    else:
        w = {k: wrk.merge(v) for k, v in wrk_runs.items()}
        print(f"  evaluations only, driven by wrk ({connections} connections, keep-alive; C client, less client CPU):")
        for kind in kinds:
            r = w[kind]
            print(
                f"    {kind:<8} {r.requests:>7} requests {r.throughput:8.1f} req/s  p50 {r.p50 * 1000:7.1f} ms"
                f"  p99 {r.p99 * 1000:7.1f} ms  errors {r.errors}"
            )
        print(f"    gthread / sync throughput (wrk): {_ratio(w['gthread'].throughput, w['sync'].throughput)}")
    return {f"{kind}/{load}": results for (kind, load), results in totals.items()}


def _post(server: Server, target: Target) -> tuple[int, Any]:
    import http.client

    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request(target.method, target.path, body=target.body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def _report(
    totals: dict[tuple[str, str], list[Result]],
    n_workers: int,
    connections: int,
    rounds: int,
    seconds: float,
    reads: float,
    cds_rate: float,
) -> None:
    print(
        f"workers: {n_workers} process(es) each; sync vs gthread ({THREADS} threads); {rounds} alternating rounds"
        f" of {seconds} s per load; evaluations: closed loop, {connections} connections"
    )
    print(
        f"  the mix adds CDS Hooks patient-view calls at {cds_rate:g}/s (open loop), {reads:.1f} FHIR reads each,"
        f" every read answered after {FHIR_DELAY * 1000:.0f} ms"
    )
    for kind in ("sync", "gthread"):
        print(f"  {kind}")
        print(HEADER)
        print(_row("evaluations only", totals[(kind, "alone")][0]))
        print(_row("CDS Hooks calls only", totals[(kind, "cds")][1]))
        print(_row("mix: evaluations", totals[(kind, "mix")][0]))
        print(_row("mix: CDS Hooks calls", totals[(kind, "mix")][1]))
    s_alone, g_alone = totals[("sync", "alone")][0], totals[("gthread", "alone")][0]
    s_only, g_only = totals[("sync", "cds")][1], totals[("gthread", "cds")][1]
    s_eval, s_cds = totals[("sync", "mix")]
    g_eval, g_cds = totals[("gthread", "mix")]
    print("  gthread / sync:")
    print(
        f"    evaluations only: throughput {_ratio(g_alone.throughput, s_alone.throughput)},"
        f" p99 {_ratio(g_alone.percentile(99), s_alone.percentile(99))}"
    )
    print(f"    CDS Hooks calls only: p50 {_ratio(g_only.percentile(50), s_only.percentile(50))}")
    print(
        f"    mix: evaluations throughput {_ratio(g_eval.throughput, s_eval.throughput)},"
        f" p99 {_ratio(g_eval.percentile(99), s_eval.percentile(99))};"
        f" CDS Hooks p99 {_ratio(g_cds.percentile(99), s_cds.percentile(99))},"
        f" answered {_ratio(g_cds.ok, s_cds.ok)}"
    )
    print(
        f"    evaluations in the mix / alone: sync {_ratio(s_eval.throughput, s_alone.throughput)},"
        f" gthread {_ratio(g_eval.throughput, g_alone.throughput)}"
    )
