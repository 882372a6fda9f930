"""Start the real gunicorn with gunicorn.conf.py on a free loopback port (used by the benchmark and tests)."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .processes import Listening, stop

__all__ = ["ROOT", "Server", "gunicorn", "stop"]

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


@dataclass
class Server(Listening):
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def worker_class(self) -> str:
        """The worker class gunicorn reports using (sync, gthread)."""
        match = re.search(r"Using worker: (\S+)", self.log())
        return match.group(1) if match else "?"

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the master's child processes (read from /proc)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(stat.parent.name))
        return sorted(pids)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def _wait_listening(proc: subprocess.Popen[bytes], log_path: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text(encoding='utf-8', errors='replace')}")


@contextmanager
def gunicorn(
    rulesets_dir: Path | str,
    *,
    workers: int | None = None,
    worker_class: str | None = None,
    threads: int | None = None,
    env: dict[str, str] | None = None,
    startup_timeout: float = 120.0,
    app: str = "service:create_app()",
) -> Iterator[Server]:
    """gunicorn on 127.0.0.1 and a port the kernel picks; stopped with SIGTERM (graceful) on exit.

    With `workers`, returns once that many workers have booted. `worker_class` (sync|gthread) and `threads`
    set GUNICORN_WORKER_CLASS and GUNICORN_THREADS (gunicorn.conf.py's defaults otherwise). HOME is a fresh
    directory and the control socket is off, so several servers (tests, other engineers' runs) never share
    gunicorn's $HOME/.gunicorn/gunicorn.ctl.
    """
    with tempfile.TemporaryDirectory(prefix="hairloss-gunicorn-") as tmp:
        log_path = Path(tmp) / "gunicorn.log"
        # Each server gets its own metrics directory (gunicorn.conf.py makes one) unless `env` names one.
        child_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        child_env.update(
            {
                "HOME": tmp,
                "RULESETS_DIR": str(rulesets_dir),
                "GUNICORN_BIND": "127.0.0.1:0",
                "GUNICORN_ACCESS_LOG": "off",
                # Benchmarks and tests drive thousands of evaluations from 127.0.0.1: no evaluation limit
                # unless the caller (or its environment) sets one.
                "RATE_LIMIT_EVALUATIONS": os.environ.get("RATE_LIMIT_EVALUATIONS", "off"),
                **({"GUNICORN_WORKERS": str(workers)} if workers else {}),
                **({"GUNICORN_WORKER_CLASS": worker_class} if worker_class else {}),
                **({"GUNICORN_THREADS": str(threads)} if threads else {}),
                **(env or {}),
            }
        )
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--no-control-socket",
            app,
        ]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_timeout
            port = _wait_listening(proc, log_path, deadline)
            server = Server("127.0.0.1", port, proc, log_path)
            while workers and server.log().count("Booting worker with pid") < workers:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"gunicorn workers did not boot:\n{server.log()}")
                time.sleep(0.05)
            while server.get("/healthz")[0] != 200:  # a worker is serving
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn does not answer /healthz:\n{server.log()}")
                time.sleep(0.05)
            yield server
        finally:
            stop(proc)
