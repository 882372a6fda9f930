"""Hostile bodies against the real gunicorn (issue 16, item 2): the cost of a rejected 1 MB body.

Each body is at most 1 MB (MAX_BODY_BYTES); the target is an answer within 0.2 s and at most 64 KB. The
baseline is a valid evaluation on the same server: the report prints each hostile body's time as a ratio
of it. Times are printed, never asserted (tests/http/test_bounded_work.py asserts the sizes).
"""

from __future__ import annotations

import http.client
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .server import ROOT, gunicorn

VALID = {"age": 30, "diagnosis": "confirmed", "pregnant": False}
LIMIT = 1_048_576
TARGET_S, TARGET_BYTES = 0.2, 64 * 1024


def _unknown_keys() -> tuple[str, dict[str, Any]]:
    return "/v1/evaluations", {"profile": {**VALID, **{f"agx{i}": 1 for i in range(LIMIT // 15)}}}


def _near_miss_items() -> tuple[str, dict[str, Any]]:
    return "/v1/evaluations", {"profile": {**VALID, "conditions": [f"heart_failur{i}" for i in range(LIMIT // 21)]}}


def _batch_of_bad_profiles() -> tuple[str, dict[str, Any]]:
    return "/v1/evaluations:batch", {"profiles": [{f"x{i}": 1 for i in range(100)}] * 1000}


def _batch_explain() -> tuple[str, dict[str, Any]]:
    return "/v1/evaluations:batch", {"profiles": [VALID] * 1000, "explain": True}


def _deep_nesting() -> tuple[str, dict[str, Any] | bytes]:
    return "/v1/evaluations", b'{"profile": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


BODIES: dict[str, Callable[[], tuple[str, Any]]] = {
    "60,000 unknown keys": _unknown_keys,
    "50,000 near-miss set items": _near_miss_items,
    "batch: 1,000 profiles of 100 unknown keys": _batch_of_bad_profiles,
    "batch: 1,000 profiles with explain": _batch_explain,
    "200,000 nested arrays": _deep_nesting,
}


def _post(port: int, path: str, data: bytes) -> tuple[int, int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        size = len(resp.read())
        return resp.status, size, time.perf_counter() - started
    finally:
        conn.close()


def run(repeats: int = 5) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        folder = Path(tmp) / "rulesets"
        folder.mkdir()
        text = (ROOT / "rulesets" / "examples" / "minimal.yaml").read_text(encoding="utf-8")
        (folder / "format-example.yaml").write_text(text.replace("status: draft", "status: production"), "utf-8")
        env = {"INSTANCE_PATH": str(Path(tmp) / "instance"), "CDS_HOOKS_AUTH": "disabled"}
        with gunicorn(folder, workers=1, env=env) as server:
            valid = json.dumps({"profile": VALID}).encode()
            base = statistics.median(_post(server.port, "/v1/evaluations", valid)[2] for _ in range(repeats))
            print(f"  baseline (one valid evaluation): {base * 1000:.1f} ms")
            for name, make in BODIES.items():
                path, body = make()
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                runs = [_post(server.port, path, data) for _ in range(repeats)]
                status, size = runs[0][0], runs[0][1]
                took = statistics.median(r[2] for r in runs)
                ok = took <= TARGET_S and size <= TARGET_BYTES
                print(
                    f"  {name}: {len(data) / 1024:.0f} KB in -> {status}, {size / 1024:.1f} KB out, "
                    f"{took * 1000:.0f} ms ({took / base:.0f}x baseline){'' if ok else '  [over target]'}"
                )
                report[name] = {"status": status, "bytes": size, "seconds": took, "ratio": took / base}
    return report


if __name__ == "__main__":
    run()
