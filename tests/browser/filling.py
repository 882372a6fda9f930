"""Fill the generated form from a profile, control by control, as a clinician would."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from service.ruleset.model import Ruleset


def fill_profile(page: Page, ruleset: Ruleset, profile: dict[str, Any]) -> None:
    """Set each field of `profile` in the form (ids f-<field>, as generated from the ruleset's inputs)."""
    for fid, value in profile.items():
        f = ruleset.inputs[fid]
        if f.type in ("enum", "ordered_enum"):
            page.locator(f"#f-{fid}").select_option(value)
        elif f.type == "integer":
            page.locator(f"#f-{fid}").fill(str(value))
        elif f.type == "boolean":
            page.locator(f"#f-{fid}-{'true' if value else 'false'}").check()
        else:
            for code in value or ["none"]:
                page.locator(f"#f-{fid}-{code}").check()
