"""Real gunicorn, several workers: publish and activate while requests run; a refused revision; a second replica.

Every worker follows the store on its own (LIFECYCLE_POLL_SECONDS=1 here): no request fails during the
switch, every answer names a revision that was production at that moment, and all workers report the new
revision within the 10 s the lifecycle promises. A revision altered in the database after its gate is
refused by every worker, which keep serving the last good one and say so in /readyz.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bench.server import Server, gunicorn

from .conftest import ADMIN, ADMIN_TOKEN, AUDITOR, AUDITOR_TOKEN, HMAC_KEY, RULESET_ID, example, raw_sql, unguard, write

pytestmark = pytest.mark.slow
PROFILE = {"age": 40, "diagnosis": "confirmed", "pregnant": False, "conditions": ["heart_failure"]}
SWITCH_DEADLINE_S = 10.0  # the lifecycle's promise (issue 14): every worker within 10 s


def call(
    server: Server, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


class Load:
    """Evaluations in a loop on each server until stopped: (started, status, sha256 answered)."""

    def __init__(self, servers: list[Server]) -> None:
        self.results: list[tuple[float, int, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(s,), daemon=True) for s in servers]

    def _run(self, server: Server) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, body = call(server, "POST", "/v1/evaluations", {"profile": PROFILE})
            except OSError:
                status, body = 0, None
            sha = body["ruleset"]["sha256"] if status == 200 else None
            self.results.append((started, status, sha))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


def workers_serving(server: Server, sha: str) -> dict[int, str | None]:
    status, body = call(server, "GET", f"/v1/rulesets/{RULESET_ID}/status", headers=AUDITOR)
    assert status == 200, body
    by_pid = {int(w["worker"].rsplit(":", 1)[1]): w for w in body["workers"]}
    return {pid: (by_pid[pid]["serving_sha256"] if pid in by_pid else None) for pid in server.worker_pids()}


def wait_all_serving(servers: list[Server], sha: str, deadline_s: float) -> float:
    start = time.monotonic()
    while True:
        serving = {pid: s for server in servers for pid, s in workers_serving(server, sha).items()}
        if all(s == sha for s in serving.values()):
            return time.monotonic()
        if time.monotonic() - start > deadline_s:
            raise AssertionError(f"not every worker switched to {sha[:12]} within {deadline_s} s: {serving}")
        time.sleep(0.2)


def test_publish_and_activate_under_load_then_refuse_an_altered_revision(tmp_path: Path, database_url: str) -> None:
    folder = tmp_path / "rulesets"
    write(folder, example("0.1.0"))
    env = {
        "DATABASE_URL": database_url,
        "DECISION_HMAC_KEY": HMAC_KEY,
        "ADMIN_TOKEN_HASHES": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
        "AUDITOR_TOKEN_HASHES": hashlib.sha256(AUDITOR_TOKEN.encode()).hexdigest(),
        "LIFECYCLE_POLL_SECONDS": "1",
    }
    # SQLite: one instance with two workers. PostgreSQL: a second replica (another gunicorn) on the same database.
    replicas = [2] if database_url.startswith("sqlite") else [2, 1]
    with ExitStack() as stack:
        servers = [
            stack.enter_context(gunicorn(folder, workers=n, env={**env, "INSTANCE_PATH": str(tmp_path / f"i{i}")}))
            for i, n in enumerate(replicas)
        ]
        first = servers[0]
        status, body = call(first, "GET", "/v1/rulesets")
        old = body["rulesets"][0]["sha256"]
        wait_all_serving(servers, old, 60)  # every worker has started following

        new_text = example("0.2.0", lambda t: t.replace("Monitor for oedema.", "Monitor for oedema and dizziness."))
        with Load(servers) as load:
            time.sleep(0.5)
            status, published = call(
                first, "POST", "/v1/admin/rulesets", {"ruleset": new_text, "file_name": "minimal.yaml"}, ADMIN
            )
            assert status == 201, published
            new = published["sha256"]
            activated_at = time.monotonic()
            status, body = call(first, "POST", f"/v1/admin/rulesets/{RULESET_ID}/activate", {"sha256": new}, ADMIN)
            assert status == 200, body
            switched_at = wait_all_serving(servers, new, SWITCH_DEADLINE_S)
            time.sleep(0.5)
        assert load.results and all(status == 200 for _, status, _ in load.results), "a request failed"
        assert {sha for _, _, sha in load.results} <= {old, new}
        assert all(sha == old for started, _, sha in load.results if started < activated_at)
        assert all(sha == new for started, _, sha in load.results if started > switched_at + 0.1)
        assert any(sha == new for _, _, sha in load.results)

        # an altered revision: the gate passed at publish, the text was changed in the database afterwards
        bad_text = example("0.3.0")
        status, published = call(
            first, "POST", "/v1/admin/rulesets", {"ruleset": bad_text, "file_name": "minimal.yaml"}, ADMIN
        )
        bad = published["sha256"]
        raw_sql(
            database_url,
            *unguard(database_url, "ruleset_releases"),
            f"UPDATE ruleset_releases SET source_text = source_text || '# x' WHERE sha256 = '{bad}'",
        )
        status, _ = call(first, "POST", f"/v1/admin/rulesets/{RULESET_ID}/activate", {"sha256": bad}, ADMIN)
        assert status == 200
        pids = {f"{pid}" for server in servers for pid in server.worker_pids()}
        deadline = time.monotonic() + 60
        while True:
            status, ready = call(first, "GET", "/readyz")
            refused = {
                r["worker"].rsplit(":", 1)[1] for r in ready["lifecycle"]["refusals"] if r["refused_sha256"] == bad
            }
            if refused >= pids or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert refused >= pids, ready
        assert all("altered" in r["reason"] and r["serving_sha256"] == new for r in ready["lifecycle"]["refusals"])
        for server in servers:
            for _ in range(4):
                status, body = call(server, "POST", "/v1/evaluations", {"profile": PROFILE})
                assert status == 200 and body["ruleset"]["sha256"] == new  # the last good one keeps serving
