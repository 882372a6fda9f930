"""Nothing lost: real gunicorn, several workers, thousands of concurrent evaluations, a worker SIGKILLed
mid-load. Every 200 must have exactly one record and the chain must verify.

Runs against the contract of the JSON API (POST /v1/evaluations with {"ruleset", "profile"} answering
200 with `decision_id`), which is built on another branch: skipped until the app has that route.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from bench.clients import load
from bench.server import gunicorn

from .conftest import HMAC_KEY, PROFILE, raw_sql, verify_database

REQUESTS = 3000
WORKERS = 3

pytestmark = pytest.mark.slow


def test_no_answered_request_is_lost_when_a_worker_is_killed(
    database_url: str, ruleset_dir: Path, tmp_path: Path
) -> None:
    settings = {
        "RULESETS_DIR": str(ruleset_dir),
        "DATABASE_URL": database_url,
        "DECISION_HMAC_KEY": HMAC_KEY,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    killed: list[int] = []
    bodies = [{"ruleset": "format-example", "profile": {**PROFILE, "age": n % 100}} for n in range(REQUESTS)]
    with gunicorn(ruleset_dir, workers=WORKERS, env=settings) as server:

        def kill_one_worker(done: int) -> None:
            if done == REQUESTS // 3:
                victim = server.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        outcomes, _ = load(server, "/v1/evaluations", bodies, concurrency=16, on_progress=kill_one_worker)
        respawned = server.worker_pids()
        log_text = server.log()

    assert killed, "the worker was never killed"
    assert killed[0] not in respawned and len(respawned) == WORKERS, log_text[-2000:]
    statuses = Counter(o.status for o in outcomes)
    # a request the killed worker was answering gets no response (0); nothing else may fail
    assert set(statuses) <= {200, 0}, statuses
    assert statuses[200] >= REQUESTS - 50, statuses
    answered = [o.body["decision_id"] for o in outcomes if o.status == 200]

    [rows] = raw_sql(database_url, "SELECT decision_id FROM decisions")
    recorded = Counter(decision_id for (decision_id,) in rows)
    assert [d for d in answered if recorded[d] != 1] == []
    report = verify_database(database_url)
    assert report.ok, report.problems
    assert report.counts["decisions"] == len(rows) >= len(answered)
