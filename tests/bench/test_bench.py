"""The benchmark machinery: discovery, the load generator, and a short real run (no timing is asserted)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import answer_size, wrk
from bench.__main__ import benchmarks
from bench.http_api import run
from bench.loadgen import Target, closed_loop, open_loop
from bench.server import ROOT, gunicorn


def test_every_module_with_run_is_a_benchmark() -> None:
    found = benchmarks()
    assert "http_api" in found
    assert "server" not in found and "loadgen" not in found  # helpers define no run()
    assert {"engine", "workers"} <= set(found)
    assert not {"wrk", "peers"} & set(found)


def test_unknown_benchmark_name() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "no_such_bench"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "available: " in proc.stderr and "http_api" in proc.stderr


async def _keep_alive_server(connections: list[int]) -> asyncio.Server:
    """A minimal HTTP/1.1 server that keeps connections open, to check the client reuses them."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_load_generator_keeps_connections_alive() -> None:
    async def main() -> tuple[int, int, int]:
        connections: list[int] = []
        server = await _keep_alive_server(connections)
        port = server.sockets[0].getsockname()[1]
        target = Target.json("echo", "/x", {"a": 1})
        closed = await closed_loop("127.0.0.1", port, target, concurrency=3, seconds=0.3)
        opened = await open_loop("127.0.0.1", port, target, rate=200, seconds=0.25)
        server.close()
        await server.wait_closed()
        return closed.ok, opened.ok, len(connections)

    closed_ok, open_ok, connections = asyncio.run(main())
    assert closed_ok > 3 and open_ok == 50
    assert connections < closed_ok + open_ok  # reused, not one connection per request


@pytest.mark.slow
def test_short_run_against_real_gunicorn(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    numbers = run(rounds=1, seconds=0.3, half_rate_seconds=0.3, workers=1, rulesets_dir=tmp_path)
    out = capsys.readouterr().out
    assert "stand-in: rulesets/examples/minimal.yaml" in out  # an empty folder: the example stands in
    assert "ratio evaluations/floor:" in out
    assert "p99 of evaluations at half the maximum rate:" in out
    assert numbers["errors"] == 0
    if wrk.missing():  # wrk is a bench-only Debian package: CI does not install it
        assert "wrk is not installed" in out
    else:
        assert "ratio evaluations/floor (wrk):" in out and "wrk / asyncio client throughput:" in out
        assert numbers["wrk_errors"] == 0 and numbers["wrk_floor_rps"] > 0 and numbers["wrk_evaluations_rps"] > 0
    assert numbers["floor_rps"] > 0 and numbers["evaluations_rps"] > 0 and numbers["ratio"] > 0


def test_engine_peers_agree_on_a_small_sample() -> None:
    """ZEN's decision table, the generated-Python floor, the reference and durable_rules fire the same rules."""
    from bench.engine import generated_ruleset, measure
    from service.ruleset import load_file

    for rs in (generated_ruleset(), load_file(ROOT / "rulesets" / "androgenetic-alopecia.yaml")):
        result = measure(rs, profiles=40, repetitions=1)
        assert not result["skipped"], result["skipped"]  # every condition of both rulesets translates
        assert result["profiles_checked"] > 40  # the random sample plus the boundary profiles
        assert {"durable_rules fired", "ZEN fired", "generated-Python floor"} <= set(result["paths"])
        assert result["zen_speed_ratio"] > 0 and result["floor_ratio"] > 0
        assert 0 < result["c_calls"]["assert_fact"]["share"] < 1


def test_engine_benchmark_fails_loudly_when_evaluators_disagree() -> None:
    from bench.engine import Disagreement, check_agreement, generated_ruleset
    from bench.peers import FloorEvaluator
    from service.engine import reference

    rs = generated_ruleset()
    floor = FloorEvaluator(rs)
    profiles = [{"sex": "female", "age": 30, "stage": "mild", "months": 3, "conditions": ("a",)}]
    assert check_agreement({"reference": lambda p: reference.fired_rules(rs, p), "floor": floor.fired}, profiles) == 1
    with pytest.raises(Disagreement, match="1 of 1 profiles"):
        check_agreement({"floor": floor.fired, "wrong": lambda p: floor.fired(p)[1:]}, profiles)


def test_floor_is_generated_from_the_parsed_ruleset_only() -> None:
    """Literals are written with repr() after a type check; anything else is refused, never compiled."""
    from bench.peers import Untranslatable, _scalar

    assert _scalar("moderate") == "moderate" and _scalar(18) == 18 and _scalar(True) is True
    for bad in ("a'); import os; ('", 1.5, None, ["x"]):
        with pytest.raises(Untranslatable):
            _scalar(bad)


def test_wrk_script_carries_the_body_verbatim() -> None:
    """The POST body sits in a Lua long bracket that the body itself cannot close."""
    body = {"profile": {"note": "]] ]=] ]==]"}, "ruleset": "x"}
    lua = wrk.script(Target.json("post", "/v1/evaluations", body))
    assert "wrk.method = [[POST]]" in lua
    assert 'wrk.headers["Content-Type"] = "application/json"' in lua
    assert "wrk.body = [===[" + json.dumps(body) + "]===]" in lua
    assert "done = function(summary, latency, requests)" in lua
    assert "wrk.body" not in wrk.script(Target("get", "GET", "/healthz"))


def _example_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rulesets"
    folder.mkdir(parents=True)
    text = (ROOT / "rulesets" / "examples" / "minimal.yaml").read_text(encoding="utf-8")
    (folder / "example.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.slow
def test_gunicorn_runs_gthread_workers_when_configured(tmp_path: Path) -> None:
    env = {"INSTANCE_PATH": str(tmp_path / "instance")}
    with gunicorn(_example_folder(tmp_path), workers=1, worker_class="gthread", threads=2, env=env) as server:
        assert server.worker_class == "gthread"
        assert server.get("/healthz")[0] == 200
    with gunicorn(_example_folder(tmp_path / "b"), workers=1, env=env) as server:
        assert server.worker_class == "sync"  # the default


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"GUNICORN_WORKER_CLASS": "gevent"}, "GUNICORN_WORKER_CLASS must be sync or gthread, not 'gevent'"),
        ({"GUNICORN_THREADS": "4"}, "GUNICORN_THREADS applies to GUNICORN_WORKER_CLASS=gthread only"),
        ({"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_THREADS": "0"}, "GUNICORN_THREADS must be a whole number"),
    ],
)
def test_gunicorn_refuses_a_bad_worker_setting(settings: dict[str, str], message: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--check-config",
            "service:create_app()",
        ],
        cwd=ROOT,
        env={**os.environ, **settings, "GUNICORN_BIND": "127.0.0.1:0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


@pytest.mark.slow
def test_workers_benchmark_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.workers import run as run_workers

    # The CDS Hooks test fixture (a small production ruleset with its FHIR mapping) starts faster than the bundled one.
    results = run_workers(rounds=1, seconds=0.5, workers=1, rulesets_dir=ROOT / "tests" / "cds" / "data", cds_rate=4)
    out = capsys.readouterr().out
    assert "gthread / sync:" in out and "mix: CDS Hooks calls" in out
    for evaluations, cds in (results[k] for k in ("sync/mix", "gthread/mix")):
        assert evaluations.ok > 0 and cds.ok > 0
        assert not evaluations.errors and not cds.errors
        assert all(200 <= s < 300 for s in (*evaluations.statuses, *cds.statuses))


def test_answer_size_reports_both_views_of_each_typical_profile(capsys: pytest.CaptureFixture[str]) -> None:
    sizes = answer_size.run()
    out = capsys.readouterr().out
    assert set(sizes) == set(answer_size.PROFILES)
    for name, row in sizes.items():
        assert 0 < row["default"] < row["full"]  # the default view is the compact one
        assert name in out
