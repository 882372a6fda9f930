"""The auditor's decision pages through HTTP (Flask's test client, SQLite): list, filters, pages, one decision,
its replay, feedback by rule, and who may see them (sign-in, bearer header, CSRF, sign-out).

Decisions are made the way clients make them: the JSON API, the web form and a CDS Hooks call (with
CDS_HOOKS_AUTH=disabled) on the CDS Hooks fixture ruleset.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app

from ..cds.helpers import bundle, condition, hook_request, patient
from .dom import Element, parse

ROOT = Path(__file__).resolve().parents[2]
CDS_DATA = ROOT / "tests" / "cds" / "data"
RULESET = "cds-fixture"
PATIENT_VIEW = f"/cds-services/{RULESET}-patient-view"
TOKEN = "auditor-token-for-the-decision-pages"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
MAN = {
    "sex": "male",
    "age": 30,
    "diagnosis": "androgenetic_alopecia",
    "pattern": "mild",
    "prior_finasteride": "not_tried",
}


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def app(tmp_path: Path, instance: Path) -> Iterator[Flask]:
    folder = tmp_path / "rulesets"
    folder.mkdir()
    for name in ("cds-fixture.yaml", "cds-fixture.fhir.yaml"):
        shutil.copy(CDS_DATA / name, folder / name)
    app = create_app(
        {
            "RULESETS_DIR": str(folder),
            "INSTANCE_PATH": str(instance),
            "CDS_HOOKS_AUTH": "disabled",
            "AUDITOR_TOKEN_HASHES": hashlib.sha256(TOKEN.encode()).hexdigest(),
            "TESTING": True,
        }
    )
    yield app
    app.extensions["decision_log"].close()


def browser(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT"] = BROWSER_ACCEPT
    return client


def page(resp: Any, status: int = 200) -> Element:
    assert resp.status_code == status, resp.get_data(as_text=True)[:3000]
    assert resp.mimetype == "text/html"
    return parse(resp.data)


def csrf_of(doc: Element) -> str:
    return doc.find("input", name="csrf_token")["value"]


def sign_in(client: FlaskClient, token: str = TOKEN, next_: str = "") -> Any:
    form = page(client.get("/decisions/sign-in" + (f"?next={next_}" if next_ else "")))
    data = {"csrf_token": csrf_of(form), "token": token}
    if next_:
        data["next"] = form.find("input", name="next")["value"]
    return client.post("/decisions/sign-in", data=data)


@pytest.fixture
def auditor(app: Flask) -> FlaskClient:
    client = browser(app)
    assert sign_in(client).status_code == 303
    return client


# ---- making decisions, as the channels do --------------------------------------------------------


def api_decision(app: Flask, profile: dict[str, Any] | None = None) -> str:
    resp = app.test_client().post("/v1/evaluations", json={"ruleset": RULESET, "profile": profile or MAN})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["decision_id"]


def web_decision(app: Flask) -> str:
    form = {"sex": "female", "age": "40", "diagnosis": "androgenetic_alopecia", "pattern": "severe"}
    doc = page(browser(app).post(f"/rulesets/{RULESET}/try", data={**form, "prior_finasteride": "not_tried"}))
    return doc.by_id("decision-id").text


def cds_decision(app: Flask) -> list[dict[str, Any]]:
    prefetch = {
        "patient": patient(gender="female", birth="1990-03-01"),
        "conditions": bundle(condition("L64.9"), condition("I50.9")),
        "medicationRequests": bundle(),
        "medicationStatements": None,
        "procedures": bundle(),
        "pregnancy": None,
        "lactation": None,
    }
    resp = app.test_client().post(PATIENT_VIEW, json=hook_request("patient-view", prefetch=prefetch))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["cards"]


def decision_id_of_card(app: Flask, card_uuid: str) -> str:
    for item in app.test_client().get("/v1/evaluations?channel=cds-hooks", headers=BEARER).get_json()["items"]:
        record = app.test_client().get(f"/v1/evaluations/{item['decision_id']}", headers=BEARER).get_json()
        if any(c["uuid"] == card_uuid for c in record["cards"]):
            return item["decision_id"]
    raise AssertionError(f"no decision issued card {card_uuid}")


@pytest.fixture
def three(app: Flask) -> dict[str, str]:
    """One decision per channel, oldest first: api, web, cds-hooks."""
    made = {"api": api_decision(app), "web": web_decision(app)}
    cards = cds_decision(app)
    made["cds-hooks"] = decision_id_of_card(app, cards[0]["uuid"])
    return made


def rows(doc: Element) -> list[str]:
    return [tr["data-decision"] for tr in doc.find_all("tr", data_decision=True)]


def field_error(doc: Element, name: str) -> str:
    return doc.by_id(f"err-{name}").text


# ---- who may see the pages -----------------------------------------------------------------------


def test_without_a_session_a_browser_is_sent_to_sign_in_and_other_clients_get_401(app: Flask) -> None:
    resp = browser(app).get("/decisions?channel=api")
    assert resp.status_code == 303
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/decisions/sign-in"
    assert parse_qs(location.query) == {"next": ["/decisions?channel=api"]}
    for path in ("/decisions", "/decisions/feedback", f"/decisions/{'0' * 8}-0000-0000-0000-{'0' * 12}"):
        resp = app.test_client().get(path, headers={"Accept": "application/json"})
        assert resp.status_code == 401 and resp.mimetype == "application/problem+json"
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="decision-log"'
    wrong = app.test_client().get("/decisions", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert browser(app).post(f"/decisions/{'1' * 8}-1111-1111-1111-{'1' * 12}/replay").status_code == 303


def test_a_bearer_header_opens_the_pages_without_a_session_or_csrf(app: Flask, three: dict[str, str]) -> None:
    client = browser(app)
    doc = page(client.get("/decisions", headers=BEARER))
    assert set(rows(doc)) == set(three.values())
    replay = page(client.post(f"/decisions/{three['api']}/replay", headers=BEARER))
    assert "identical" in replay.by_id("stored-revision").text
    assert "Set-Cookie" not in client.get("/decisions", headers=BEARER).headers  # no session for scripts


def test_sign_in_sets_a_strict_httponly_cookie_for_the_decision_pages_only(app: Flask, instance: Path) -> None:
    client = browser(app)
    resp = sign_in(client, next_="/decisions?channel=web")
    assert resp.status_code == 303 and resp.headers["Location"] == "/decisions?channel=web"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("auditor_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/decisions" in cookie
    assert "Secure" not in cookie  # plain http here
    assert page(client.get("/decisions")).find("h1").text == "Decision log"
    # The cookie is signed with a key generated into the instance folder, private to the service's user.
    key_file = instance / "session-secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) >= 32
    # Over https the cookie is Secure.
    secure = browser(app)
    form = page(secure.get("/decisions/sign-in", base_url="https://localhost"))
    resp = secure.post(
        "/decisions/sign-in", data={"csrf_token": csrf_of(form), "token": TOKEN}, base_url="https://localhost"
    )
    assert resp.status_code == 303 and "Secure" in resp.headers["Set-Cookie"]


def test_a_wrong_token_is_refused_with_the_field_named_and_no_session(app: Flask) -> None:
    client = browser(app)
    doc = page(sign_in(client, token="guess"), 401)
    assert "not an auditor token" in field_error(doc, "token")
    assert doc.by_id("f-token").get("aria-invalid") == "true"
    assert page(sign_in(client, token=""), 400).by_id("err-token").text.endswith("Enter your auditor token.")
    assert client.get("/decisions").status_code == 303


def test_a_next_address_outside_the_decision_pages_is_ignored(app: Flask) -> None:
    for target in ("https://evil.example/decisions", "//evil.example/decisions", "/rulesets"):
        client = browser(app)
        form = page(client.get("/decisions/sign-in"))
        resp = client.post("/decisions/sign-in", data={"csrf_token": csrf_of(form), "token": TOKEN, "next": target})
        assert resp.status_code == 303 and resp.headers["Location"] == "/decisions"


def test_forms_without_the_sessions_csrf_token_are_refused(auditor: FlaskClient, three: dict[str, str]) -> None:
    replay = f"/decisions/{three['api']}/replay"
    assert page(auditor.post(replay), 403).find("h1").text == "Form refused"
    assert auditor.post(replay, data={"csrf_token": "forged"}).status_code == 403
    assert auditor.post("/decisions/sign-out", data={"csrf_token": "forged"}).status_code == 403
    assert auditor.get("/decisions").status_code == 200  # still signed in
    # Sign-in itself needs the token of the form it was shown (no login CSRF).
    stranger = browser(auditor.application)
    assert stranger.post("/decisions/sign-in", data={"token": TOKEN}).status_code == 403


def test_sign_out_ends_the_session(auditor: FlaskClient) -> None:
    csrf = csrf_of(page(auditor.get("/decisions")))
    resp = auditor.post("/decisions/sign-out", data={"csrf_token": csrf})
    assert resp.status_code == 303 and resp.headers["Location"] == "/decisions/sign-in?signed_out=1"
    assert "You are signed out." in page(auditor.get(resp.headers["Location"])).text
    assert auditor.get("/decisions").status_code == 303
    # The old form's token is worth nothing now.
    assert auditor.post("/decisions/sign-out", data={"csrf_token": csrf}).status_code == 303


def test_sign_out_revokes_a_copied_cookie_in_every_worker(app: Flask, instance: Path) -> None:
    auditor = browser(app)
    assert sign_in(auditor).status_code == 303
    cookie = auditor.get_cookie("auditor_session", path="/decisions")
    assert cookie is not None
    copy = browser(app)  # the same cookie, copied out of the browser
    copy.set_cookie("auditor_session", cookie.value, path="/decisions")
    other_worker = create_app(dict(app.config))  # another process serving the same database and key
    elsewhere = browser(other_worker)
    elsewhere.set_cookie("auditor_session", cookie.value, path="/decisions")
    assert copy.get("/decisions").status_code == 200 and elsewhere.get("/decisions").status_code == 200

    csrf = csrf_of(page(auditor.get("/decisions")))
    assert auditor.post("/decisions/sign-out", data={"csrf_token": csrf}).status_code == 303
    assert copy.get("/decisions").status_code == 303  # sent to sign in: the session is over
    assert elsewhere.get("/decisions").status_code == 303


def test_revoking_the_token_ends_its_sessions(auditor: FlaskClient) -> None:
    auditor.application.config["AUDITOR_TOKEN_HASHES"] = hashlib.sha256(b"another token").hexdigest()
    assert auditor.get("/decisions").status_code == 303


# ---- the list ------------------------------------------------------------------------------------


def test_the_list_shows_every_channel_newest_first(auditor: FlaskClient, three: dict[str, str]) -> None:
    doc = page(auditor.get("/decisions"))
    assert rows(doc) == [three["cds-hooks"], three["web"], three["api"]]
    row = doc.find("tr", data_decision=three["cds-hooks"])
    cells = [td.text for td in row.find_all("td")]
    assert cells[1] == "cds-hooks" and cells[2] == "cds-fixture 1.2.0"
    assert cells[3] == "topical_minoxidil spironolactone" and cells[4] == "oral_finasteride oral_minoxidil"
    assert cells[5] == "none"
    assert row.find("a")["href"] == f"/decisions/{three['cds-hooks']}"
    nav = doc.find("nav", aria_label="Main")
    assert nav.find("a", href="/decisions").get("aria-current") == "page"


def test_filters_have_the_json_lists_meaning(auditor: FlaskClient, three: dict[str, str]) -> None:
    assert rows(page(auditor.get("/decisions?channel=web"))) == [three["web"]]
    excluded = "/decisions?option=oral_finasteride&role=excluded&ruleset=cds-fixture&channel=&since=&until="
    assert rows(page(auditor.get(excluded))) == [three["cds-hooks"], three["web"]]  # empty boxes are no filter
    assert rows(page(auditor.get("/decisions?option=oral_finasteride&role=candidate"))) == [three["api"]]
    assert rows(page(auditor.get("/decisions?since=2000-01-01&until=2999-01-01"))) == list(reversed(three.values()))
    doc = page(auditor.get("/decisions?since=2999-01-01"))
    assert rows(doc) == [] and doc.find(class_="empty").text == "No decision matches these filters."
    form = doc.find("form", role="search")
    assert form.find("input", name="since")["value"] == "2999-01-01"


def test_bad_filters_are_shown_next_to_their_fields_with_what_they_accept(auditor: FlaskClient) -> None:
    api_decision(auditor.application)
    doc = page(auditor.get("/decisions?ruleset=nope&since=yesterday&role=excluded&colour=red"), 400)
    assert "no decisions were made with ruleset nope" in field_error(doc, "ruleset")
    assert "Allowed: cds-fixture." in field_error(doc, "ruleset")
    assert "must be a date" in field_error(doc, "since")
    assert "role narrows option: give option too" in field_error(doc, "role")
    assert "unknown parameter" in field_error(doc, "colour")
    summary = doc.find(class_="error-summary")
    assert [a["href"] for a in summary.find_all("a")] == ["#q-ruleset", "#q-role", "#q-since"]
    assert doc.by_id("q-since").get("aria-invalid") == "true"
    assert page(auditor.get("/decisions?cursor=bogus"), 400).by_id("err-cursor")
    assert page(auditor.get("/decisions?format=csv"), 400).by_id("err-format")


def test_older_and_newer_pages(auditor: FlaskClient, three: dict[str, str]) -> None:
    newest_first = [three["cds-hooks"], three["web"], three["api"]]
    first = page(auditor.get("/decisions?limit=1"))
    assert rows(first) == newest_first[:1] and not first.find_all("a", rel="prev")
    second = page(auditor.get(first.find("a", rel="next")["href"]))
    assert rows(second) == newest_first[1:2]
    third = page(auditor.get(second.find("a", rel="next")["href"]))
    assert rows(third) == newest_first[2:] and not third.find_all("a", rel="next")
    back = page(auditor.get(third.find("a", rel="prev")["href"]))
    assert rows(back) == newest_first[1:2]
    assert rows(page(auditor.get(back.find("a", rel="prev")["href"]))) == newest_first[:1]
    # Filters travel with the cursor; a cursor with other filters is refused.
    filtered = page(auditor.get("/decisions?limit=1&ruleset=cds-fixture"))
    link = filtered.find("a", rel="next")["href"]
    assert "ruleset=cds-fixture" in link
    cursor = parse_qs(urlsplit(link).query)["cursor"][0]
    assert page(auditor.get(f"/decisions?limit=1&channel=api&cursor={cursor}"), 400).by_id("err-cursor")


# ---- one decision and its replay -----------------------------------------------------------------


def test_a_cds_hooks_decision_in_full(auditor: FlaskClient, app: Flask) -> None:
    cards = cds_decision(app)
    decision_id = decision_id_of_card(app, cards[0]["uuid"])
    record = app.test_client().get(f"/v1/evaluations/{decision_id}", headers=BEARER).get_json()

    doc = page(auditor.get(f"/decisions/{decision_id}"))

    facts = {dt.text: dd.text for dt, dd in zip(doc.find_all("dt"), doc.find_all("dd"), strict=True)}
    assert facts["Sex"] == "Female" and facts["Age"] == "36 years" and facts["Relevant conditions"] == "Heart failure"
    assert facts["Channel"] == "cds-hooks" and facts["Position in the chain"] == f"seq {record['chain']['seq']}"
    assert doc.by_id("chain-hash").text == record["chain"]["hash"]
    assert "Extent of hair loss" in doc.find(class_="not-recorded").text
    assert [li["data-option"] for li in doc.by_id("candidates-title").parent.find_all("li", data_option=True)] == [
        "topical_minoxidil",
        "spironolactone",
    ]
    excluded = doc.find("li", data_option="oral_minoxidil")
    assert "Heart failure <contraindicates> oral minoxidil. (H-heart)" in excluded.text  # escaped, not markup
    fired = doc.find("ul", class_="fired-rules")
    links = {a.text: a["href"] for a in fired.find_all("a")}
    assert links == {rid: f"/rulesets/cds-fixture#rule-{rid}" for rid in record["fired_rules"]}
    ruleset_page = page(auditor.get("/rulesets/cds-fixture"))
    for rid in record["fired_rules"]:
        assert ruleset_page.by_id(f"rule-{rid}")  # the anchors exist
    assert [tr["data-card"] for tr in doc.find_all("tr", data_card=True)] == [c["uuid"] for c in cards]
    assert doc.find("form", action=f"/decisions/{decision_id}/replay").find("input", name="csrf_token")


def test_a_decision_not_in_the_log_is_404(auditor: FlaskClient) -> None:
    assert page(auditor.get("/decisions/6f1c1e2a-3f0e-4b8e-9d57-0d1f6a1b2c3d"), 404).find("h1").text == (
        "No such decision"
    )
    assert auditor.get("/decisions/not-a-uuid").status_code == 404
    resp = auditor.application.test_client().get("/decisions/not-a-uuid", headers=BEARER)
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("channel", ["api", "web", "cds-hooks"])
def test_replay_of_each_channels_decision_is_identical(
    auditor: FlaskClient, three: dict[str, str], channel: str
) -> None:
    decision_id = three[channel]
    detail = page(auditor.get(f"/decisions/{decision_id}"))
    doc = page(auditor.post(f"/decisions/{decision_id}/replay", data={"csrf_token": csrf_of(detail)}))
    for section in ("stored-revision", "current-revision"):
        verdict = doc.by_id(section).find("p", class_="verdict-line").text
        assert verdict.startswith("identical"), verdict
    assert auditor.get(f"/decisions/{decision_id}/replay").status_code == 405


# ---- feedback by rule ----------------------------------------------------------------------------


def test_feedback_counts_per_rule_with_override_reasons(auditor: FlaskClient, app: Flask) -> None:
    first, second = cds_decision(app), cds_decision(app)
    reason = {"system": first[0]["overrideReasons"][0]["system"], "code": first[0]["overrideReasons"][0]["code"]}
    feedback = [
        {
            "card": first[0]["uuid"],
            # A patient-view card offers no suggestions, so there is nothing to accept (issue 13): the
            # clinician can only override it.
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-22T10:00:00Z",
        },
        {
            "card": second[0]["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": reason, "userComment": "Prefers foam"},
            "outcomeTimestamp": "2026-11-22T10:05:00Z",
        },
        {"card": second[1]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:06:00Z"},
    ]
    resp = app.test_client().post(PATIENT_VIEW + "/feedback", json={"feedback": feedback})
    assert resp.status_code == 200, resp.get_data(as_text=True)

    doc = page(auditor.get("/decisions/feedback"))

    row = doc.find("tr", data_rule="cds-fixture/R-woman")
    assert row.find(data_count="accepted").text == "0" and row.find(data_count="overridden").text == "2"
    assert f"({reason['code']}): 1" in row.text
    assert row.find("a")["href"] == "/rulesets/cds-fixture#rule-R-woman"
    # The "not suitable" card names one option (the sex-only exclusion is no patient-view card since
    # issue 13), so its feedback counts for the rule behind that exclusion.
    heart = doc.find("tr", data_rule="cds-fixture/H-heart")
    assert heart.find(data_count="overridden").text == "1" and "no reason given: 1" in heart.text
    assert page(auditor.get("/decisions/feedback?ruleset=nope"), 400).by_id("err-ruleset")
    # The decision page shows the feedback on its card, with the clinician's comment.
    detail = page(auditor.get(f"/decisions/{decision_id_of_card(app, second[0]['uuid'])}"))
    card_row = detail.find("tr", data_card=second[0]["uuid"])
    assert "overridden" in card_row.text and "Prefers foam" in card_row.text


def test_a_next_address_with_a_line_break_is_ignored_not_a_500(app: Flask) -> None:
    """A CRLF in `next` would have been a Location header with a line break in it (issue 16, item 7)."""
    client = browser(app)
    page(client.get("/decisions/sign-in?next=/decisions%0d%0aSet-Cookie:%20x=1"))
    for target in ("/decisions\r\nSet-Cookie: x=1", "/decisions?q=1\nX: y"):
        form = page(client.get("/decisions/sign-in"))
        resp = client.post("/decisions/sign-in", data={"csrf_token": csrf_of(form), "token": TOKEN, "next": target})
        assert resp.status_code == 303 and resp.headers["Location"] == "/decisions"
