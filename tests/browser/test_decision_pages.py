"""The decision log's pages in Chromium against the real gunicorn: sign in, find a decision, open it, replay it."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import SAMPLE

pytestmark = pytest.mark.browser

TOKEN = "auditor-token-for-the-browser-test"


@pytest.fixture
def audited_url(
    serve: Callable[[Path], str], tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A gunicorn of its own, started with an auditor token configured (gunicorn inherits the environment)."""
    monkeypatch.setenv("AUDITOR_TOKEN_HASHES", hashlib.sha256(TOKEN.encode()).hexdigest())
    folder = tmp_path_factory.mktemp("audited-rulesets")
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    return serve(folder)


def test_sign_in_find_a_decision_open_it_and_replay_it(
    page: Page, audited_url: str, shoot: Callable[[str], Path]
) -> None:
    # A clinician's answer, recorded in the log.
    page.goto(
        audited_url + "/rulesets/form-sample/answer?sex=male&age=30&diagnosis=androgenetic_alopecia"
        "&family_history=false&prior_finasteride=not_tried"
    )
    decision_id = page.locator("#decision-id").inner_text()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Decisions").click()
    expect(page).to_have_url(f"{audited_url}/decisions/sign-in?next=/decisions")
    page.get_by_label("Auditor token").fill("not the token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#err-token")).to_contain_text("not an auditor token")
    page.get_by_label("Auditor token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Decision log")

    page.get_by_label("Channel").select_option("web")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{audited_url}/decisions?ruleset=&option=&role=&channel=web&since=&until=")
    row = page.locator(f"tr[data-decision='{decision_id}']")
    expect(row).to_contain_text("form-sample 1.2.0")
    shoot("list")
    row.get_by_role("link", name=f"Decision {decision_id}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Decision {decision_id}")
    expect(page.locator(".profile-summary")).to_contain_text("Androgenetic alopecia")
    shoot("decision")
    page.get_by_role("button", name="Replay this decision").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Replay of decision {decision_id}")
    expect(page.locator("#stored-revision .verdict-line")).to_contain_text("identical")
    expect(page.locator("#current-revision .verdict-line")).to_contain_text("identical")
    shoot("replay")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(audited_url + "/decisions")
    expect(page).to_have_url(f"{audited_url}/decisions/sign-in?next=/decisions")
