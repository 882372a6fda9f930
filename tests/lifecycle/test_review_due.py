"""Past `review_due`, every answer and /readyz say "review overdue" - and the ruleset keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask

from .conftest import PROFILE, example, write


def overdue(text: str) -> str:
    return text.replace("effective: 2026-11-22", "effective: 2025-01-01").replace(
        "review_due: 2027-11-22", "review_due: 2026-01-31"
    )


def test_an_overdue_ruleset_says_so_and_keeps_serving(make_app: Callable[..., Flask], ruleset_dir: Path) -> None:
    write(ruleset_dir, example("0.1.0", overdue))
    client = make_app().test_client()
    resp = client.post("/v1/evaluations", json={"profile": PROFILE})
    assert resp.status_code == 200
    [warning] = [w for w in resp.json["warnings"] if w["kind"] == "review_overdue"]
    assert warning["text"] == "Review overdue: this ruleset was due for review on 2026-01-31."
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["warnings"] == ["review overdue: format-example 0.1.0 was due on 2026-01-31"]
    assert "overdue" in client.get("/rulesets/format-example").get_data(as_text=True)


def test_a_current_ruleset_has_no_such_warning(app: Flask) -> None:
    client = app.test_client()
    resp = client.post("/v1/evaluations", json={"profile": PROFILE})
    assert all(w["kind"] != "review_overdue" for w in resp.json["warnings"])
    assert "warnings" not in client.get("/readyz").json
