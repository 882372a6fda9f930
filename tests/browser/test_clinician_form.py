"""The clinician's form and answer in Chromium, against gunicorn serving the page fixture ruleset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def fill_man_after_finasteride_failure(page: Page) -> None:
    page.get_by_label("Sex").select_option(label="Male")
    page.get_by_label("Age").fill("34")
    page.get_by_label("Diagnosis").select_option(label="Androgenetic alopecia")
    page.get_by_role("group", name="Family history of hair loss").get_by_label("Yes").check()
    page.get_by_label("Prior finasteride").select_option(label="Did not respond")
    page.get_by_role("group", name="Pregnant").get_by_label("Not recorded").check()
    page.get_by_label("Heart failure").check()


def test_submit_the_form_and_read_the_answer(page: Page, sample_url: str, shoot: Callable[[str], Path]) -> None:
    page.goto(sample_url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sample ruleset for the web pages")
    for heading in ("Demographics", "Hair loss", "Prior treatment", "Safety", "Other facts"):
        expect(page.get_by_role("group", name=heading, exact=True)).to_be_visible()
    shoot("form")
    fill_man_after_finasteride_failure(page)
    page.get_by_role("button", name="Show options").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Options for this profile")
    candidates = page.locator("section", has=page.locator("#candidates-title")).locator("li.card")
    expect(candidates.locator("h3")).to_have_text(["Topical treatment", "Oral dutasteride"])
    expect(candidates.first.locator(".badge")).to_have_text("Recommended")
    expect(candidates.first.locator("p.why")).to_be_visible()  # the one-line reason; details one click away
    expect(candidates.first.get_by_text("Monitor for oedema.")).to_be_hidden()
    candidates.first.locator("details.more > summary").click()
    expect(candidates.first.get_by_text("Monitor for oedema.")).to_be_visible()
    why_not = page.locator("ul.excluded > li")
    expect(why_not).to_have_count(1)
    expect(why_not).to_contain_text("Oral treatment")
    expect(why_not).to_contain_text("Heart failure.")
    expect(page.get_by_role("region", name="Facts to record")).to_contain_text("Record pregnant")
    shoot("answer")

    # the explanation: open a rule and read each condition with the patient's value
    rule = page.locator("details#explain-extensive-loss")
    expect(rule).to_be_hidden()  # the rule-by-rule explanation is collapsed
    page.locator("details#explanation > summary").click()
    rule.locator("summary").click()
    expect(rule).to_contain_text("Extent of loss is at least Extensive (extensive) patient: not recorded")
    expect(rule.locator("li.cond--unknown").first).to_be_visible()
    shoot("explained")

    # a link from a candidate to the rule that made it
    card = page.locator("li.card[data-option=dutasteride]")
    card.locator("details.more > summary").click()
    card.get_by_role("link", name="finasteride-failure").click()
    expect(page).to_have_url(f"{sample_url}/rulesets/form-sample/try#explain-finasteride-failure")


def test_permalink_gives_the_same_answer(page: Page, sample_url: str) -> None:
    page.goto(sample_url + "/")
    fill_man_after_finasteride_failure(page)
    page.get_by_role("button", name="Show options").click()
    decision = page.locator("#decision-id").inner_text()
    page.get_by_role("link", name="Permalink").click()
    expect(page).to_have_url(f"{sample_url}/rulesets/form-sample/answer?" + "&".join([
        "sex=male", "age=34", "diagnosis=androgenetic_alopecia", "family_history=true",
        "prior_finasteride=non_responder", "conditions=heart_failure",
    ]))  # fmt: skip
    expect(page.locator("li.card h3")).to_have_text(["Topical treatment", "Oral dutasteride"])
    expect(page.locator("#decision-id")).not_to_have_text(decision)
    page.get_by_role("link", name="Change these facts").click()
    expect(page.get_by_label("Prior finasteride")).to_have_value("non_responder")
    expect(page.get_by_label("Heart failure")).to_be_checked()


def test_invalid_input_shows_errors_at_the_fields(page: Page, sample_url: str, shoot: Callable[[str], Path]) -> None:
    page.goto(sample_url + "/")
    page.get_by_label("Sex").select_option(label="Female")
    page.get_by_label("Age").fill("thirty")
    page.get_by_role("group", name="Conditions").get_by_label("Heart failure").check()
    page.get_by_role("group", name="Conditions").get_by_label("None of these").check()
    page.get_by_role("button", name="Show options").click()

    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("The profile could not be answered")
    age = page.get_by_label("Age")
    expect(age).to_have_value("thirty")
    expect(age).to_have_attribute("aria-invalid", "true")
    expect(age).to_have_accessible_description(
        "Age in whole years. Whole number, 0–120 years. "
        "Error: “thirty” is not a whole number: expected a whole number from 0 to 120 (years)"
    )
    expect(page.locator("#err-diagnosis")).to_have_text(
        "Error: Required: choose one of Androgenetic alopecia, Uncertain, Another diagnosis."
    )
    expect(page.locator("#err-conditions")).to_contain_text("“None of these” cannot be ticked together with a value")
    expect(page.get_by_label("Sex")).to_have_value("female")  # what was entered is kept
    shoot("errors")

    summary.get_by_role("link", name="Age").click()
    expect(age).to_be_focused()


def test_keyboard_only_fill_and_submit_with_enter(page: Page, sample_url: str) -> None:
    page.goto(sample_url + "/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    focused = []
    for _ in range(40):  # the tab order reaches every control, in reading order, then the submit button
        page.keyboard.press("Tab")
        name = page.evaluate("document.activeElement.name || document.activeElement.textContent.trim()")
        if not focused or focused[-1] != name:
            focused.append(name)
        if name == "Show options":
            break
    assert focused == [
        "form-sample",  # the ruleset link in the page heading
        "sex", "age", "diagnosis", "extent", "family_history", "prior_finasteride", "months_since_transplant",
        "pregnant", "conditions", "preferences", "Show options",
    ]  # fmt: skip

    page.get_by_label("Sex").focus()
    page.keyboard.press("ArrowDown")  # Choose… -> Male
    page.keyboard.press("Tab")
    page.keyboard.type("52")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # Choose… -> Androgenetic alopecia
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # family history: the radio group takes one Tab stop
    page.keyboard.press("Space")  # selects Yes
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # Not tried
    page.get_by_label("Age").focus()
    page.keyboard.press("Enter")  # Enter in a text field submits the form

    expect(page.get_by_role("heading", level=1)).to_have_text("Options for this profile")
    age_fact = page.locator("dl.facts > div").filter(has=page.locator("dt", has_text="Age"))
    expect(age_fact.locator("dd")).to_have_text("52 years")
    expect(page.locator("li.card h3")).to_have_text(["Topical treatment", "Oral treatment"])


def test_form_prefilled_from_a_link(page: Page, sample_url: str) -> None:
    """CDS Hooks cards link to the form with the patient's facts in the query string."""
    page.goto(sample_url + "/rulesets/form-sample/try?sex=female&age=29&pregnant=true&conditions=scalp_infection")
    expect(page.get_by_label("Sex")).to_have_value("female")
    expect(page.get_by_label("Age")).to_have_value("29")
    expect(page.get_by_role("group", name="Pregnant").get_by_label("Yes")).to_be_checked()
    expect(page.get_by_label("Active scalp infection")).to_be_checked()
    expect(page.get_by_role("alert")).to_have_count(0)
