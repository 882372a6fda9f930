"""Shadow mode: live decisions are evaluated again with a testing revision; divergences counted, answers unchanged."""

from __future__ import annotations

from flask import Flask
from prometheus_client import REGISTRY

from .conftest import ADMIN, AUDITOR, RULESET_ID, example


def stricter(text: str) -> str:
    """Adults from 21 (so a 19-year-old gets a referral instead of topical and oral)."""
    return text.replace("- {field: age, at_least: 18}", "- {field: age, at_least: 21}").replace(
        "- {field: age, below: 18}", "- {field: age, below: 21}"
    )


def test_shadow_divergence_is_counted_without_changing_answers(app: Flask) -> None:
    client = app.test_client()
    lifecycle = app.extensions["lifecycle"]
    production = app.extensions["registry"].get(RULESET_ID).ruleset.sha256
    sha = client.post(
        "/v1/admin/rulesets", json={"ruleset": example("0.2.0", stricter), "file_name": "minimal.yaml"}, headers=ADMIN
    ).json["sha256"]
    assert (
        client.post(f"/v1/admin/rulesets/{RULESET_ID}/shadow", json={"sha256": sha}, headers=ADMIN).status_code == 422
    )
    client.post(f"/v1/admin/rulesets/{RULESET_ID}/activate", json={"sha256": sha, "stage": "testing"}, headers=ADMIN)
    resp = client.post(f"/v1/admin/rulesets/{RULESET_ID}/shadow", json={"sha256": sha, "by": "Dr Rao"}, headers=ADMIN)
    assert resp.status_code == 200 and resp.json["shadow"] == sha
    lifecycle.sync()
    before = (
        REGISTRY.get_sample_value(
            "ruleset_shadow_divergences_total", {"ruleset": RULESET_ID, "kind": "Oral treatment no longer a candidate"}
        )
        or 0.0
    )

    young = {"age": 19, "diagnosis": "confirmed", "pregnant": False}
    adult = {"age": 30, "diagnosis": "confirmed", "pregnant": False}
    answers = [client.post("/v1/evaluations", json={"profile": p}).json for p in (young, adult, young)]
    lifecycle.shadow.drain()
    # the answers are production's, unchanged by the shadow
    assert all(a["ruleset"]["sha256"] == production for a in answers)
    assert [c["option"] for c in answers[0]["candidates"]] == ["topical", "oral"]

    report = client.get(f"/v1/rulesets/{RULESET_ID}/shadow", headers=AUDITOR).json
    assert report["shadow"] == sha and report["diverged_decisions"] == 2
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert set(kinds) == {
        "Topical treatment no longer a candidate",
        "Oral treatment no longer a candidate",
        "Diagnosis review newly a referral",
    }
    assert sorted(kinds["Oral treatment no longer a candidate"]["decision_ids"]) == sorted(
        [answers[0]["decision_id"], answers[2]["decision_id"]]
    )
    after = REGISTRY.get_sample_value(
        "ruleset_shadow_divergences_total", {"ruleset": RULESET_ID, "kind": "Oral treatment no longer a candidate"}
    )
    assert after == before + 2

    assert client.post(f"/v1/admin/rulesets/{RULESET_ID}/shadow", json={"sha256": None}, headers=ADMIN).json == {
        "ruleset_id": RULESET_ID,
        "shadow": None,
    }
    lifecycle.sync()
    client.post("/v1/evaluations", json={"profile": young})
    lifecycle.shadow.drain()
    assert client.get(f"/v1/rulesets/{RULESET_ID}/shadow", headers=AUDITOR).json["diverged_decisions"] == 2
    assert client.get(f"/v1/rulesets/{RULESET_ID}/shadow").status_code == 401
