"""Without Chromium the browser tests skip with a clear message - except under CI=true, where they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_without_chromium(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CHROMIUM_PATH"] = str(tmp_path / "no-chromium-here")
    if ci is not None:
        env["CI"] = ci
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/browser/test_auditor_pages.py",
        "-k",
        "print",
        "-p",
        "no:cacheprovider",
    ]
    # its own --output: pytest-playwright empties that folder at start, and test-results/ holds our screenshots
    command += ["--basetemp", str(tmp_path / "run"), "--output", str(tmp_path / "output"), "-rs", "-q"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("ci", [None, "false"])
def test_missing_chromium_skips_outside_ci(tmp_path: Path, ci: str | None) -> None:
    result = run_without_chromium(tmp_path, ci)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert (
        "Chromium not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH" in result.stdout
    )


def test_missing_chromium_fails_under_ci(tmp_path: Path) -> None:
    result = run_without_chromium(tmp_path, "true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "under CI=true the browser tests must run" in result.stdout
    assert "1 error" in result.stdout
