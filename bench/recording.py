"""What recording costs: JSON API throughput with the decision log on vs off, measured in the same run.

Both variants run the real service under gunicorn with the same workers and the same load (POST
/v1/evaluations, the JSON API's contract); "off" is the same app with its recorder removed, which only
a benchmark may do. Runs alternate (off, on, off, on) and the best of each counts, to damp the noise of
a shared machine. Target: on/off >= 0.8. It also prints the stored bytes per decision record: every
column of the decisions table (the compressed answer included; issue 15: <= 4 KB) and, on SQLite, the
database file per decision (indexes and page slack included).

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
RECORD_TARGET = 4096  # bytes per decision record (issue 15)
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
        stored = stored_bytes(env["DATABASE_URL"], folder / "instance")
        return {
            **stored,
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


def stored_bytes(url: str, instance: Path) -> dict[str, Any]:
    """Bytes per decision record: the sum of its columns' lengths, and (SQLite) the file per decision."""
    from sqlalchemy import create_engine, text

    from service.decisions.database import SQLITE_FILE

    path = instance / SQLITE_FILE
    engine = create_engine(url or f"sqlite:///{path}")
    columns = [
        "decision_id",
        "channel",
        "ruleset_id",
        "ruleset_version",
        "ruleset_sha256",
        "profile",
        "candidates",
        "excluded",
        "referrals",
        "fired_rules",
        "decision",
        "answer",
        "patient_hash",
        "user_hash",
        "hook_instance_hash",
        "prev_hash",
        "hash",
    ]
    size = " + ".join(f"coalesce(length({c}), 0)" for c in columns)
    try:
        with engine.connect() as conn:
            count, total, answers = conn.execute(
                text(f"SELECT count(*), sum({size}), sum(coalesce(length(answer), 0)) FROM decisions")
            ).one()
    finally:
        engine.dispose()
    out: dict[str, Any] = {
        "records": count,
        "record_bytes": round((total or 0) / max(count, 1)),
        "answer_bytes": round((answers or 0) / max(count, 1)),
    }
    if not url and path.exists():
        out["file_bytes_per_record"] = round(path.stat().st_size / max(count, 1))
    return out


def run() -> dict[str, Any]:
    """Print the report (python -m bench calls this) and return the figures."""
    result = measure()
    print(
        f"recording ({result['backend']}, {result['workers']} workers, {result['requests']} requests): "
        f"log off {result['log_off_rps']} req/s, log on {result['log_on_rps']} req/s, "
        f"ratio {result['ratio']} (target >= {TARGET}) {'OK' if result['ok'] else 'BELOW TARGET'}",
        flush=True,
    )
    per_file = result.get("file_bytes_per_record")
    ok = result["record_bytes"] <= RECORD_TARGET
    print(
        f"  stored per decision ({result['records']} records): {result['record_bytes']} B of columns, of which "
        f"{result['answer_bytes']} B the compressed answer"
        + (f"; database file {per_file} B per record" if per_file else "")
        + f" (target <= {RECORD_TARGET} B: {'met' if ok else 'NOT met'})",
        flush=True,
    )
    return result


def main() -> int:
    result = run()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
