"""The benchmark machinery: discovery, the load generator, and a short real run (no timing is asserted)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import benchmarks
from bench.http_api import run
from bench.loadgen import Target, closed_loop, open_loop
from bench.server import ROOT


def test_every_module_with_run_is_a_benchmark() -> None:
    found = benchmarks()
    assert "http_api" in found
    assert "server" not in found and "loadgen" not in found  # helpers define no run()


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
    assert numbers["floor_rps"] > 0 and numbers["evaluations_rps"] > 0 and numbers["ratio"] > 0
