"""Plain threaded JSON clients for a server under test: one request, or many POSTs at once.

The asyncio load generator (loadgen.py) measures rates; these serve the "nothing lost" test and the
recording benchmark, which need every response back in order, and a hook between responses.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.server import Server


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
