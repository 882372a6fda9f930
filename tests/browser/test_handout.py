"""The patient handout in Chromium: ticked on an answer, opened as its own page, printed within a page per option."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .test_answer_targets import pdf_pages

pytestmark = pytest.mark.browser

ANSWER = (
    "/rulesets/form-sample/answer?sex=male&age=34&diagnosis=androgenetic_alopecia&family_history=false"
    "&prior_finasteride=non_responder&conditions=heart_failure"
)


def test_tick_an_option_and_print_its_handout(page: Page, sample_url: str, shoot: Callable[[str], Path]) -> None:
    page.goto(sample_url + ANSWER)
    decision_id = page.locator("#decision-id").inner_text()
    page.get_by_role("checkbox", name="Add Topical treatment to the patient handout").check()
    page.get_by_role("button", name="Handout for the ticked options").click()
    expect(page).to_have_url(f"{sample_url}/rulesets/form-sample/handout?option=topical")
    expect(page.get_by_role("heading", level=1)).to_have_text("Information about your treatment options")
    sheet = page.locator("article[data-option=topical]")
    expect(sheet.get_by_role("heading", level=2)).to_have_text("Topical treatment")
    expect(sheet).to_contain_text("Apply it twice a day.")
    shoot("handout")
    body = page.locator("body").inner_text()
    assert decision_id not in body and "34" not in body and "Heart failure" not in body  # no identifiers, no facts
    page.emulate_media(media="print")
    assert pdf_pages(page.pdf(format="A4")) <= 1  # at most one A4 page per option
