"""gunicorn settings: `gunicorn --config gunicorn.conf.py "service:create_app()"` (what `make run` does).

Sync workers, one per CPU, with the app preloaded: rulesets are loaded and verified (z3 proofs, tests) once
in the master before it forks, and every worker starts serving at once. Environment overrides are read by
service.config.gunicorn_from_env and listed in README.md ("Configuration").

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

bind = _settings["bind"]
workers = _settings["workers"]
worker_class = "sync"
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


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges no longer count; its counters and histograms still do."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics directory if this file created it (an operator's own directory is left)."""
    owned = os.environ.get(_OWNED)
    if owned and owned == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(owned, ignore_errors=True)
