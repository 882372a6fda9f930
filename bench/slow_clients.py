"""Slow clients against gunicorn, with and without the shipped nginx in front: does `/healthz` stay fast?

Three kinds of slow connection, as an attacker on the network would open them (issue 16, item 1):
- headers: a request line and then one header line per drip, never the blank line that ends the headers;
- body:    complete headers announcing a body, then one byte of it per drip;
- reader:  a complete request for a large answer (the 1.7 MB Swagger UI bundle) with a tiny receive window,
           never read.
While they are open, a prober asks `/healthz` in turn on fresh connections and records how long each takes
(a failed or timed-out probe counts as its timeout). Everything is on 127.0.0.1 and every loop is bounded.

    python -m bench slow_clients    # sync and gthread workers, direct and behind nginx (about two minutes)
"""

from __future__ import annotations

import http.client
import socket
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("headers", "body", "reader")
LARGE_ANSWER = "/docs/swagger-ui-bundle.js"


def _open(host: str, port: int, kind: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if kind == "reader":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(5)
    sock.connect((host, port))
    if kind == "headers":
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n")
    elif kind == "body":
        sock.sendall(
            b"POST /v1/evaluations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
    else:
        sock.sendall(f"GET {LARGE_ANSWER} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    sock.setblocking(False)
    return sock


@dataclass
class SlowClients:
    """`count` slow connections (the kinds in turn) kept dripping every `drip_every` seconds until closed.

    A connection the server closes is opened again (`reopen`), as a persistent attacker would: dropping
    attackers does not help a server that has to accept the next ones.
    """

    host: str
    port: int
    count: int = 50
    kinds: Sequence[str] = KINDS
    drip_every: float = 1.0
    reopen: bool = True
    opened: int = 0
    dropped: int = 0
    _socks: list[tuple[str, socket.socket | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for i in range(self.count):
            kind = self.kinds[i % len(self.kinds)]
            self._socks.append((kind, self._try_open(kind)))
        self._thread = threading.Thread(target=self._drip, name="slow-clients", daemon=True)
        self._thread.start()

    def _try_open(self, kind: str) -> socket.socket | None:
        try:
            sock = _open(self.host, self.port, kind)
        except OSError:
            return None
        self.opened += 1
        return sock

    def _drip(self) -> None:
        n = 0
        while not self._stop.wait(self.drip_every):
            n += 1
            for i, (kind, sock) in enumerate(self._socks):
                if self._stop.is_set():
                    return
                if sock is not None and kind != "reader":
                    try:
                        sock.send(f"X-Drip-{n}: 1\r\n".encode() if kind == "headers" else b" ")
                        continue
                    except OSError:  # closed by the server, or its buffer is full
                        self.dropped += 1
                        sock.close()
                        sock = None
                if sock is None and self.reopen and kind != "reader":
                    self._socks[i] = (kind, self._try_open(kind))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for _, sock in self._socks:
            if sock is not None:
                with suppress(OSError):
                    sock.close()
        self._socks.clear()


@contextmanager
def slow_clients(host: str, port: int, count: int = 50, **options: object) -> Iterator[SlowClients]:
    attack = SlowClients(host, port, count, **options)  # type: ignore[arg-type]
    attack.start()
    try:
        yield attack
    finally:
        attack.close()


@dataclass
class Probes:
    """Latencies (s) of /healthz probes; a probe that failed or timed out counts as `timeout`."""

    latencies: list[float]
    answered: int
    timeout: float

    @property
    def total(self) -> int:
        return len(self.latencies)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]

    @property
    def worst(self) -> float:
        return max(self.latencies)

    def summary(self) -> str:
        return (
            f"/healthz answered {self.answered}/{self.total}; median {self.median * 1000:.1f} ms, "
            f"p95 {self.p95 * 1000:.1f} ms, max {self.worst * 1000:.1f} ms (a failure counts {self.timeout:.1f} s)"
        )


def probe(host: str, port: int, *, seconds: float, timeout: float, every: float = 0.1) -> Probes:
    """GET /healthz on a fresh connection, one after the other, for `seconds` (each waits up to `timeout`)."""
    latencies: list[float] = []
    answered = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        ok = False
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            ok = resp.status == 200 and b"ok" in resp.read()
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            conn.close()
        took = time.monotonic() - start
        latencies.append(took if ok else max(took, timeout))
        answered += ok
        time.sleep(max(0.0, every - took))
    return Probes(latencies, answered, timeout)


def attack(host: str, port: int, *, count: int = 50, seconds: float = 5.0, timeout: float = 2.0) -> Probes:
    """`count` slow clients against host:port, probed for `seconds` once they are all open."""
    with slow_clients(host, port, count):
        time.sleep(0.5)  # let the server take in what the attackers sent
        return probe(host, port, seconds=seconds, timeout=timeout)


def run(
    seconds: float = 8.0,
    workers: int = 2,
    threads: Sequence[int] = (4, 32),
    counts: Sequence[int] = (50, 150),
    rulesets_dir: Path | None = None,
) -> dict[str, str]:
    """For sync and gthread workers: /healthz with no attack (the baseline), then under each count of slow
    clients straight at gunicorn, then under the first count through nginx (if installed)."""
    import tempfile

    from bench.proxy import nginx, nginx_binary
    from bench.server import ROOT, gunicorn

    folder = rulesets_dir or ROOT / "rulesets"
    results: dict[str, str] = {}
    setups: list[tuple[str, dict[str, str]]] = [("sync", {})]
    setups += [(f"gthread x{t}", {"GUNICORN_CMD_ARGS": f"--worker-class gthread --threads {t}"}) for t in threads]

    def report(label: str, probes: Probes) -> None:
        results[label] = probes.summary()
        print(f"{label}: {results[label]}", flush=True)

    with tempfile.TemporaryDirectory(prefix="hairloss-slow-") as tmp:
        for name, env in setups:
            env = {**env, "GUNICORN_TIMEOUT": "30", "INSTANCE_PATH": str(Path(tmp) / name.replace(" ", "-"))}
            with gunicorn(folder, workers=workers, env=env) as server:
                setup = f"{name}, {workers} workers"
                baseline = probe(server.host, server.port, seconds=2, timeout=5)
                report(f"{setup}, no attack", baseline)
                for count in counts:
                    report(
                        f"{setup}, {count} slow clients, direct",
                        attack(server.host, server.port, count=count, seconds=seconds, timeout=5),
                    )
                    # Bounded wait for the workers to come back before the next round.
                    deadline = time.monotonic() + 40
                    while probe(server.host, server.port, seconds=0.01, timeout=2).answered == 0:
                        if time.monotonic() > deadline:
                            break
                if nginx_binary():
                    with nginx(f"{server.host}:{server.port}") as proxy:
                        proxied = attack(proxy.host, proxy.port, count=counts[0], seconds=seconds, timeout=5)
                    report(f"{setup}, {counts[0]} slow clients, through nginx", proxied)
                    ratio = proxied.median / baseline.median
                    results[f"{setup}, ratio"] = f"{ratio:.2f}"
                    print(f"{setup}: ratio of /healthz medians, through nginx under attack / no attack: {ratio:.2f}")
    return results
