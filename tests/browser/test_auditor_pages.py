"""The auditor's pages in Chromium: from the list of rulesets to a rule, its coverage and its source line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_find_a_rule_its_coverage_and_its_source(page: Page, sample_url: str, shoot: Callable[[str], Path]) -> None:
    page.goto(sample_url + "/rulesets")
    row = page.locator("tr[data-ruleset=form-sample]")
    expect(row).to_contain_text("1.2.0")
    expect(row).to_contain_text("production")
    expect(row).to_contain_text("2/2 invariants proven")
    shoot("list")
    row.get_by_role("link", name="Sample ruleset for the web pages").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Sample ruleset for the web pages")
    page.get_by_role("navigation", name="Contents").get_by_role("link", name="Rules").click()
    page.get_by_role("navigation", name="Rules by id").get_by_role("link", name="heart", exact=True).click()
    rule = page.locator("article#rule-heart")
    expect(rule).to_be_in_viewport()
    expect(rule).to_contain_text("When Conditions includes Heart failure (heart_failure),")
    expect(rule).to_contain_text("exclude Oral treatment: Heart failure.")
    expect(rule.locator(".coverage")).to_have_text("Covered by 1 test: heart failure")
    expect(page.locator("#invariant-no-oral-in-pregnancy")).to_contain_text("proven")
    shoot("document")

    rule.get_by_role("link", name="heart failure").click()  # the test that covers the rule
    test_row = page.locator("tr:target")
    expect(test_row).to_contain_text("heart failure")
    expect(test_row).to_contain_text("passed")

    rule.locator("a.source-link").click()
    expect(page).to_have_url(f"{sample_url}/rulesets/form-sample/source#L210")
    line = page.locator("tr:target")
    expect(line).to_have_id("L210")
    expect(line.locator("td.code")).to_have_text("  - id: heart")
    expect(line).to_be_in_viewport()
    shoot("source")


def test_print_view_leaves_the_rule_by_rule_explanation_out(page: Page, sample_url: str) -> None:
    page.goto(
        sample_url + "/rulesets/form-sample/answer?sex=male&age=30&diagnosis=androgenetic_alopecia"
        "&family_history=false&prior_finasteride=not_tried"
    )
    expect(page.locator("details[open]")).to_have_count(0)
    expect(page.locator("#explanation")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator("#explanation")).to_be_hidden()
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator("#candidates")).to_be_visible()


def test_a_link_to_a_rule_opens_the_collapsed_explanation_at_that_rule(page: Page, sample_url: str) -> None:
    page.goto(
        sample_url + "/rulesets/form-sample/answer?sex=male&age=30&diagnosis=androgenetic_alopecia"
        "&family_history=false&prior_finasteride=not_tried&conditions=heart_failure"
    )
    page.locator("#excluded li", has=page.locator("[data-option=oral]")).locator("a.rule-ref").click()
    expect(page.locator("#explain-heart")).to_have_attribute("open", "")
    expect(page.locator("#explain-heart .rule-body")).to_be_in_viewport()


def test_the_ruleset_document_fits_a_phone_and_indexes_its_rules(page: Page, serve: Callable[[Path], str]) -> None:
    rulesets = Path(__file__).resolve().parents[2] / "rulesets"
    if not (rulesets / "androgenetic-alopecia.yaml").exists():
        pytest.skip("the default ruleset is not in this branch")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(serve(rulesets) + "/rulesets/androgenetic-alopecia")
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, ...[...document.querySelectorAll('table')].map(t => t.scrollWidth)]"
    )
    assert max(widths) <= 390, widths
    index = page.get_by_role("navigation", name="Rules by id")
    first = index.get_by_role("link").first
    rule_id = first.inner_text()
    first.click()
    expect(page.locator(f"article#rule-{rule_id}")).to_be_in_viewport()
