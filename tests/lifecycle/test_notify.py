"""PostgreSQL LISTEN/NOTIFY: an action wakes another replica's follower at once, long before its next poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from service.lifecycle import read_fileset

from .conftest import RULESET_ID, example, write


def _eventually(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_notification_wakes_the_other_replica(
    make_app: Callable[..., Flask], database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("NOTIFY is PostgreSQL's; on SQLite (one instance) the follower polls")
    admin_side = make_app()
    replica = make_app(LIFECYCLE_POLL_SECONDS=3600)  # it would not poll again within this test
    follower = replica.extensions["lifecycle"]
    follower.follow()
    # its first sync reports what it serves; it listens from before that sync
    assert _eventually(lambda: bool(follower.store.worker_status(RULESET_ID)))

    path = write(tmp_path / "next", example("0.2.0"))
    runner = admin_side.test_cli_runner()
    assert runner.invoke(args=["rulesets", "publish", str(path)]).exit_code == 0
    sha = read_fileset(path).sha256
    assert runner.invoke(args=["rulesets", "activate", RULESET_ID, sha]).exit_code == 0
    assert _eventually(lambda: replica.extensions["registry"].get(RULESET_ID).ruleset.sha256 == sha)
