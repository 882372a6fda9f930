"""Real-browser fixtures: Debian's Chromium driven by Playwright against the real gunicorn.

Chromium comes from the system (`apt-get install chromium`; `playwright install` cannot download here):
CHROMIUM_PATH names it, else `chromium` on PATH. Without it the browser tests skip with a message, except
under CI=true, where a missing browser fails the run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "pages" / "form-sample.yaml"
RESULTS = ROOT / "test-results"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # headless Chromium as root
    "--disable-gpu",
    "--disable-background-networking",  # without these Chromium keeps trying to reach the internet
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STARTUP_SECONDS = 120  # gunicorn --preload verifies every ruleset (proofs, tests) before it listens


def chromium_path() -> str | None:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    return path if path and Path(path).exists() else None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    path = chromium_path()
    if path is None:
        message = "Chromium not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " - under CI=true the browser tests must run", pytrace=False)
        pytest.skip(message)
    args = [*browser_type_launch_args.get("args", []), *CHROMIUM_FLAGS]
    return {**browser_type_launch_args, "executable_path": path, "args": args}


class Gunicorn:
    """The service under gunicorn on a loopback port the kernel chose, as in production."""

    def __init__(self, rulesets_dir: Path, log_dir: Path) -> None:
        self.log_path = log_dir / "gunicorn.log"
        command = [sys.executable, "-m", "gunicorn", "--no-control-socket"]
        if (ROOT / "gunicorn.conf.py").exists():
            command += ["--config", str(ROOT / "gunicorn.conf.py")]
        else:
            command += ["--workers", "2", "--preload"]
        command += ["--bind", "127.0.0.1:0", "--error-logfile", "-", "service:create_app()"]
        # Each server its own instance folder: revisions published into a shared store would stay production
        # there (the ruleset lifecycle), and one server's rulesets would show up in the other's.
        env = {
            **os.environ,
            "RULESETS_DIR": str(rulesets_dir),
            "INSTANCE_PATH": str(log_dir / "instance"),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = self._wait_until_listening()

    def _log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _wait_until_listening(self) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self._log()}")
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", self._log())
            if found and self._healthy(found.group(1)):
                return found.group(1)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {STARTUP_SECONDS} s:\n{self._log()}")

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Path], str]]:
    """Start (once per folder) a gunicorn serving the rulesets of a folder; returns its base URL."""
    servers: dict[Path, Gunicorn] = {}

    def start(rulesets_dir: Path) -> str:
        if rulesets_dir not in servers:
            servers[rulesets_dir] = Gunicorn(rulesets_dir, tmp_path_factory.mktemp("gunicorn"))
        return servers[rulesets_dir].url

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def sample_url(serve: Callable[[Path], str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The service with the page fixture ruleset (every input type) as its only, default ruleset."""
    folder = tmp_path_factory.mktemp("rulesets")
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    return serve(folder)


@pytest.fixture
def shoot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Save a full-page screenshot under test-results/ (kept as a test artefact, and looked at)."""

    def save(name: str) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
