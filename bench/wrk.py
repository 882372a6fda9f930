"""Drive a loopback server with wrk (the Debian package): a C load generator, so the client's own CPU cost
flatters the server less than the asyncio load generator does on a 2-core machine.

wrk keeps connections alive (gunicorn's sync workers still close after each response; wrk then
reconnects, as any client must). A generated Lua script sets the method and body and, in wrk's `done`
hook, writes one JSON line with the counts and latency percentiles, so nothing depends on wrk's text
report. Bench-only: CI does not install wrk, and callers skip with `missing()`'s message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .loadgen import Target

MARK = "WRK-RESULT "
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    "MARK", summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
""".replace("MARK", MARK)


@dataclass(frozen=True)
class WrkResult:
    name: str
    requests: int
    seconds: float
    errors: int  # socket errors (connect, read, write, timeout) and non-2xx/3xx answers
    p50: float  # seconds
    p99: float

    @property
    def throughput(self) -> float:
        """Answered requests per second, errors excluded."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def missing() -> str | None:
    """None when wrk can run here, else why not (for a clear skip message)."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (Debian: apt-get update && apt-get install -y wrk); wrk figures skipped"
    return None


def _lua_string(text: str) -> str:
    """A Lua long-bracket literal that cannot be closed early by the text inside it."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def script(target: Target) -> str:
    """The Lua script for one target: method, headers and body, then the JSON summary."""
    lines = [f"wrk.method = {_lua_string(target.method)}"]
    if target.body:
        lines.append(f"wrk.body = {_lua_string(target.body.decode('utf-8'))}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    return "\n".join(lines) + "\n" + DONE


def drive(
    url: str, target: Target, seconds: float, connections: int = 8, threads: int = 2, timeout_s: int = 5
) -> WrkResult:
    """wrk for `seconds` against url + target.path; raises RuntimeError if wrk fails or reports nothing."""
    with tempfile.TemporaryDirectory(prefix="hairloss-wrk-") as tmp:
        path = Path(tmp) / "target.lua"
        path.write_text(script(target), encoding="utf-8")
        cmd = [
            "wrk",
            f"--threads={min(threads, connections)}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={timeout_s}s",
            f"--script={path}",
            url + target.path,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    data = json.loads(line[len(MARK) :])
    errors = sum(data[k] for k in ("connect", "read", "write", "timeout", "status"))
    return WrkResult(
        target.name, data["requests"], data["duration_us"] / 1e6, errors, data["p50_us"] / 1e6, data["p99_us"] / 1e6
    )


def merge(results: list[WrkResult]) -> WrkResult:
    """Rounds of one target added up; percentiles are the median of the rounds' (wrk gives no samples)."""
    if not results:
        raise ValueError("no rounds")
    ordered = sorted(results, key=lambda r: r.p99)
    middle = ordered[len(ordered) // 2]
    p50 = sorted(r.p50 for r in results)[len(results) // 2]
    return WrkResult(
        results[0].name,
        sum(r.requests for r in results),
        sum(r.seconds for r in results),
        sum(r.errors for r in results),
        p50,
        middle.p99,
    )
