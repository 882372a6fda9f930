"""`rulesets diff OLD NEW`: rule by rule, in plain words, between real revisions (paths or published shas)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from flask import Flask

from service.lifecycle import read_fileset

from .conftest import ROOT, example, write


def changed(text: str) -> str:
    text = text.replace("- {field: age, at_least: 18}", "- {field: age, at_least: 21}")  # condition of adult-confirmed
    text = text.replace("summary: An oral treatment taken daily.", "summary: An oral tablet taken once daily.")
    text = text.replace("      - {code: scalp_infection, label: Active scalp infection}\n", "")
    text = text.replace(
        "  - id: uncertain\n",
        "  - id: infection\n    title: Scalp infection\n    when: {field: conditions, contains: heart_failure}\n"
        "    then:\n      - warn: Check the scalp first.\n  - id: uncertain\n",
    )
    return text


def test_diff_of_two_published_revisions_in_plain_words(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    new_path = write(tmp_path / "new", example("0.2.0", changed))
    assert runner.invoke(args=["rulesets", "publish", str(new_path)]).exit_code in (0, 1)
    old_sha = app.extensions["registry"].get("format-example").ruleset.sha256
    new_sha = read_fileset(new_path).sha256
    result = runner.invoke(args=["rulesets", "diff", old_sha[:12], new_sha])
    assert result.exit_code == 0, result.output
    md = result.output
    assert "# Changes in `format-example`: 0.1.0 → 0.2.0" in md
    assert "| version | 0.1.0 | 0.2.0 |" in md
    assert '<a id="rules-adult-confirmed"></a>' in md
    assert (
        "| when | Diagnosis is Confirmed (`confirmed`) and Age is at least 18 years | "
        "Diagnosis is Confirmed (`confirmed`) and Age is at least 21 years |" in md
    )
    assert "### Added rule `infection` - Scalp infection" in md and "warn: Check the scalp first." in md
    assert "| summary | An oral treatment taken daily. | An oral tablet taken once daily. |" in md
    assert "| values removed | scalp_infection | — |" in md
    assert "pregnancy" not in md.split("## Rules")[1].split("## Options")[0]  # unchanged rules are not listed


def test_diff_of_the_real_ruleset_against_an_edited_copy(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "real"
    folder.mkdir()
    for suffix in (".yaml", ".tests.yaml"):
        shutil.copy(ROOT / "rulesets" / f"androgenetic-alopecia{suffix}", folder / f"androgenetic-alopecia{suffix}")
    old = folder / "androgenetic-alopecia.yaml"
    version = re.search(r'(?m)^version: "([^"]+)"$', old.read_text()).group(1)
    edited = old.read_text().replace(f'version: "{version}"', 'version: "99.0.0"')
    new = write(tmp_path / "edited", edited, "androgenetic-alopecia.yaml")
    shutil.copy(folder / "androgenetic-alopecia.tests.yaml", tmp_path / "edited")
    result = app.test_cli_runner().invoke(args=["rulesets", "diff", str(old), str(new)])
    assert result.exit_code == 0, result.output
    assert "Summary: 1 metadata." in result.output and f"| version | {version} | 99.0.0 |" in result.output
    same = app.test_cli_runner().invoke(args=["rulesets", "diff", str(old), str(old)])
    assert "No change in rules" in same.output
