"""The README's HTTP examples, executed against the app with the bundled rulesets, so that they stay true.

Every `curl` command in a fenced block of README.md is sent to the app (method, path, headers, body as
written; `$TOKEN` is an auditor token, a decision id in a path is one the test made). What the README shows
after a command (on the lines below it, or after `#` on its line) is checked against the answer: the status
(200, or the `status` of a problem shown), every field name it shows, and every value it shows in full
(values written with `...`, identifiers and timestamps are checked for their form only).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BASE = "http://127.0.0.1:8000"
TOKEN = secrets.token_urlsafe(32)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
PAIR = re.compile(r'"([A-Za-z_][\w.]*)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)')
LIST = re.compile(r'"([A-Za-z_][\w.]*)"\s*:\s*(\[(?:"(?:[^"\\]|\\.)*"|[-\d.]+|true|false|null|,|\s)*\])')
KEY = re.compile(r'"([A-Za-z_][\w.]*)"\s*:')


@dataclass
class Example:
    line: int
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    shown: str = ""

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


def _command_end(lines: list[str], start: int) -> int:
    """Index of the last line of the shell command starting at `start` (continuations, open quotes)."""
    text, i = lines[start], start
    while (text.rstrip().endswith("\\") or text.count("'") % 2) and i + 1 < len(lines):
        i += 1
        text += "\n" + lines[i]
    return i


def _parse(command: str, line: int, shown: str) -> Example:
    command = command.replace("\\\n", " ").replace("$TOKEN", TOKEN)
    words = shlex.split(command, comments=False)
    words = words[: words.index(">")] if ">" in words else words
    example = Example(line=line, method="GET", url="")
    it = iter(words[1:])
    for word in it:
        if word in ("-s", "-sS", "-i"):
            continue
        if word == "-H":
            name, _, value = next(it).partition(":")
            example.headers[name.strip()] = value.strip()
        elif word == "-d":
            example.body, example.method = next(it), "POST"
        elif word == "-X":
            example.method = next(it)
        elif word.startswith("http"):
            example.url = word
        else:
            raise AssertionError(f"README line {line}: curl option {word!r} is not understood by this test")
    example.shown = shown
    return example


def readme_examples(text: str) -> list[Example]:
    examples: list[Example] = []
    lines = text.splitlines()
    in_block, i = False, 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            in_block = not in_block
            i += 1
            continue
        if not in_block or not (stripped.startswith("curl ") or stripped.startswith("open http")):
            i += 1
            continue
        start = i
        end = _command_end(lines, i)
        shown = ""
        last = re.search(r"\s{2,}# (.*)$", lines[end])
        if last:  # a comment after the command: what it shows, if JSON
            shown = last.group(1)[last.group(1).find("{") :] if "{" in last.group(1) else ""
        command = "\n".join([*lines[start:end], lines[end][: last.start()] if last else lines[end]]).strip()
        if command.startswith("open "):
            command = "curl -s " + command.split()[1]
        i = end + 1
        output: list[str] = []
        while i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith(("#", "curl ", "```")):
            if not lines[i].lstrip().startswith(("{", "[", '"', "]", "}")) and not output:
                break
            output.append(lines[i])
            i += 1
        shown = shown or "\n".join(output)
        examples.append(_parse(command, start + 1, shown))
    return examples


EXAMPLES = readme_examples(README.read_text(encoding="utf-8"))


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 15, [e.line for e in EXAMPLES]
    assert all(e.url.startswith(BASE) for e in EXAMPLES), [e.url for e in EXAMPLES if not e.url.startswith(BASE)]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSTANCE_PATH", str(tmp_path_factory.mktemp("readme-instance")))
        mp.setenv("AUDITOR_TOKEN_HASHES", hashlib.sha256(TOKEN.encode()).hexdigest())
        mp.setenv("CDS_HOOKS_AUTH", "disabled")
        mp.setenv("CDS_HOOKS_CORS_ORIGINS", "*")
        for name in ("DATABASE_URL", "DECISION_HMAC_KEY", "RULESETS_DIR", "PUBLIC_BASE_URL"):
            mp.delenv(name, raising=False)
        yield create_app({"TESTING": True})


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def decision_id(client: FlaskClient) -> str:
    """A decision of the log, for the examples that name one."""
    first = next(e for e in EXAMPLES if e.path == "/v1/evaluations" and e.method == "POST")
    resp = client.post(first.path, data=first.body, headers=first.headers, base_url=BASE)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["decision_id"]


def _pairs(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _pairs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _pairs(v)


def _check_shown(example: Example, answer: Any) -> None:
    actual = list(_pairs(answer))
    keys = {k for k, _ in actual}
    missing = [k for k in KEY.findall(example.shown) if k not in keys]
    assert not missing, f"README line {example.line}: fields shown but not answered: {missing}"
    for key, literal in LIST.findall(example.shown):
        value = [v for v in json.loads(literal) if v != "..."]
        answered = [v for k, v in actual if k == key and isinstance(v, list)]
        assert any(v[: len(value)] == value for v in answered), f"README line {example.line}: `{key}` {value}"
    for key, literal in PAIR.findall(example.shown):
        value = json.loads(literal)
        answered = [v for k, v in actual if k == key]
        if isinstance(value, str) and "..." in value:
            prefix = value.split("...")[0]
            assert any(isinstance(v, str) and v.startswith(prefix) for v in answered), (example.line, key, value)
        elif isinstance(value, str) and (UUID.fullmatch(value) or TIMESTAMP.fullmatch(value)):
            pattern = UUID if UUID.fullmatch(value) else TIMESTAMP
            assert any(isinstance(v, str) and pattern.fullmatch(v) for v in answered), (example.line, key, value)
        else:
            assert value in answered, f"README line {example.line}: `{key}` is shown as {value!r}, answered {answered}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}" for e in EXAMPLES])
def test_readme_example(example: Example, client: FlaskClient, decision_id: str) -> None:
    path = UUID.sub(decision_id, example.path).replace("<that hash>", "0" * 64)
    resp = client.open(path, method=example.method, data=example.body, headers=example.headers, base_url=BASE)
    problem = re.search(r'"type":\s*"urn:hairloss-rules:problem:[^"]+".*?"status":\s*(\d+)', example.shown, re.S)
    expected = int(problem.group(1)) if problem else 200
    assert resp.status_code == expected, f"README line {example.line}: {resp.status_code} {resp.get_data(as_text=True)}"
    if example.shown:
        assert resp.is_json, f"README line {example.line} shows JSON; the answer is {resp.mimetype}"
        _check_shown(example, resp.get_json())
