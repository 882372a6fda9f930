"""gunicorn settings: `gunicorn --config gunicorn.conf.py "service:create_app()"` (what `make run` does).

Sync workers, one per CPU, with the app preloaded: rulesets are loaded and verified (z3 proofs, tests) once
in the master before it forks, and every worker starts serving at once. Environment overrides are read by
service.config.gunicorn_from_env and listed in README.md ("Configuration"); the worker class is read here:
GUNICORN_WORKER_CLASS=sync (default) or gthread, and GUNICORN_THREADS per gthread worker (default 4).

Why sync by default - `python -m bench workers`: sync vs gthread (4 threads), 2 processes each, same run,
alternating rounds; the mix adds CDS Hooks patient-view calls (1/s, no prefetch) whose 7 FHIR reads each
wait 500 ms on a loopback EHR stand-in. gthread / sync in three runs on the 2-core development machine,
which other jobs kept saturated (load average 10-14), so figures moved by up to 2x between runs:
- evaluations alone (CPU and the decision log's write wait): throughput 1.53, 1.34, 1.87 with the asyncio
  client, 1.14 and 2.27 with wrk; but p99 1.39, 1.91, 1.20 - worse tails;
- the mix: evaluations throughput 3.08, 2.50, 4.06 and p99 0.63, 0.93, 0.35 (a sync worker waiting on
  FHIR serves nobody), but the CDS Hooks calls' own p99 1.28, 1.50, 1.15 and p50 alone 0.96-1.03.
durable_rules holds the GIL in every call (shared/reference/durable-rules.md 2.4: per-sid sessions are
safe in threads, with no CPU parallelism), so threads overlap only waiting and connection handling
(gthread keeps connections alive; sync closes each one). More throughput, worse tails, on a noisy
machine: not the clear case that changing the default needs. Sync stays; a deployment whose CDS Hooks
traffic often comes without prefetch can set GUNICORN_WORKER_CLASS=gthread (tests/http/test_gunicorn.py
and tests/decisions/test_nothing_lost.py pass with it). Re-measure on a quiet machine before switching.

Slow clients are no reason to pick either: a sync worker is held by one connection from its first byte to
its last, so a few more slow connections (headers, body or reading) than workers stop the service until
GUNICORN_TIMEOUT kills them. gthread only moves that line to workers x threads: `python -m bench
slow_clients` (2 workers, /healthz probes allowed 5 s) - 50 slow connections stalled sync and gthread 2x4
completely, gthread 2x32 survived 50 but stalled at 150. Behind the shipped nginx (deploy/nginx/), which
buffers whole requests and answers, /healthz stayed at a 4-9 ms median (no attack: 4-5 ms) with either
worker class. Keep gunicorn on loopback behind nginx (deploy/compose.yaml); choose the worker class for
throughput, not for slow clients.

Metrics: each worker keeps its own counters, so prometheus_client runs in multiprocess mode. This file
runs before the app is imported and points PROMETHEUS_MULTIPROC_DIR at a fresh directory (or at the one
given, emptied at start); dead workers are marked so, and a directory created here is removed at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from service.config import gunicorn_from_env, refuse_open_bind

_settings = gunicorn_from_env()
WORKER_CLASSES = ("sync", "gthread")
DEFAULT_THREADS = 4  # gthread only


def _worker_class() -> tuple[str, int]:
    """GUNICORN_WORKER_CLASS (sync|gthread) and GUNICORN_THREADS (gthread only); a bad value stops the server."""
    kind = os.environ.get("GUNICORN_WORKER_CLASS", "").strip().lower() or "sync"
    if kind not in WORKER_CLASSES:
        raise SystemExit(f"configuration error: GUNICORN_WORKER_CLASS must be sync or gthread, not {kind!r}")
    raw = os.environ.get("GUNICORN_THREADS", "").strip()
    if not raw:
        return kind, DEFAULT_THREADS if kind == "gthread" else 1
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise SystemExit(f"configuration error: GUNICORN_THREADS must be a whole number from 1 to 64, not {raw!r}")
    if kind == "sync" and int(raw) != 1:
        # gunicorn would silently switch to gthread; the worker class is chosen by its own setting only.
        raise SystemExit("configuration error: GUNICORN_THREADS applies to GUNICORN_WORKER_CLASS=gthread only")
    return kind, int(raw)


bind = _settings["bind"]
workers = _settings["workers"]
worker_class, threads = _worker_class()
preload_app = True
timeout = _settings["timeout"]
graceful_timeout = 20
loglevel = _settings["loglevel"]
accesslog = _settings["accesslog"]
errorlog = "-"
# The request line is the only request data in the access log; bodies (profiles) are never logged.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
if _settings["control_socket"]:
    control_socket = _settings["control_socket"]

_OWNED = "HAIRLOSS_OWNS_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # A configuration reload (HUP) runs this file again: the variable is then set and the directory kept.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hairloss-metrics-")
    os.environ[_OWNED] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _refuse_open_bind(server: Any) -> None:
    """No open evaluation channels beyond loopback: the bind as gunicorn has it (GUNICORN_BIND or -b)."""
    refuse_open_bind(list(server.cfg.bind))


def on_starting(server: Any) -> None:
    """Start from empty counters: files left by a previous run would be added to this one's."""
    _refuse_open_bind(server)
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    server.log.info("metrics directory %s", folder)


def post_fork(server: Any, worker: Any) -> None:
    """Each worker follows the ruleset store on its own (service/lifecycle): new revisions without a restart."""
    from service.lifecycle import follow_in_worker

    follow_in_worker()


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges no longer count; its counters and histograms still do."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics directory if this file created it (an operator's own directory is left)."""
    owned = os.environ.get(_OWNED)
    if owned and owned == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(owned, ignore_errors=True)
