"""The web pages through HTTP (Flask's test client): the generated form, answers, errors, auditor pages."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.engine.answer import Decision, to_json
from service.ruleset import load_file

from .conftest import decisions_table_missing
from .dom import Element, parse

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "pages" / "form-sample.yaml"
EXAMPLE = ROOT / "rulesets" / "examples" / "minimal.yaml"

MAN_AFTER_FINASTERIDE = {
    "sex": "male",
    "age": "34",
    "diagnosis": "androgenetic_alopecia",
    "family_history": "true",
    "prior_finasteride": "non_responder",
    "pregnant": "",
    "conditions": "heart_failure",
}


class MemoryRecorder:
    """Stands in for the decision log (being built on another branch) through `decide.Recorder`."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(self, decision: Decision, *, channel: str, profile: dict[str, Any], **extra: Any) -> None:
        # Stored as JSON, like the decision log stores it.
        self.records.append({"decision": to_json(decision), "channel": channel, "profile": profile, **extra})

    def record_feedback(self, service_id: str, items: list[dict[str, Any]]) -> None:
        raise AssertionError("the web pages never send feedback")


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what Chromium sends


def make_app(folder: Path, **config: Any) -> Flask:
    return create_app({"RULESETS_DIR": str(folder), "TESTING": True, **config})


def browser(app: Flask) -> FlaskClient:
    """A client that asks for pages the way a browser does."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT"] = BROWSER_ACCEPT
    return client


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(SAMPLE, tmp_path / SAMPLE.name)
    return tmp_path


@pytest.fixture
def app(folder: Path) -> Flask:
    return make_app(folder)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return browser(app)


def page(response: Any, status: int = 200) -> Element:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    return parse(response.data)


def options_in(doc: Element, section_id: str) -> list[str]:
    section = doc.by_id(section_id).parent
    assert section is not None
    return [el["data-option"] for el in section.find_all(data_option=True)]


def field_errors(doc: Element) -> dict[str, str]:
    return {el["id"].removeprefix("err-"): el.text for el in doc.find_all("p", class_="error-message")}


# ---- the generated form ----------------------------------------------------------------------


def test_form_has_one_control_per_input_grouped_under_the_ruleset_headings(client: FlaskClient) -> None:
    doc = page(client.get("/"))
    rs = load_file(SAMPLE)
    groups = [legend.text for legend in doc.find_all("legend") if legend.find_all("h2")]
    assert groups == [heading for _, heading in rs.groups] + ["Other facts"]
    form = doc.find("form", class_="profile-form")
    assert form["action"] == "/rulesets/form-sample/try" and form["method"] == "post"
    names = {el["name"] for el in form.iter() if el.tag in ("input", "select") and "name" in el.attrs}
    assert names == set(rs.inputs)
    for el in form.iter():  # every control has a label, and what it points at exists
        if el.tag in ("input", "select"):
            assert doc.find("label", for_=el["id"])
            for ref in (el.get("aria-describedby") or "").split():
                doc.by_id(ref)
    for fid in ("conditions", "preferences", "pregnant", "family_history"):  # fieldsets carry the help
        fieldset = doc.by_id(f"field-{fid}")
        assert fieldset.tag == "fieldset" and fieldset.find("legend").text.startswith(rs.inputs[fid].label)
        assert doc.by_id(fieldset["aria-describedby"]).text.startswith(rs.inputs[fid].help)


def test_each_input_type_gets_its_control(client: FlaskClient) -> None:
    doc = page(client.get("/rulesets/form-sample/try"))
    sex = doc.by_id("f-sex")
    assert sex.tag == "select" and sex.get("aria-required") == "true"
    assert [(o["value"], o.text) for o in sex.find_all("option")] == [
        ("", "Choose…"),
        ("male", "Male"),
        ("female", "Female"),
    ]
    extent = doc.by_id("f-extent")  # optional ordered enum: "not recorded" first, values lowest first
    assert [o.text for o in extent.find_all("option")] == ["Not recorded", "Minimal", "Moderate", "Extensive"]
    age = doc.by_id("f-age")
    assert age.tag == "input" and age["inputmode"] == "numeric" and age["name"] == "age"
    assert "Whole number, 0–120 years." in doc.by_id("help-age").text
    assert doc.by_id("field-age").find(class_="unit").text == "years"
    # required boolean: yes / no; optional boolean: yes / no / not recorded (checked when nothing is known)
    assert [r["value"] for r in doc.by_id("field-family_history").find_all("input")] == ["true", "false"]
    pregnant = doc.by_id("field-pregnant").find_all("input")
    assert [(r["value"], "checked" in r.attrs) for r in pregnant] == [("true", False), ("false", False), ("", True)]
    assert doc.find("label", for_="f-pregnant-unrecorded").text == "Not recorded"
    boxes = doc.by_id("field-conditions").find_all("input", type="checkbox")
    assert [(b["name"], b["value"]) for b in boxes] == [
        ("conditions", "heart_failure"),
        ("conditions", "scalp_infection"),
        ("conditions", ""),
    ]
    assert doc.find("label", for_="f-conditions-none").text.startswith("None of these")


def test_form_of_another_ruleset_is_generated_from_its_own_inputs(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("status: draft", "status: testing")
    (tmp_path / "example.yaml").write_text(text, encoding="utf-8")
    doc = page(browser(make_app(tmp_path)).get("/rulesets/format-example/try"))
    form = doc.find("form", class_="profile-form")
    names = {el["name"] for el in form.iter() if "name" in el.attrs}
    assert names == {"age", "diagnosis", "pregnant", "conditions"}
    assert "Not for clinical use" in doc.text  # a testing ruleset says so on every page


def test_form_is_prefilled_from_the_query_string(client: FlaskClient) -> None:
    url = (
        "/rulesets/form-sample/try?sex=female&age=41&conditions=heart_failure&conditions=scalp_infection&pregnant=false"
    )
    doc = page(client.get(url + "&preferences=&family_history=true&extent=moderate"))
    assert doc.by_id("f-sex").find("option", value="female").get("selected") is not None
    assert doc.by_id("f-age")["value"] == "41"
    assert doc.by_id("f-extent").find("option", value="moderate").get("selected") is not None
    assert "checked" in doc.by_id("f-pregnant-false").attrs
    assert "checked" not in doc.by_id("f-pregnant-unrecorded").attrs
    assert "checked" in doc.by_id("f-family_history-true").attrs
    assert "checked" in doc.by_id("f-conditions-heart_failure").attrs
    assert "checked" in doc.by_id("f-conditions-scalp_infection").attrs
    assert "checked" in doc.by_id("f-preferences-none").attrs  # `preferences=`: recorded, none of these
    assert not doc.find_all(class_="error-summary")  # a partial profile is fine until it is submitted


def test_prefill_with_unknown_or_malformed_parameters_says_what_is_wrong(client: FlaskClient) -> None:
    doc = page(client.get("/rulesets/form-sample/try?pregant=true&age=3.5&sex=mle&family_history=yes"), 400)
    summary = doc.find(class_="error-summary")
    assert summary["role"] == "alert"
    assert "unknown field pregant (did you mean pregnant?)" in summary.text
    errors = field_errors(doc)
    assert set(errors) == {"age", "sex", "family_history"}  # nothing about fields that are simply empty yet
    assert "“3.5” is not a whole number: expected a whole number from 0 to 120 (years)" in errors["age"]
    assert "did you mean male?" in errors["sex"]
    assert "expected true or false" in errors["family_history"]


# ---- answers ---------------------------------------------------------------------------------


def test_answer_shows_candidates_exclusions_warnings_and_the_explanation(client: FlaskClient) -> None:
    doc = page(client.post("/rulesets/form-sample/try", data=MAN_AFTER_FINASTERIDE))
    assert options_in(doc, "candidates-title") == ["topical", "dutasteride"]
    # The first lines: each option with its strength and one-line reason.
    cards = doc.by_id("candidates").find_all("li", class_="card")
    firsts = [f"{li.find('h3').text} {li.find(class_='badge').text}" for li in cards]
    assert firsts == ["Topical treatment Recommended", "Oral dutasteride Consider"]
    topical = doc.find("li", data_option="topical")
    assert topical.find(class_="badge").text == "Recommended"
    assert "First-line topical option." in topical.text
    assert "Initial shedding in the first weeks." in topical.text and "Monitor for oedema." in topical.text
    assert "Regimen Twice daily." in topical.text and "Time to response About 4 months" in topical.text
    assert "Cost Low, ongoing." in topical.text and "Evidence High. Several randomised trials." in topical.text
    link = topical.find("a", rel="noreferrer noopener external")
    assert link["href"].startswith("https://www.jaad.org/")
    assert doc.find("li", data_option="dutasteride").find(class_="badge").text == "Consider"
    oral = next(li for li in doc.by_id("excluded").find_all("li") if "oral" in li.attrs.get("data-options", "").split())
    assert "Heart failure." in oral.text and oral.find("a", class_="rule-ref")["href"] == "#explain-heart"
    assert "Conditions include Heart failure" in oral.find(class_="because").text  # the patient's fact behind it
    prompts = doc.by_id("missing-facts")
    assert prompts is not None
    lines = [" ".join(li.text.split()) for li in prompts.find_all("li")]
    assert "Record pregnant: could rule out oral dutasteride" in lines  # one line per unrecorded input
    assert not doc.find_all(id="warnings")  # no rule warning for this profile: only the missing-facts prompt
    explanation = doc.by_id("explanation")
    assert (
        explanation.tag == "details" and "open" not in explanation.attrs and "no-print" in explanation["class"].split()
    )
    facts = doc.find("dl", class_="facts").text
    assert "Sex Male" in facts and "Age 34 years" in facts and "Conditions Heart failure" in facts
    rules = doc.find_all("details", class_="rule")
    statuses = {d["id"].removeprefix("explain-"): d.find(class_="status").text for d in rules}
    assert statuses == {
        "adult-confirmed": "fired",
        "finasteride-failure": "fired",
        "pregnancy": "undecided",
        "heart": "fired",
        "extensive-loss": "undecided",
        "uncertain": "did not fire",
    }
    heart = doc.by_id("explain-heart")
    assert "holds Conditions includes Heart failure (heart_failure) patient: Heart failure" in heart.text
    extensive = doc.by_id("explain-extensive-loss")
    assert "undecided Extent of loss is at least Extensive (extensive) patient: not recorded" in extensive.text
    assert "holds Age is at least 25 years patient: 34 years" in extensive.text
    provenance = doc.find("footer", class_="provenance").text
    rs = load_file(SAMPLE)
    assert rs.sha256 in provenance and "version 1.2.0" in provenance
    assert re.fullmatch(r"[0-9a-f-]{36}", doc.by_id("decision-id").text)


def test_permalink_reproduces_the_answer_and_the_edit_link_prefills_the_form(client: FlaskClient) -> None:
    first = page(client.post("/rulesets/form-sample/try", data=MAN_AFTER_FINASTERIDE))
    permalink = first.by_id("permalink")["href"]
    assert urlsplit(permalink).path == "/rulesets/form-sample/answer"
    assert dict(parse_qsl(urlsplit(permalink).query)) == {k: v for k, v in MAN_AFTER_FINASTERIDE.items() if v}
    again = page(client.get(permalink))
    for section in ("candidates-title", "excluded-title"):
        assert options_in(again, section) == options_in(first, section)
    assert again.by_id("decision-id").text != first.by_id("decision-id").text  # a new decision, recorded again
    edit = first.by_id("edit-link")["href"]
    form = page(client.get(edit))
    assert form.by_id("f-prior_finasteride").find("option", value="non_responder").get("selected") is not None
    assert "checked" in form.by_id("f-conditions-heart_failure").attrs


def test_uncertain_diagnosis_is_referred_without_options(client: FlaskClient) -> None:
    profile = {**MAN_AFTER_FINASTERIDE, "diagnosis": "uncertain", "sex": "female", "pregnant": "false"}
    doc = page(client.post("/rulesets/form-sample/try", data=profile))
    assert options_in(doc, "candidates-title") == []
    assert "No treatment option is suggested for this profile: see the referrals below." in doc.text
    referral = doc.find("li", data_option="review")
    assert "Confirm the diagnosis first." in referral.text and referral.find(class_="badge").text == "Referral"
    assert "Adult options are not offered before the diagnosis is confirmed." in doc.by_id("warnings-title").parent.text


def test_none_of_these_is_a_recorded_empty_set(client: FlaskClient) -> None:
    profile = {**MAN_AFTER_FINASTERIDE, "conditions": "", "preferences": "", "extent": "extensive", "age": "40"}
    doc = page(client.post("/rulesets/form-sample/try", data=profile))
    assert "Conditions none" in doc.find("dl", class_="facts").text
    assert options_in(doc, "candidates-title") == ["topical", "oral", "dutasteride", "transplant"]
    assert "Preferences" not in doc.by_id("missing-facts").text


# ---- the patient handout ---------------------------------------------------------------------


def test_answer_offers_the_handout_for_options_with_patient_texts(client: FlaskClient) -> None:
    doc = page(client.post("/rulesets/form-sample/try", data=MAN_AFTER_FINASTERIDE))
    form = doc.by_id("handout-form")
    assert form["method"] == "get" and form["action"] == "/rulesets/form-sample/handout"
    boxes = form.find_all("input", type="checkbox")
    assert [(b["name"], b["value"]) for b in boxes] == [("option", "topical")]  # dutasteride has no patient text


def test_handout_is_plain_language_without_identifiers(client: FlaskClient) -> None:
    answer = page(client.post("/rulesets/form-sample/try", data=MAN_AFTER_FINASTERIDE))
    decision_id = answer.by_id("decision-id").text
    response = client.get("/rulesets/form-sample/handout?option=topical")
    doc = page(response)
    sheet = doc.find("article", data_option="topical")
    assert sheet.find("h2").text == "Topical treatment"
    sections = {dt.text: dd.text for dt, dd in zip(sheet.find_all("dt"), sheet.find_all("dd"), strict=True)}
    assert sections == {
        "What it is": "A lotion for the scalp (fixture text).",
        "How it is used": "Apply it twice a day.",
        "When to expect results": "Allow about four months.",
        "Common side effects": "Some shedding in the first weeks.",
        "Tell your clinician": "Tell your clinician if your scalp itches.",
    }
    text = response.get_data(as_text=True)
    assert decision_id not in text and "decision-id" not in text
    for fact in ("34", "Heart failure", "Male"):  # nothing of the patient's profile
        assert fact not in doc.find("main").text
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("option=topcal", "Unknown option topcal (did you mean topical?)."),
        ("option=dutasteride", "Oral dutasteride has no patient text in this ruleset yet."),
        ("option=topical&age=34", "Unknown parameter age: a handout takes only option=<id>."),
        ("", "Tick at least one option on the answer to make a handout."),
    ],
)
def test_handout_refuses_what_it_cannot_print(client: FlaskClient, query: str, message: str) -> None:
    doc = page(client.get(f"/rulesets/form-sample/handout?{query}"), 400)
    assert message in doc.text


# ---- invalid input ---------------------------------------------------------------------------


def test_invalid_submission_returns_the_form_with_errors_next_to_the_fields(client: FlaskClient) -> None:
    doc = page(client.post("/rulesets/form-sample/try", data={"age": "12.5", "conditions": ["", "heart_failure"]}), 422)
    errors = field_errors(doc)
    assert errors == {
        "sex": "Error: Required: choose one of Male, Female.",
        "age": "Error: “12.5” is not a whole number: expected a whole number from 0 to 120 (years)",
        "diagnosis": "Error: Required: choose one of Androgenetic alopecia, Uncertain, Another diagnosis.",
        "family_history": "Error: Required: answer yes or no.",
        "prior_finasteride": "Error: Required: choose one of Not tried, Responded, Did not respond.",
        "conditions": "Error: “None of these” cannot be ticked together with a value",
    }
    age = doc.by_id("f-age")
    assert age["value"] == "12.5" and age["aria-invalid"] == "true"
    assert age["aria-describedby"].split() == ["help-age", "err-age"]
    assert doc.by_id("field-conditions")["aria-describedby"].split() == ["help-conditions", "err-conditions"]
    links = [a["href"] for a in doc.find(class_="error-summary").find_all("a")]
    assert links == [
        "#f-sex",
        "#f-age",
        "#f-diagnosis",
        "#f-family_history-true",
        "#f-prior_finasteride",
        "#f-conditions-heart_failure",
    ]
    assert doc.find("title").text.startswith("Error: ")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"age": "150"},
            "age",
            "`age` is 150, outside the allowed range: expected a whole number from 0 to 120 (years)",
        ),
        ({"age": "9" * 40}, "age", "is outside the allowed range: expected a whole number from 0 to 120 (years)"),
        ({"age": "thirty"}, "age", "“thirty” is not a whole number"),
        ({"age": "3e1"}, "age", "“3e1” is not a whole number"),
        ({"sex": "robot"}, "sex", "`sex` has the value `robot`, which is not allowed"),
        ({"pregnant": "maybe"}, "pregnant", "“maybe” is not an answer here: expected true or false"),
        ({"conditions": ["heart_failure", "heart_failure"]}, "conditions", "`conditions` lists a value twice"),
        ({"conditions": "gout"}, "conditions", "`conditions` contains `gout`, which is not allowed"),
        ({"sex": ["male", "female"]}, "sex", "given 2 times: give it once"),
    ],
)
def test_each_bad_value_gets_a_message_at_its_field(
    client: FlaskClient, changes: dict[str, Any], field: str, message: str
) -> None:
    doc = page(client.post("/rulesets/form-sample/try", data={**MAN_AFTER_FINASTERIDE, **changes}), 422)
    errors = field_errors(doc)
    assert list(errors) == [field]
    assert message.replace("`", "") in errors[field]


def test_unknown_fields_are_rejected_not_dropped(client: FlaskClient) -> None:
    response = client.get("/rulesets/form-sample/answer?" + "sex=male&age=34&pregant=true")
    doc = page(response, 422)
    assert "unknown field pregant (did you mean pregnant?)" in doc.find(class_="error-summary").text


def test_an_oversized_form_gets_a_413_page(folder: Path) -> None:
    client = browser(make_app(folder, MAX_CONTENT_LENGTH=2048))
    doc = page(client.post("/rulesets/form-sample/try", data={"sex": "m" * 5000}), 413)
    assert doc.find("h1").text == "Request Entity Too Large"


def test_unknown_ruleset_is_a_404_page_listing_the_loaded_ones(client: FlaskClient) -> None:
    for url in ("/rulesets/nope", "/rulesets/nope/try", "/rulesets/nope/source", "/rulesets/nope/answer?sex=male"):
        doc = page(client.get(url), 404)
        assert "No ruleset with the id nope is loaded." in doc.text
        assert doc.find("a", href="/rulesets/form-sample")


def test_clients_that_do_not_ask_for_html_get_problem_documents(app: Flask) -> None:
    client = app.test_client()  # no Accept header, like curl or an integration
    response = client.post("/rulesets/form-sample/try", data={**MAN_AFTER_FINASTERIDE, "age": "12.5", "sex": ""})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 422 and body["title"] == "Invalid profile"
    assert body["errors"] == [
        {
            "field": "age",
            "message": "“12.5” is not a whole number: expected a whole number from 0 to 120 (years)",
            "allowed": [],
        },
        {"field": "sex", "message": "`sex` is required: one of male, female", "allowed": ["male", "female"]},
    ]
    response = client.get("/rulesets/form-sample/try?pregant=true", headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.get_json()["errors"][0]["field"] == "pregant"
    response = client.get("/rulesets/nope")
    assert (
        response.status_code == 404 and response.get_json()["detail"] == "unknown ruleset `nope`; loaded: form-sample"
    )
    assert client.get("/rulesets/form-sample").mimetype == "text/html"  # pages themselves are always pages


# ---- recording -------------------------------------------------------------------------------


def test_every_web_answer_is_recorded_once_as_a_web_decision(app: Flask) -> None:
    recorder = MemoryRecorder()
    app.extensions["decision_log"] = recorder
    client = browser(app)
    doc = page(client.post("/rulesets/form-sample/try", data=MAN_AFTER_FINASTERIDE))
    page(client.post("/rulesets/form-sample/try", data={"age": "x"}), 422)
    assert len(recorder.records) == 1
    record = recorder.records[0]
    assert record["channel"] == "web"
    assert record["decision"]["decision_id"] == doc.by_id("decision-id").text
    assert record["profile"]["conditions"] == ("heart_failure",) and "pregnant" not in record["profile"]


def test_an_answer_that_cannot_be_recorded_is_not_shown(app: Flask) -> None:
    with decisions_table_missing(app):  # the real decision log, broken the way a failed database is
        resp = browser(app).post("/rulesets/form-sample/try", data=MAN_AFTER_FINASTERIDE)
    doc = page(resp, 503)  # the same 503 as every channel (issue 10: one route)
    assert int(resp.headers["Retry-After"]) > 0
    assert doc.find("h1").text == "Decision not recorded"
    assert "no decision is returned" in doc.text
    assert not doc.find_all(data_option=True)


# ---- the choice of ruleset -------------------------------------------------------------------


def test_without_a_single_production_ruleset_the_home_page_offers_a_choice(folder: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace("id: form-sample", "id: form-sample-two")
    (folder / "two.yaml").write_text(text, encoding="utf-8")
    doc = page(browser(make_app(folder)).get("/"))
    assert doc.find("h1").text == "Choose a ruleset"
    assert doc.find("a", href="/rulesets/form-sample/try") and doc.find("a", href="/rulesets/form-sample-two/try")


# ---- auditor pages ---------------------------------------------------------------------------


def test_rulesets_page_lists_versions_review_dates_hashes_and_failed_files(folder: Path) -> None:
    old = SAMPLE.read_text(encoding="utf-8").replace("id: form-sample", "id: old-sample")
    old = old.replace("effective: 2026-11-20", "effective: 2024-01-01").replace(
        "review_due: 2027-11-20", "review_due: 2025-01-01"
    )
    (folder / "old.yaml").write_text(old, encoding="utf-8")
    (folder / "broken.yaml").write_text("id: broken\nversion: 1\n", encoding="utf-8")
    doc = page(browser(make_app(folder)).get("/rulesets"))
    current, overdue = doc.find("tr", data_ruleset="form-sample"), doc.find("tr", data_ruleset="old-sample")
    assert "1.2.0" in current.text and "production" in current.text and load_file(SAMPLE).sha256 in current.text
    assert not current.find_all(class_="overdue")
    review = overdue.find("td", class_="review overdue")
    assert review.text == "2025-01-01 overdue"
    assert "2/2 invariants proven" in current.text and "6/6 tests passed, 100% rule coverage" in current.text
    failures = doc.by_id("failures-title").parent
    assert failures is not None
    assert failures.find("h3").text == "broken.yaml"
    assert "broken.yaml:2: `version` must be a semantic version".replace("`", "") in failures.text
    assert str(folder) not in doc.text  # the server's own paths are not shown


def test_ruleset_document_shows_rules_in_words_with_coverage_proofs_and_tests(client: FlaskClient) -> None:
    doc = page(client.get("/rulesets/form-sample"))
    rs = load_file(SAMPLE)
    for rule in rs.rules:
        section = doc.by_id(f"rule-{rule.id}")
        assert rule.title in section.find("h3").text
        source = section.find("a", class_="source-link")
        assert source["href"] == f"/rulesets/form-sample/source#L{rule.line}"
        assert f"- id: {rule.id}" in rs.source_text.splitlines()[rule.line - 1]
    heart = doc.by_id("rule-heart")
    assert "When Conditions includes Heart failure (heart_failure)," in heart.text
    assert "exclude Oral treatment: Heart failure." in heart.text
    assert "add a caveat to Topical treatment: Monitor for oedema." in heart.text
    coverage = heart.find(class_="coverage")
    assert coverage.text == "Covered by 1 test: heart failure"
    test_row = doc.by_id(coverage.find("a")["href"].removeprefix("#"))
    assert "heart failure" in test_row.text and "passed" in test_row.text
    assert doc.by_id("rule-adult-confirmed").find(class_="coverage").text.startswith("Covered by 5 tests:")
    invariant = doc.by_id("invariant-no-oral-in-pregnancy")
    assert "proven" in invariant.text and "SMT (z3)" in invariant.text
    assert "when Pregnant is yes, Oral treatment, Oral dutasteride is never a candidate" in invariant.text
    assert "6 of 6 tests passed. Rule coverage: 100%" in doc.by_id("tests").text
    assert doc.by_id("ref-olsen2002").find("a")["href"].startswith("https://www.jaad.org/")
    assert "Example Reviewer" in doc.by_id("people").text and "2026-11-20" in doc.by_id("people").text


def test_source_page_numbers_every_line_with_an_anchor(client: FlaskClient) -> None:
    doc = page(client.get("/rulesets/form-sample/source"))
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    rows = doc.find("table", class_="source").find_all("tr")
    assert len(rows) == len(lines)
    for number, (row, line) in enumerate(zip(rows, lines, strict=True), start=1):
        assert row["id"] == f"L{number}"
        assert row.find("a")["href"] == f"#L{number}"
        assert row.find("td", class_="code").text == " ".join(line.split())


def test_pages_are_not_cached_and_load_nothing_from_elsewhere(client: FlaskClient) -> None:
    response = client.post("/rulesets/form-sample/try", data=MAN_AFTER_FINASTERIDE)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    doc = parse(response.data)
    assets = [el["href"] for el in doc.find_all("link")] + [el["src"] for el in doc.find_all("script")]
    assert assets == ["/static/pages.css", "/static/pages.js"]
    for asset in assets:
        with client.get(asset) as static:
            assert static.status_code == 200
