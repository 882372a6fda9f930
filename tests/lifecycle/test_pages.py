"""Auditor pages of the lifecycle (under /decisions, so the auditor session or token applies): revisions, diff, impact, shadow."""

from __future__ import annotations

from flask import Flask

from .conftest import ADMIN, AUDITOR, PROFILE, RULESET_ID, example


def stricter(text: str) -> str:
    return text.replace("- {field: age, at_least: 18}", "- {field: age, at_least: 21}").replace(
        "- {field: age, below: 18}", "- {field: age, below: 21}"
    )


def test_revisions_diff_impact_and_shadow_pages(app: Flask) -> None:
    client = app.test_client()
    old = app.extensions["registry"].get(RULESET_ID).ruleset.sha256
    for age in (19, 19, 30):
        assert client.post("/v1/evaluations", json={"profile": {**PROFILE, "age": age}}).status_code == 200
    new = client.post(
        "/v1/admin/rulesets", json={"ruleset": example("0.2.0", stricter), "file_name": "minimal.yaml"}, headers=ADMIN
    ).json["sha256"]

    assert client.get(f"/decisions/rulesets/{RULESET_ID}").status_code == 401  # no token, not signed in
    assert client.get(f"/decisions/rulesets/{RULESET_ID}", headers={"Accept": "text/html"}).status_code == 303
    page = client.get(f"/decisions/rulesets/{RULESET_ID}", headers=AUDITOR).get_data(as_text=True)
    assert f'id="rev-{new[:12]}"' in page and "draft" in page and "startup (RULESETS_DIR)" in page
    assert f"/decisions/rulesets/{RULESET_ID}/diff?old={old}&amp;new={new}" in page

    page = client.get(f"/decisions/rulesets/{RULESET_ID}/diff?old={old}&new={new}", headers=AUDITOR)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="rules-adult-confirmed"' in html and "Age is at least 21 years" in html and "0.1.0 → 0.2.0" in html

    html = client.get(f"/decisions/rulesets/{RULESET_ID}/impact?candidate={new}", headers=AUDITOR).get_data(
        as_text=True
    )
    text = " ".join(html.split())
    assert "3 logged decision(s)" in text, text
    assert "Topical treatment no longer a candidate: 2 decision(s)" in text, text

    future = client.get(
        f"/decisions/rulesets/{RULESET_ID}/impact?candidate={new}&since=2999-01-01T00:00:00%2B02:00&limit=-5",
        headers=AUDITOR,
    )
    text = " ".join(future.get_data(as_text=True).split())
    assert future.status_code == 200 and "since 2998-12-31 · the newest 1 decisions at most" in text, text
    assert "0 logged decision(s)" in text
    bad = client.get(f"/decisions/rulesets/{RULESET_ID}/impact?candidate={new}&since=soon", headers=AUDITOR)
    assert bad.status_code == 400

    html = client.get(f"/decisions/rulesets/{RULESET_ID}/shadow", headers=AUDITOR).get_data(as_text=True)
    assert "No divergence recorded." in html
    assert client.get(f"/decisions/rulesets/{RULESET_ID}/diff?old=nope", headers=AUDITOR).status_code == 404
