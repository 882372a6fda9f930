"""Publishing runs the whole gate and stores the revision; stages, activation, rollback, testing revisions, actions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from service.lifecycle import read_fileset

from .conftest import ADMIN, ADMIN_TOKEN, AUDITOR, PROFILE, RULESET_ID, example, raw_sql, unguard, write

V2_CAVEAT = "Monitor for oedema and dizziness."


def v2(text: str) -> str:
    return text.replace("Monitor for oedema.", V2_CAVEAT)


def test_the_folder_is_published_at_start_and_is_production(app: Flask) -> None:
    lifecycle = app.extensions["lifecycle"]
    serving = app.extensions["registry"].get(RULESET_ID).ruleset
    [revision] = lifecycle.store.revisions(RULESET_ID)
    assert (revision.sha256, revision.stage, revision.gate_ok) == (serving.sha256, "production", True)
    assert revision.gate_report["verification"]["tests"]  # the gate report is stored with it
    [publish, activate] = lifecycle.store.actions(RULESET_ID)
    assert (publish["action"], activate["action"]) == ("publish", "activate")
    assert activate["actor"] == "startup (RULESETS_DIR)"


def test_cli_publish_stores_a_draft_with_its_sibling_files(app: Flask, tmp_path: Path) -> None:
    path = write(tmp_path / "candidate", example("0.2.0", v2))
    (tmp_path / "candidate" / "minimal.tests.yaml").write_text(
        "tests:\n  - name: extra adult\n    profile: {age: 50, diagnosis: confirmed, pregnant: false}\n"
        "    expect: {candidates: [topical, oral]}\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["rulesets", "publish", str(path), "--by", "alice"])
    assert result.exit_code == 0, result.output
    sha = read_fileset(path).sha256
    assert f"format-example 0.2.0 {sha} (stage draft)" in result.output
    stored = app.extensions["lifecycle"].store.get(sha)
    assert stored.stage == "draft" and stored.gate_ok
    assert "extra adult" in stored.files.tests_text
    assert [t["name"] for t in stored.gate_report["verification"]["tests"]][-1] == "extra adult"
    assert app.extensions["lifecycle"].store.actions(RULESET_ID)[-1]["actor"] == "alice (cli)"
    # a draft is not served
    assert app.extensions["registry"].get(RULESET_ID).ruleset.version == "0.1.0"


def test_a_failing_revision_is_stored_refused_and_cannot_be_activated(app: Flask, tmp_path: Path) -> None:
    broken = example("0.3.0", lambda t: t.replace("candidates: [topical, oral]", "candidates: [oral]"))
    path = write(tmp_path / "broken", broken)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rulesets", "publish", str(path)])
    assert result.exit_code == 1
    assert "test 'adult confirmed, not pregnant' failed" in result.output
    sha = read_fileset(path).sha256
    assert app.extensions["lifecycle"].store.get(sha).gate_ok is False
    result = runner.invoke(args=["rulesets", "activate", RULESET_ID, sha])
    assert result.exit_code == 1 and "failed the activation gate" in result.output
    assert app.extensions["lifecycle"].store.production()[RULESET_ID] != sha


def test_admin_endpoints_need_an_admin_token(app: Flask) -> None:
    client = app.test_client()
    body = {"ruleset": example("0.2.0", v2), "file_name": "minimal.yaml"}
    assert client.post("/v1/admin/rulesets", json=body).status_code == 401
    assert client.post("/v1/admin/rulesets", json=body, headers=AUDITOR).status_code == 403  # not an admin
    assert client.post(f"/v1/admin/rulesets/{RULESET_ID}/rollback", headers=AUDITOR).status_code == 403
    assert client.get(f"/v1/rulesets/{RULESET_ID}/status").status_code == 401
    assert client.get(f"/v1/rulesets/{RULESET_ID}/status", headers=AUDITOR).status_code == 200
    assert client.get(f"/v1/rulesets/{RULESET_ID}/shadow", headers=ADMIN).status_code == 200
    wrong = client.post("/v1/admin/rulesets", json=body, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    refused = client.post(f"/v1/admin/rulesets/{RULESET_ID}/rollback", headers=AUDITOR)
    assert refused.json["detail"] == "This credential does not hold the `admin` role this needs."
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]


def test_publish_activate_testing_and_rollback_over_http(app: Flask) -> None:
    client = app.test_client()
    lifecycle = app.extensions["lifecycle"]
    old = app.extensions["registry"].get(RULESET_ID).ruleset.sha256
    resp = client.post(
        "/v1/admin/rulesets",
        json={"ruleset": example("0.2.0", v2), "file_name": "minimal.yaml", "by": "Dr Rao"},
        headers=ADMIN,
    )
    assert resp.status_code == 201, resp.json
    new = resp.json["sha256"]
    assert resp.json["stage"] == "draft" and resp.json["gate"]["ok"] is True

    # testing: evaluable when named, marked in the answer; the default stays production
    resp = client.post(
        f"/v1/admin/rulesets/{RULESET_ID}/activate", json={"sha256": new, "stage": "testing"}, headers=ADMIN
    )
    assert resp.status_code == 200 and resp.json["stage"] == "testing"
    lifecycle.sync()
    profile = {**PROFILE, "pregnant": False, "conditions": ["heart_failure"]}
    named = client.post("/v1/evaluations", json={"ruleset": f"{RULESET_ID}@0.2.0", "profile": profile}).json
    assert named["ruleset"] == {"id": RULESET_ID, "version": "0.2.0", "sha256": new, "stage": "testing"}
    assert V2_CAVEAT in str(named["candidates"])
    by_sha = client.post("/v1/evaluations", json={"ruleset": new, "profile": profile}).json
    assert by_sha["ruleset"]["stage"] == "testing"
    default = client.post("/v1/evaluations", json={"profile": profile}).json
    assert default["ruleset"]["sha256"] == old and "stage" not in default["ruleset"]
    # the form evaluates it too when named, and says it is a testing revision
    form = client.get(f"/rulesets/{RULESET_ID}@0.2.0/try").get_data(as_text=True)
    assert "Testing revision." in form and f'action="/rulesets/{RULESET_ID}@0.2.0/try"' in form
    page = client.get(
        f"/rulesets/{RULESET_ID}@0.2.0/answer?age=40&diagnosis=confirmed&pregnant=false&conditions=heart_failure"
    )
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    assert "Testing revision." in page.get_data(as_text=True) and V2_CAVEAT in page.get_data(as_text=True)
    assert "Testing revision." not in client.get(f"/rulesets/{RULESET_ID}/try").get_data(as_text=True)

    # production: swapped in on sync; the old one is retired
    resp = client.post(f"/v1/admin/rulesets/{RULESET_ID}/activate", json={"sha256": new}, headers=ADMIN)
    assert resp.status_code == 200 and resp.json["stage"] == "production"
    lifecycle.sync()
    assert client.post("/v1/evaluations", json={"profile": profile}).json["ruleset"]["sha256"] == new
    assert lifecycle.store.get(old).stage == "retired"
    assert client.get("/v1/rulesets").json["rulesets"][0]["sha256"] == new

    resp = client.post(f"/v1/admin/rulesets/{RULESET_ID}/rollback", headers=ADMIN)
    assert resp.status_code == 200 and resp.json["sha256"] == old
    lifecycle.sync()
    assert client.post("/v1/evaluations", json={"profile": profile}).json["ruleset"]["sha256"] == old
    resp = client.post(f"/v1/admin/rulesets/{RULESET_ID}/rollback", headers=ADMIN)
    assert resp.status_code == 409  # nothing earlier than the first production revision

    status = client.get(f"/v1/rulesets/{RULESET_ID}/status", headers=ADMIN).json
    assert status["production"] == old
    actions = [(a["action"], a["sha256"], a["actor"]) for a in status["actions"]]
    admin = f"admin {hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:12]}"
    assert actions[-4:] == [
        ("publish", new, f"Dr Rao ({admin})"),
        ("activate", new, admin),
        ("activate", new, admin),
        ("rollback", old, admin),
    ]


def test_unknown_revision_and_stage_are_clear_4xx(app: Flask) -> None:
    client = app.test_client()
    resp = client.post(f"/v1/admin/rulesets/{RULESET_ID}/activate", json={"sha256": "0" * 64}, headers=ADMIN)
    assert resp.status_code == 404 and "no published revision" in resp.json["detail"]
    resp = client.post(
        f"/v1/admin/rulesets/{RULESET_ID}/activate", json={"sha256": "x", "stage": "live"}, headers=ADMIN
    )
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "stage"
    resp = client.post("/v1/admin/rulesets", json={"ruleset": "id: [", "file_name": "x.yaml"}, headers=ADMIN)
    assert resp.status_code == 422 and resp.json["gate"]["ok"] is False


def test_hostile_publish_bodies_are_4xx_not_500(app: Flask) -> None:
    """Found by the OpenAPI fuzz test: a control character in the text, the same sign-off listed twice."""
    client = app.test_client()
    resp = client.post("/v1/admin/rulesets", json={"ruleset": "id: a\x13b", "file_name": "x.yaml"}, headers=ADMIN)
    assert resp.status_code == 422 and resp.json["gate"]["ok"] is False
    assert "#x0013" in resp.json["gate"]["problems"][0]
    twice = {"ruleset": "docs", "file_name": "y.yaml", "signatures": ["", ""]}
    resp = client.post("/v1/admin/rulesets", json=twice, headers=ADMIN)
    assert resp.status_code == 422 and resp.json["gate"]["ok"] is False, resp.get_data(as_text=True)


def test_lifecycle_actions_are_hash_chained(app: Flask, database_url: str) -> None:
    client = app.test_client()
    client.post(
        "/v1/admin/rulesets", json={"ruleset": example("0.2.0", v2), "file_name": "minimal.yaml"}, headers=ADMIN
    )
    store = app.extensions["lifecycle"].store
    assert store.verify_chain() == []
    result = app.test_cli_runner().invoke(args=["rulesets", "history", "--verify"])
    assert result.exit_code == 0 and "actions chain intact" in result.output
    raw_sql(
        database_url,
        *unguard(database_url, "lifecycle_actions"),
        "UPDATE lifecycle_actions SET actor = 'someone else' WHERE seq = 3",
    )
    assert store.verify_chain() == ["action 3 was altered after it was recorded"]
    result = app.test_cli_runner().invoke(args=["rulesets", "history", "--verify"])
    assert result.exit_code == 1


def test_a_worker_refuses_an_altered_revision_and_keeps_the_last_good_one(app: Flask, database_url: str) -> None:
    client = app.test_client()
    lifecycle = app.extensions["lifecycle"]
    old = app.extensions["registry"].get(RULESET_ID).ruleset.sha256
    new = client.post(
        "/v1/admin/rulesets", json={"ruleset": example("0.2.0", v2), "file_name": "minimal.yaml"}, headers=ADMIN
    ).json["sha256"]
    # someone with database access changes the stored text after the gate passed it
    raw_sql(
        database_url,
        *unguard(database_url, "ruleset_releases"),
        f"UPDATE ruleset_releases SET source_text = source_text || '# edited' WHERE sha256 = '{new}'",
    )
    assert (
        client.post(f"/v1/admin/rulesets/{RULESET_ID}/activate", json={"sha256": new}, headers=ADMIN).status_code == 200
    )
    lifecycle.sync()
    assert app.extensions["registry"].get(RULESET_ID).ruleset.sha256 == old  # still serving the good one
    ready = client.get("/readyz").json
    [refusal] = ready["lifecycle"]["refusals"]
    assert refusal["refused_sha256"] == new and refusal["serving_sha256"] == old
    assert "altered" in refusal["reason"]
    status = client.get(f"/v1/rulesets/{RULESET_ID}/status", headers=AUDITOR).json
    assert [w["refused_sha256"] for w in status["workers"]] == [new]


def test_guessing_admin_tokens_is_limited(make_app: Callable[..., Flask]) -> None:
    """The admin endpoints count refused credentials per address like every channel that checks tokens."""
    client = make_app(RATE_LIMIT_AUTH_FAILURES="3/minute").test_client()
    guesses = [
        client.post(f"/v1/admin/rulesets/{RULESET_ID}/rollback", headers={"Authorization": f"Bearer guess-{i}"})
        for i in range(4)
    ]
    assert [r.status_code for r in guesses] == [401, 401, 401, 429]
    assert client.get(f"/v1/rulesets/{RULESET_ID}/status", headers=AUDITOR).status_code == 429  # locked out
