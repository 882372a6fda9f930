"""Several OS processes (like gunicorn workers) starting on a fresh database and appending at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from service import create_app
from service.answering import make_decision

from .conftest import HMAC_KEY, PROFILE, raw_sql, verify_database

PROCESSES = 4
EACH = 40


def append_many(settings: dict[str, Any], start: Any, out: Any) -> None:
    """One worker: start the app (which migrates the shared database), wait for the others, then append.

    Reports ("ok", decision ids) or ("error", what went wrong), so the test fails fast instead of waiting.
    """
    try:
        app = create_app(settings)
        registry, log = app.extensions["registry"], app.extensions["decision_log"]
        try:
            start.wait(timeout=120)
            ids = [
                make_decision(registry, None, {**PROFILE, "age": 18 + n}, channel="api", recorder=log)["decision_id"]
                for n in range(EACH)
            ]
        finally:
            log.close()
    except BaseException as exc:
        start.abort()
        out.put(("error", f"{type(exc).__name__}: {exc}"))
        raise
    out.put(("ok", ids))


@pytest.mark.slow
def test_concurrent_appends_from_several_processes_form_one_chain(
    database_url: str, ruleset_dir: Path, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(PROCESSES), ctx.Queue()
    settings = {
        "RULESETS_DIR": str(ruleset_dir),
        "DATABASE_URL": database_url,
        "DECISION_HMAC_KEY": HMAC_KEY,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    workers = [ctx.Process(target=append_many, args=(settings, start, out)) for _ in range(PROCESSES)]
    for w in workers:
        w.start()
    try:
        reports = [out.get(timeout=300) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=60)
            if w.is_alive():
                w.kill()
    errors = [what for status, what in reports if status == "error"]
    assert not errors
    answered = [decision_id for _, ids in reports for decision_id in ids]

    report = verify_database(database_url)
    assert report.ok, report.problems
    assert report.counts["decisions"] == PROCESSES * EACH
    [rows] = raw_sql(database_url, "SELECT seq, decision_id FROM decisions ORDER BY seq")
    assert [seq for seq, _ in rows] == list(range(1, PROCESSES * EACH + 1))
    assert sorted(decision_id for _, decision_id in rows) == sorted(answered)
