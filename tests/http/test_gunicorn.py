"""The real gunicorn with gunicorn.conf.py: several workers, end to end, metrics summed across workers, clean stop."""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.server import Server, gunicorn, stop

from .conftest import RULESET_ID, VALID_PROFILE, write_ruleset

pytestmark = pytest.mark.slow


def request(
    server: Server, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def counter(server: Server, name: str, **labels: str) -> float:
    status, _, body = request(server, "GET", "/metrics")
    assert status == 200
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def metrics_dir(server: Server) -> Path:
    match = re.search(r"metrics directory (\S+)", server.log())
    assert match, server.log()
    return Path(match.group(1))


def test_end_to_end_under_gunicorn(tmp_path: Path) -> None:
    folder = tmp_path / "rulesets"
    write_ruleset(folder)
    with gunicorn(folder, workers=2) as server:
        assert re.search(r"Booting worker with pid: \d+[\s\S]*Booting worker with pid: \d+", server.log())
        status, headers, body = request(server, "GET", "/readyz")
        assert status == 200 and json.loads(body)["rulesets"][0]["id"] == RULESET_ID

        status, _, body = request(server, "GET", "/v1/rulesets")
        assert status == 200 and [r["id"] for r in json.loads(body)["rulesets"]] == [RULESET_ID]

        status, headers, body = request(server, "POST", "/v1/evaluations", {"profile": VALID_PROFILE})
        assert status == 200 and headers["content-type"] == "application/json"
        assert [c["option"] for c in json.loads(body)["candidates"]] == ["topical", "oral"]

        status, headers, body = request(server, "POST", "/v1/evaluations", {"profile": {"age": "30"}})
        assert status == 422 and headers["content-type"] == "application/problem+json"

        status, headers, _ = request(server, "POST", "/v1/evaluations", "x", **{"Content-Type": "text/plain"})
        assert status == 415

        status, _, body = request(server, "POST", "/v1/evaluations:batch", {"profiles": [VALID_PROFILE] * 3})
        assert status == 200 and len(json.loads(body)["decisions"]) == 3

        status, _, body = request(server, "GET", "/openapi.json")
        assert status == 200 and json.loads(body)["openapi"] == "3.1.0"
        assert request(server, "GET", "/docs")[0] == 200

        # Counters from every worker are summed, whichever worker answers /metrics.
        for _ in range(30):
            assert request(server, "GET", "/healthz")[0] == 200
        assert counter(server, "http_requests_total", endpoint="/healthz", status="200") >= 30 + 1
        assert counter(server, "decisions_total", ruleset=RULESET_ID, channel="api") == 1
        assert counter(server, "decisions_total", ruleset=RULESET_ID, channel="batch") == 3
        assert counter(server, "decision_candidates_total", ruleset=RULESET_ID, option="topical") == 4
        assert counter(server, "http_requests_total", endpoint="/v1/evaluations", status="422") == 1
        folder_used = metrics_dir(server)
        assert len({p.name for p in folder_used.glob("*.db")}) >= 2  # one file per worker and metric type
        proc = server.proc
    assert proc.returncode == 0, server.log()
    assert not folder_used.exists()  # the directory gunicorn.conf.py created is removed at exit


def test_given_metrics_dir_is_emptied_at_start_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "rulesets"
    write_ruleset(folder)
    given = tmp_path / "metrics"
    given.mkdir()
    with gunicorn(folder, workers=1) as first:
        for _ in range(5):
            request(first, "POST", "/v1/evaluations", {"profile": VALID_PROFILE})
    # A stale file from the previous run (as after a crash): it must not be added to the new run's counts.
    with gunicorn(folder, workers=1, env={"PROMETHEUS_MULTIPROC_DIR": str(given)}) as server:
        request(server, "POST", "/v1/evaluations", {"profile": VALID_PROFILE})
        assert counter(server, "decisions_total", channel="api") == 1
    stale = given / "counter_999999.db"
    stale.write_bytes(b"")
    with gunicorn(folder, workers=1, env={"PROMETHEUS_MULTIPROC_DIR": str(given)}) as server:
        assert counter(server, "decisions_total", channel="api") == 0
        assert not stale.exists()
    assert given.is_dir()


def test_bad_configuration_fails_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "rulesets"
    write_ruleset(folder)
    with (
        pytest.raises(RuntimeError, match="GUNICORN_WORKERS must be a whole number"),
        gunicorn(folder, env={"GUNICORN_WORKERS": "many"}, startup_timeout=30),
    ):
        pass


def test_stop_is_graceful(tmp_path: Path) -> None:
    folder = tmp_path / "rulesets"
    write_ruleset(folder)
    with gunicorn(folder, workers=1) as server:
        assert stop(server.proc) == 0
        assert "Shutting down: Master" in server.log()
