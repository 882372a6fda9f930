"""What only a real server sees: raw bytes on a socket to the real gunicorn (chunked bodies, Host headers).

The test client hands Flask a body already in one piece; gunicorn de-chunks while the application reads,
so a malformed chunk size line or a chunked body over the limit only shows here (issue 16).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.server import Server, gunicorn

from .conftest import write_ruleset

pytestmark = pytest.mark.slow
LIMIT = 2000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("raw")
    write_ruleset(folder / "rulesets")
    env = {"INSTANCE_PATH": str(folder / "instance"), "MAX_BODY_BYTES": str(LIMIT), "CDS_HOOKS_AUTH": "disabled"}
    with gunicorn(folder / "rulesets", workers=1, env=env) as srv:
        yield srv


def exchange(server: Server, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the request says Connection: close)."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def chunked_post(path: str, content_type: str = "application/json") -> str:
    return (
        f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nContent-Type: {content_type}\n"
        "Transfer-Encoding: chunked\nConnection: close\n"
    )


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


PROFILE = json.dumps({"profile": {"age": 30, "diagnosis": "confirmed"}}).encode()


def test_a_well_formed_chunked_body_is_read(server: Server) -> None:
    status, _, body = exchange(server, chunked_post("/v1/evaluations"), chunk(PROFILE) + b"0\r\n\r\n")
    assert status == 200, body


@pytest.mark.parametrize("path", ["/v1/evaluations", "/v1/evaluations:batch"])
def test_a_malformed_chunk_size_line_is_a_400(server: Server, path: str) -> None:
    status, headers, body = exchange(server, chunked_post(path), b"zz\r\n" + PROFILE + b"\r\n0\r\n\r\n")
    assert status == 400, body
    assert headers["content-type"] == "application/problem+json"


def test_a_malformed_chunk_size_line_in_a_form_is_a_400(server: Server) -> None:
    head = chunked_post("/decisions/sign-in", "application/x-www-form-urlencoded")
    status, _, body = exchange(server, head, b"zz\r\ntoken=x\r\n0\r\n\r\n")
    assert status == 400, body


def test_a_chunked_body_over_the_limit_is_a_413(server: Server) -> None:
    big = json.dumps({"profile": {"age": 30, "diagnosis": "confirmed", "note": "x" * LIMIT}}).encode()
    status, headers, body = exchange(server, chunked_post("/v1/evaluations"), chunk(big) + b"0\r\n\r\n")
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"


def test_a_chunked_body_of_exactly_the_limit_is_read(server: Server) -> None:
    exact = PROFILE[:-1] + b" " * (LIMIT - len(PROFILE)) + b"}"
    assert len(exact) == LIMIT
    status, _, body = exchange(server, chunked_post("/v1/evaluations"), chunk(exact) + b"0\r\n\r\n")
    assert status == 200, body
