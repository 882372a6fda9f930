"""The shipped nginx configuration (deploy/nginx/) run by the real nginx in front of the real gunicorn.

nginx is a Debian package: .ci/run installs it, so under CI=true its absence fails; elsewhere the tests
that need it are skipped with the reason. Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bench.proxy import DEFAULTS, RENDERED, Proxy, check_config, default_site, nginx, nginx_binary, placeholders, render
from bench.server import Server, gunicorn
from bench.slow_clients import probe, slow_clients
from service.config import from_env

from .conftest import VALID_PROFILE, write_ruleset


def require_nginx() -> None:
    if nginx_binary() is not None:
        return
    message = "nginx is not installed (apt-get install nginx; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def directives(text: str) -> list[str]:
    """The configuration without comments, one directive per item (whitespace collapsed)."""
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return [" ".join(part.split()) for part in re.split(r"[;{}]", code) if part.strip()]


def block(text: str, opening: str) -> str:
    """The text of the `{ }` block that starts with `opening` (nested blocks included)."""
    start = text.index(opening)
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    raise AssertionError(f"unbalanced block {opening!r}")


# --- the files ------------------------------------------------------------------------------------------


def test_shipped_config_is_the_template_with_the_defaults() -> None:
    assert RENDERED.read_text(encoding="utf-8") == default_site(), "run `python -m bench.proxy` after editing"
    assert placeholders() == set(DEFAULTS)


def test_body_limits_default_to_the_services_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_BODY_BYTES", raising=False)
    monkeypatch.delenv("CDS_HOOKS_MAX_BODY_BYTES", raising=False)
    config = from_env()
    assert int(DEFAULTS["MAX_BODY_BYTES"]) == config["MAX_CONTENT_LENGTH"]
    assert int(DEFAULTS["CDS_HOOKS_MAX_BODY_BYTES"]) == config["CDS_HOOKS_MAX_BODY_BYTES"]


def test_template_buffers_times_out_and_hides_the_version() -> None:
    text = render({name: f"<{name}>" for name in DEFAULTS})  # placeholders visible, without their braces
    server = directives(block(text, "server {"))
    for expected in (
        "server_tokens off",
        "client_header_timeout 10s",
        "client_body_timeout 10s",
        "send_timeout 10s",
        "client_max_body_size <MAX_BODY_BYTES>",
        "proxy_request_buffering on",
        "proxy_buffering on",
        "proxy_connect_timeout 5s",
        "proxy_read_timeout 35s",
        "proxy_http_version 1.1",
        'proxy_set_header Connection ""',
        "proxy_set_header X-Forwarded-For $remote_addr",
        "proxy_set_header X-Forwarded-Proto $scheme",
        "proxy_set_header X-Forwarded-Host $host",
    ):
        assert expected in server, expected
    assert "client_max_body_size <CDS_HOOKS_MAX_BODY_BYTES>" in directives(block(text, "location /cds-services {"))
    upstream = directives(block(text, "upstream hairloss {"))
    assert "server <HAIRLOSS_UPSTREAM> max_fails=0" in upstream and "keepalive 16" in upstream
    # The access log has the path without the query string (a "try" link carries a profile).
    log_format = text[text.index("log_format hairloss") : text.index(";", text.index("log_format hairloss"))]
    assert "$uri" in log_format and "$request_uri" not in log_format and "$args" not in log_format
    assert "$request " not in log_format and "$request'" not in log_format


def test_nginx_accepts_the_shipped_config() -> None:
    require_nginx()
    result = check_config({})  # the defaults: hairloss.conf as shipped
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test is successful" in result.stderr
    result = check_config({"MAX_BODY_BYTES": "one megabyte"})
    assert result.returncode != 0  # nginx -t really checks the rendered values


# --- behind nginx ---------------------------------------------------------------------------------------


@dataclass
class Stack:
    server: Server
    proxy: Proxy


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two sync workers (the default worker class) behind nginx. A worker held by a slow client is killed
    after GUNICORN_TIMEOUT: 10 s is longer than any direct attack below, so the stall is the whole window."""
    require_nginx()
    folder = tmp_path_factory.mktemp("rulesets")
    write_ruleset(folder)
    env = {"GUNICORN_TIMEOUT": "10", "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance"))}
    with gunicorn(folder, workers=2, env=env) as server, nginx(f"{server.host}:{server.port}") as proxy:
        yield Stack(server, proxy)


def send(
    host: str, port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_answers_through_nginx_without_versions(stack: Stack) -> None:
    status, headers, body = send(stack.proxy.host, stack.proxy.port, "GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["server"] == "nginx"  # server_tokens off; gunicorn's own Server header is not passed on
    status, _, body = send(
        stack.proxy.host,
        stack.proxy.port,
        "POST",
        "/v1/evaluations",
        json.dumps({"profile": VALID_PROFILE}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200 and json.loads(body)["candidates"]


def _padded(size: int) -> bytes:
    """A valid evaluation request of exactly `size` bytes (JSON whitespace fills it up)."""
    body = json.dumps({"profile": VALID_PROFILE}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_body_limit_matches_the_service(stack: Stack) -> None:
    limit = int(DEFAULTS["MAX_BODY_BYTES"])
    json_headers = {"Content-Type": "application/json"}
    status, _, _ = send(stack.proxy.host, stack.proxy.port, "POST", "/v1/evaluations", _padded(limit), json_headers)
    assert status == 200  # what the service accepts, nginx lets through
    status, headers, body = send(
        stack.proxy.host, stack.proxy.port, "POST", "/v1/evaluations", _padded(limit + 1), json_headers
    )
    assert status == 413 and headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 413 and problem["title"] == "Content Too Large"
    assert f"limit of {limit} bytes (MAX_BODY_BYTES)" in problem["detail"]
    # The same answer as the service itself gives for that body.
    status, direct_headers, direct = send(
        stack.server.host, stack.server.port, "POST", "/v1/evaluations", _padded(limit + 1), json_headers
    )
    assert status == 413 and json.loads(direct) == problem
    assert direct_headers["content-type"] == "application/problem+json"


def _chunked(host: str, port: int, path: str, size: int) -> tuple[int, bytes]:
    """POST `size` bytes with Transfer-Encoding: chunked (no Content-Length) in 64 KB chunks."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        chunks = (b"x" * min(65536, size - i) for i in range(0, size, 65536))
        conn.request("POST", path, body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (BrokenPipeError, ConnectionResetError):
        resp = conn.getresponse()  # nginx answered and closed before the whole body was sent
        return resp.status, resp.read()
    finally:
        conn.close()


def test_chunked_body_over_the_limit_is_413(stack: Stack) -> None:
    status, body = _chunked(stack.proxy.host, stack.proxy.port, "/v1/evaluations", int(DEFAULTS["MAX_BODY_BYTES"]) + 1)
    assert status == 413 and json.loads(body)["status"] == 413


def test_cds_hooks_over_their_limit_get_an_operation_outcome(stack: Stack) -> None:
    limit = int(DEFAULTS["CDS_HOOKS_MAX_BODY_BYTES"])
    headers = {"Content-Type": "application/json"}
    path = "/cds-services/no-such-service"
    status, headers_out, body = send(stack.proxy.host, stack.proxy.port, "POST", path, b" " * (limit + 1), headers)
    assert status == 413 and headers_out["content-type"] == "application/fhir+json"
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-costly"  # the code the service uses for its own 413
    assert f"limit of {limit} bytes (CDS_HOOKS_MAX_BODY_BYTES)" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("size", [200_000, 2_000_000])
def test_an_unauthenticated_cds_call_with_a_large_body_is_a_401_not_a_502(stack: Stack, size: int) -> None:
    """The 401 is decided before the body is read; unread, gunicorn's close resets nginx's upload (502)."""
    headers = {"Content-Type": "application/json"}
    path = "/cds-services/any-service"
    for _ in range(3):
        status, _, _ = send(stack.proxy.host, stack.proxy.port, "POST", path, b" " * size, headers)
        assert status == 401


@dataclass
class Upstream:
    """A loopback socket that records the requests nginx forwards and answers each with 200 (it stands in
    for gunicorn only to show what nginx sends upstream: headers and a fully buffered body)."""

    sock: socket.socket = field(default_factory=socket.socket)
    requests: list[bytes] = field(default_factory=list)

    def serve(self) -> None:
        self.sock.settimeout(10)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head = data.split(b"\r\n\r\n", 1)[0]
                length = re.search(rb"(?im)^content-length: *(\d+)", head)
                while length and len(data) - len(head) - 4 < int(length.group(1)):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nServer: upstream/1\r\n\r\nok"
                )


def test_forwarded_headers_and_buffered_body() -> None:
    require_nginx()
    upstream = Upstream()
    upstream.sock.bind(("127.0.0.1", 0))
    upstream.sock.listen(8)
    thread = threading.Thread(target=upstream.serve, daemon=True)
    thread.start()
    try:
        with nginx(f"127.0.0.1:{upstream.sock.getsockname()[1]}") as proxy:
            status, headers, _ = send(
                proxy.host,
                proxy.port,
                "GET",
                "/healthz?x=1",
                headers={
                    "Host": "rules.example",
                    "X-Forwarded-For": "203.0.113.9",
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Ssl": "on",
                    "Forwarded": "proto=https",
                },
            )
            assert status == 200 and headers["server"] == "nginx"
            status, _ = _chunked(proxy.host, proxy.port, "/v1/evaluations", 100_000)
            assert status == 200
            # Between the two limits: refused on the JSON API, passed on to the service under /cds-services.
            between = b" " * (2 * int(DEFAULTS["MAX_BODY_BYTES"]))
            assert send(proxy.host, proxy.port, "POST", "/v1/evaluations", between)[0] == 413
            assert send(proxy.host, proxy.port, "POST", "/cds-services/x", between)[0] == 200
    finally:
        upstream.sock.close()
        thread.join(timeout=15)
    head = upstream.requests[0].split(b"\r\n\r\n")[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /healthz?x=1 HTTP/1.1"
    fields = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert fields["host"] == "rules.example"
    assert fields["x-forwarded-for"] == "127.0.0.1"  # the edge: a client's own claim is replaced
    assert fields["x-forwarded-proto"] == "http"
    assert fields["x-forwarded-host"] == "rules.example"
    assert "connection" not in fields  # HTTP/1.1 keep-alive to the upstream
    assert "x-forwarded-ssl" not in fields and "forwarded" not in fields  # nginx alone states the scheme
    # A chunked upload reaches gunicorn in one piece, with its length known in advance.
    posted = upstream.requests[1]
    head, body = posted.split(b"\r\n\r\n", 1)
    assert re.search(rb"(?im)^content-length: 100000\r?$", head) and b"transfer-encoding" not in head.lower()
    assert body == b"x" * 100_000
    assert len(upstream.requests) == 3 and upstream.requests[2].startswith(b"POST /cds-services/x HTTP/1.1")
    assert upstream.requests[2].endswith(b"\r\n\r\n" + between)


# --- slow clients ---------------------------------------------------------------------------------------


def _recovered(server: Server) -> None:
    """Wait (bounded) until gunicorn answers again after a direct attack, so the next test starts clean."""
    deadline = time.monotonic() + 20
    while probe(server.host, server.port, seconds=0.01, timeout=2).answered == 0:
        assert time.monotonic() < deadline, f"gunicorn did not recover:\n{server.log()[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["headers", "body", "reader"])
def test_fifty_slow_clients_do_not_stall_healthz_behind_nginx(stack: Stack, kind: str) -> None:
    """50 slow connections of one kind: through nginx every /healthz is answered at once; straight at
    gunicorn (two sync workers) the same attack leaves it unanswered - which shows this test can fail."""
    proxy, server = stack.proxy, stack.server
    with slow_clients(proxy.host, proxy.port, 50, kinds=(kind,)) as attack:
        time.sleep(0.5)
        proxied = probe(proxy.host, proxy.port, seconds=3, timeout=5)
        assert attack.opened == 50
    with slow_clients(server.host, server.port, 50, kinds=(kind,)):
        time.sleep(0.5)
        direct = probe(server.host, server.port, seconds=2.5, timeout=1.5)
    _recovered(server)
    print(f"\n{kind}: through nginx {proxied.summary()}\n{kind}: direct to gunicorn {direct.summary()}")
    # Through nginx: every probe answered, the median far below the 10 s a held worker stalls (the issue's
    # target is 100 ms; timings are not asserted tightly on a shared 2-core machine, they are printed).
    assert proxied.answered == proxied.total >= 5
    assert proxied.median < 1.0
    # Direct: most probes are not answered within 1.5 s.
    assert direct.answered <= direct.total // 2, direct.summary()
