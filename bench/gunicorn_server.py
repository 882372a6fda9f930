"""Run the real service under gunicorn on a free port, and put concurrent load on it.

Shared by the benchmarks and the "nothing lost" test. The listening socket is created here on port 0
and handed to gunicorn as fd://N, so parallel runs on one machine never fight over a port.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the master's child processes."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    pids.append(int(stat.parent.name))
        return sorted(pids)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def gunicorn(
    app: str,
    env: dict[str, str],
    log_path: Path,
    workers: int = 3,
    extra: Sequence[str] = (),
    ready_path: str = "/healthz",
) -> Iterator[Server]:
    """gunicorn serving `app` (e.g. "service:create_app()") with the project's gunicorn.conf.py, if any."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    host, port = sock.getsockname()
    config = ROOT / "gunicorn.conf.py"
    args = [str(GUNICORN), "--bind", f"fd://{sock.fileno()}", "--workers", str(workers)]
    if config.exists():
        args[1:1] = ["--config", str(config)]
    args += [*extra, app]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),)
        )
    sock.close()  # gunicorn holds its own copy
    server = Server(host, port, process, log_path)
    try:
        _wait_ready(server, ready_path, workers)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Server, path: str, workers: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(server, "GET", path)[0] == 200 and len(server.worker_pids()) >= workers:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn was not ready after {timeout:.0f}s:\n{server.log()[-3000:]}")


def request(server: Server, method: str, path: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
    """One request on a fresh connection; (status, parsed JSON body or None)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, parsed
    finally:
        conn.close()


@dataclass
class Outcome:
    status: int  # 0: the connection failed (e.g. the worker was killed while answering)
    body: Any


def load(
    server: Server,
    path: str,
    bodies: Sequence[Any],
    concurrency: int = 16,
    on_progress: Any = None,
) -> tuple[list[Outcome], float]:
    """POST every body with `concurrency` clients; the outcomes in order and the elapsed seconds.

    on_progress(done) is called after each response (from client threads).
    """
    done = 0
    lock = threading.Lock()

    def one(body: Any) -> Outcome:
        nonlocal done
        try:
            status, parsed = request(server, "POST", path, body)
            outcome = Outcome(status, parsed)
        except (OSError, http.client.HTTPException):
            outcome = Outcome(0, None)
        with lock:
            done += 1
            count = done
        if on_progress is not None:
            on_progress(count)
        return outcome

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(one, bodies))
    return outcomes, time.perf_counter() - started
