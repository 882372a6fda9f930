"""A small HTTP/1.1 load generator on raw asyncio streams (no dependency), for loopback benchmarks.

Connections are kept alive when the server allows it and reopened when it answers `Connection: close`
(gunicorn's sync workers close after every response, so there the cost of a connection is part of every
request, for the floor and the evaluations alike). Two modes:
- closed loop: N connections, each sending its next request as soon as the previous answer arrives;
  gives the maximum throughput;
- open loop: requests start on a fixed schedule whatever the answers do, and latency is counted from
  the scheduled start, so a stalled server cannot hide its queueing (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    path: str
    body: bytes = b""

    @classmethod
    def json(cls, name: str, path: str, payload: Any) -> Target:
        return cls(name, "POST", path, json.dumps(payload).encode("utf-8"))

    def request(self, host: str, port: int) -> bytes:
        head = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
        if self.body:
            head += ["Content-Type: application/json", f"Content-Length: {len(self.body)}"]
        return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + self.body


@dataclass
class Result:
    target: Target
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency in seconds at percentile p (nearest rank); nan without samples."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def merge(self, other: Result) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)


class Connection:
    """One client connection, reopened whenever the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(raw)
            await self.writer.drain()
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("closed before answering")
            version, status = status_line.split(b" ", 2)[:2]
            length, close = 0, version == b"HTTP/1.0"
            while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            await self.reader.readexactly(length)
        except Exception:
            await self.close()
            raise
        if close:
            await self.close()
        return int(status)

    async def close(self) -> None:
        if self.writer is not None:
            writer, self.writer, self.reader = self.writer, None, None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _timed(conn: Connection, raw: bytes, started: float, result: Result) -> None:
    try:
        status = await conn.request(raw)
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
        result.errors[type(exc).__name__] += 1
        return
    result.latencies.append(time.perf_counter() - started)
    result.statuses[status] += 1


async def closed_loop(host: str, port: int, target: Target, concurrency: int, seconds: float) -> Result:
    result = Result(target)
    raw = target.request(host, port)
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while time.perf_counter() < deadline:
                await _timed(conn, raw, time.perf_counter(), result)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result


async def open_loop(host: str, port: int, target: Target, rate: float, seconds: float, max_open: int = 256) -> Result:
    """`rate` requests per second for `seconds`; at most `max_open` at once (the rest wait, and that counts)."""
    result = Result(target)
    raw = target.request(host, port)
    idle: list[Connection] = []
    slots = asyncio.Semaphore(max_open)
    start = time.perf_counter()
    tasks = []

    async def one(scheduled: float) -> None:
        async with slots:
            conn = idle.pop() if idle else Connection(host, port)
            await _timed(conn, raw, scheduled, result)
            idle.append(conn)

    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    for conn in idle:
        await conn.close()
    return result
