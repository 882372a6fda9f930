"""What recording costs: JSON API throughput with the decision log on vs off, measured in the same run.

Both variants run the real service under gunicorn with the same workers and the same load (POST
/v1/evaluations, the JSON API's contract); "off" is the same app with its recorder removed, which only
a benchmark may do. Runs alternate (off, on, off, on) and the best of each counts, to damp the noise of
a shared machine. Target: on/off >= 0.8.

    .venv/bin/python -m bench.recording                      # SQLite in a temporary instance folder
    DATABASE_URL=postgresql://... .venv/bin/python -m bench.recording
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask

from bench.clients import load
from bench.server import ROOT, gunicorn
from service import create_app
from service.ruleset import load_file, ruleset_files

TARGET = 0.8
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
CONCURRENCY = 16
WORKERS = int(os.environ.get("BENCH_WORKERS", max(2, os.cpu_count() or 2)))


def app_without_log() -> Flask:
    """The service with its decision log detached: the baseline. Never a deployment option."""
    app = create_app()
    app.extensions["decision_log"].close()
    app.extensions["decision_log"] = None
    return app


def _bodies(rulesets: Path) -> list[dict[str, Any]]:
    """Requests cycling through the ruleset's own test profiles: realistic answers, and all valid."""
    [path] = ruleset_files(rulesets)
    rs = load_file(path)
    profiles = [json.loads(json.dumps(t.profile, default=list)) for t in rs.tests]
    return [{"ruleset": rs.id, "profile": profiles[n % len(profiles)]} for n in range(REQUESTS)]


def _throughput(app: str, env: dict[str, str], folder: Path, name: str) -> float:
    bodies = _bodies(Path(env["RULESETS_DIR"]))
    with gunicorn(env["RULESETS_DIR"], workers=WORKERS, env=env, app=app) as server:
        load(server, "/v1/evaluations", bodies[:200], concurrency=CONCURRENCY)  # warm-up
        outcomes, elapsed = load(server, "/v1/evaluations", bodies, concurrency=CONCURRENCY)
    failed = [o.status for o in outcomes if o.status != 200]
    if failed:
        raise RuntimeError(f"{name}: {len(failed)} request(s) failed (statuses {sorted(set(failed))})")
    return REQUESTS / elapsed


def measure() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    try:
        rulesets = folder / "rulesets"
        rulesets.mkdir()
        bundled = ROOT / "rulesets" / "androgenetic-alopecia.yaml"
        if bundled.exists():  # the real ruleset: its decisions (and so the records) are the real size
            for path in ROOT.joinpath("rulesets").glob("androgenetic-alopecia*.yaml"):
                shutil.copy(path, rulesets / path.name)
        else:
            example = (ROOT / "rulesets" / "examples" / "minimal.yaml").read_text(encoding="utf-8")
            (rulesets / "minimal.yaml").write_text(example.replace("status: draft", "status: production"))
        env = {
            "RULESETS_DIR": str(rulesets),
            "INSTANCE_PATH": str(folder / "instance"),
            "DECISION_HMAC_KEY": os.environ.get("DECISION_HMAC_KEY", "bench-" + "k" * 40),
            "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        }
        off, on = [], []
        for _ in range(2):
            off.append(_throughput("bench.recording:app_without_log()", env, folder, "off"))
            on.append(_throughput("service:create_app()", env, folder, "on"))
        ratio = max(on) / max(off)
        return {
            "name": "recording",
            "log_off_rps": round(max(off), 1),
            "log_on_rps": round(max(on), 1),
            "ratio": round(ratio, 3),
            "target": TARGET,
            "ok": ratio >= TARGET,
            "backend": "postgresql" if env["DATABASE_URL"] else "sqlite",
            "workers": WORKERS,
            "requests": REQUESTS,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run() -> dict[str, Any]:
    """Print the report (python -m bench calls this) and return the figures."""
    result = measure()
    print(
        f"recording ({result['backend']}, {result['workers']} workers, {result['requests']} requests): "
        f"log off {result['log_off_rps']} req/s, log on {result['log_on_rps']} req/s, "
        f"ratio {result['ratio']} (target >= {TARGET}) {'OK' if result['ok'] else 'BELOW TARGET'}",
        flush=True,
    )
    return result


def main() -> int:
    result = run()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
