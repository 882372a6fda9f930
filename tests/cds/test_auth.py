"""Every CDS Hooks call carries an EHR-signed JWT; every way a token can be wrong gives a bare 401."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from service.cds import auth

from .conftest import PATIENT_VIEW, write_issuers
from .helpers import BASE, Ehr, EhrKey, serve

DISCOVERY = BASE + "/cds-services"
ROOT = Path(__file__).resolve().parents[2]


def discover(app: Flask, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return app.test_client().get("/cds-services", headers=headers)


def assert_bare_401(resp: Any) -> None:
    assert resp.status_code == 401
    assert resp.get_data() == b""
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_es384_and_rs384_tokens_are_accepted(app: Flask, ehr: Ehr, rsa_ehr: Ehr) -> None:
    assert discover(app, ehr.token(DISCOVERY)).status_code == 200
    assert discover(app, rsa_ehr.token(DISCOVERY)).status_code == 200


def test_audience_may_be_a_list_holding_the_url_called(app: Flask, ehr: Ehr) -> None:
    assert discover(app, ehr.token(["https://other.example.org", DISCOVERY])).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer a.b"],
)
def test_missing_or_malformed_authorization(app: Flask, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    assert_bare_401(app.test_client().get("/cds-services", headers=headers))


def test_bad_signature(app: Flask, ehr: Ehr) -> None:
    impostor = EhrKey("ES384", ehr.keys[0].kid, EhrKey.generate("ES384").private)  # same kid, other key
    assert_bare_401(discover(app, ehr.token(DISCOVERY, key=impostor)))


def test_tampered_payload(app: Flask, ehr: Ehr) -> None:
    header, payload, signature = ehr.token(DISCOVERY).split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["iss"] = ehr.iss + "/"  # any change breaks the signature
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert_bare_401(discover(app, f"{header}.{forged}.{signature}"))


def test_wrong_audience(app: Flask, ehr: Ehr) -> None:
    assert_bare_401(discover(app, ehr.token("https://elsewhere.example.org/cds-services")))
    # A token for one endpoint is not valid at another of the same service.
    resp = app.test_client().post(PATIENT_VIEW, json={}, headers={"Authorization": f"Bearer {ehr.token(DISCOVERY)}"})
    assert_bare_401(resp)


def test_expired(app: Flask, ehr: Ehr) -> None:
    assert_bare_401(discover(app, ehr.token(DISCOVERY, iat=int(time.time()) - 1000, lifetime=300)))


def test_issued_in_the_future(app: Flask, ehr: Ehr) -> None:
    assert_bare_401(discover(app, ehr.token(DISCOVERY, iat=int(time.time()) + 600)))


def test_lifetime_longer_than_an_hour(app: Flask, ehr: Ehr) -> None:
    assert_bare_401(discover(app, ehr.token(DISCOVERY, lifetime=2 * 3600)))


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_required_claims(app: Flask, ehr: Ehr, claim: str) -> None:
    key = ehr.keys[0]
    now = int(time.time())
    payload = {"iss": ehr.iss, "aud": DISCOVERY, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    del payload[claim]
    token = jwt.encode(payload, key.private, algorithm="ES384", headers={"kid": key.kid, "typ": "JWT"})
    assert_bare_401(discover(app, token))


def test_alg_none(app: Flask, ehr: Ehr) -> None:
    now = int(time.time())
    payload = {"iss": ehr.iss, "aud": DISCOVERY, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    token = jwt.encode(payload, None, algorithm="none", headers={"kid": ehr.keys[0].kid, "typ": "JWT"})
    assert_bare_401(discover(app, token))
    # The same with the signature of a genuine token appended must fail too.
    signature = ehr.token(DISCOVERY).split(".")[2]
    assert_bare_401(discover(app, token.rstrip(".") + "." + signature))


@pytest.mark.parametrize("alg", ["HS256", "HS384"])
def test_hmac(app: Flask, ehr: Ehr, alg: str) -> None:
    now = int(time.time())
    payload = {"iss": ehr.iss, "aud": DISCOVERY, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    token = jwt.encode(payload, "s" * 64, algorithm=alg, headers={"kid": ehr.keys[0].kid})
    assert_bare_401(discover(app, token))


def test_other_asymmetric_algorithms_are_refused(app: Flask, ehr: Ehr) -> None:
    key = ehr.keys[0]
    now = int(time.time())
    payload = {"iss": ehr.iss, "aud": DISCOVERY, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    p256 = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(payload, p256, algorithm="ES256", headers={"kid": key.kid, "typ": "JWT"})
    assert_bare_401(discover(app, token))
    rs256 = jwt.encode(payload, EhrKey.generate("RS384").private, algorithm="RS256", headers={"kid": key.kid})
    assert_bare_401(discover(app, rs256))


def test_typ_and_kid_are_required(app: Flask, ehr: Ehr) -> None:
    key = ehr.keys[0]
    now = int(time.time())
    payload = {"iss": ehr.iss, "aud": DISCOVERY, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    no_kid = jwt.encode(payload, key.private, algorithm="ES384", headers={"typ": "JWT"})
    assert_bare_401(discover(app, no_kid))
    wrong_typ = ehr.token(DISCOVERY, headers={"typ": "at+jwt"})
    assert_bare_401(discover(app, wrong_typ))


def test_unknown_issuer(app: Flask, ehr: Ehr) -> None:
    stranger = Ehr("https://stranger.example.org", ehr.keys)  # even with a trusted key
    assert_bare_401(discover(app, stranger.token(DISCOVERY)))


def test_unknown_kid(app: Flask, ehr: Ehr) -> None:
    assert_bare_401(discover(app, ehr.token(DISCOVERY, key=EhrKey.generate("ES384"))))


def test_key_of_another_trusted_issuer(app: Flask, ehr: Ehr, rsa_ehr: Ehr) -> None:
    assert_bare_401(discover(app, ehr.token(DISCOVERY, key=rsa_ehr.keys[0])))


def test_replayed_jti(app: Flask, ehr: Ehr) -> None:
    token = ehr.token(DISCOVERY)
    assert discover(app, token).status_code == 200
    assert_bare_401(discover(app, token))
    # Another token reusing the jti is refused as well.
    jti = uuid.uuid4().hex
    assert discover(app, ehr.token(DISCOVERY, jti=jti)).status_code == 200
    assert_bare_401(discover(app, ehr.token(DISCOVERY, jti=jti)))


def test_replay_across_two_apps_sharing_a_database(make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    first, second = make_app(DATABASE_URL=url), make_app(DATABASE_URL=url)
    token = ehr.token(DISCOVERY)
    assert discover(first, token).status_code == 200
    assert_bare_401(discover(second, token))


REPLAY_SCRIPT = """
import sys
from service import create_app
app = create_app({"RULESETS_DIR": sys.argv[1], "INSTANCE_PATH": sys.argv[2], "DATABASE_URL": sys.argv[3],
                  "CDS_HOOKS_ISSUERS": sys.argv[4], "CDS_HOOKS_AUTH": "enabled", "DECISION_HMAC_KEY": sys.argv[6],
                  "PUBLIC_BASE_URL": "http://localhost"})
resp = app.test_client().get("/cds-services", headers={"Authorization": "Bearer " + sys.argv[5]})
print(resp.status_code)
"""


def test_replay_across_processes(
    make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path, rulesets_dir: Path, issuers_file: Path
) -> None:
    """Two worker processes share nothing but the database: a token used in one fails in the other."""
    url = f"sqlite:///{tmp_path / 'workers.sqlite3'}"
    token = ehr.token(DISCOVERY)
    key = "k" * 40  # processes sharing a decision log share its identifier key
    args = [str(rulesets_dir), str(tmp_path / "other-instance"), url, str(issuers_file), token, key]

    def in_process() -> str:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", REPLAY_SCRIPT, *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert in_process() == "200"
    assert in_process() == "401"
    assert_bare_401(discover(make_app(DATABASE_URL=url, DECISION_HMAC_KEY=key), token))


@pytest.mark.postgres
def test_replay_across_apps_on_postgresql(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    psycopg = pytest.importorskip("psycopg")
    name = f"cds_replay_{uuid.uuid4().hex[:12]}"
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    apps: list[Flask] = []
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        apps = [make_app(DATABASE_URL=url), make_app(DATABASE_URL=url)]
        token = ehr.token(DISCOVERY)
        assert discover(apps[0], token).status_code == 200
        assert_bare_401(discover(apps[1], token))
    finally:
        for a in apps:
            a.extensions["decision_log"].close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_tenant_allowlist(make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path) -> None:
    issuers = write_issuers(tmp_path / "tenants.json", [{"iss": ehr.iss, "jwks": ehr.jwks, "tenants": ["hosp-a"]}])
    app = make_app(CDS_HOOKS_ISSUERS=str(issuers))
    assert discover(app, ehr.token(DISCOVERY, tenant="hosp-a")).status_code == 200
    assert_bare_401(discover(app, ehr.token(DISCOVERY, tenant="hosp-b")))
    assert_bare_401(discover(app, ehr.token(DISCOVERY)))


def test_public_base_url_is_the_audience(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    app = make_app(PUBLIC_BASE_URL="https://cds.example.org/hair")
    assert discover(app, ehr.token("https://cds.example.org/hair/cds-services")).status_code == 200
    assert_bare_401(discover(app, ehr.token(DISCOVERY)))


def test_the_audience_never_comes_from_the_host_header(app: Flask, ehr: Ehr) -> None:
    """`aud=http://evil.example/cds-services` sent with `Host: evil.example` passed before (issue 16, item 8)."""
    resp = app.test_client().get(
        "/cds-services",
        headers={"Authorization": f"Bearer {ehr.token('http://evil.example/cds-services')}", "Host": "evil.example"},
    )
    assert_bare_401(resp)


def test_authentication_with_trusted_issuers_needs_public_base_url(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SystemExit, match="needs PUBLIC_BASE_URL"):
        make_app(PUBLIC_BASE_URL="")
    make_app(PUBLIC_BASE_URL="", CDS_HOOKS_AUTH="disabled")  # nothing is authenticated, no `aud` is built
    make_app(PUBLIC_BASE_URL="", CDS_HOOKS_ISSUERS="")  # no EHR trusted: every call is refused anyway


def test_extra_claims_are_tolerated(app: Flask, ehr: Ehr) -> None:
    now = int(time.time())
    token = ehr.token(DISCOVERY, sub="epic-client-id", nbf=now - 300)  # Epic sends both
    assert discover(app, token).status_code == 200


def test_jwks_url_is_fetched_cached_and_refreshed_on_a_new_kid(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    ehr = Ehr("https://jku.example.org", [EhrKey.generate("ES384")])
    published = {"jwks": ehr.jwks}
    host = serve(lambda path, headers: (200, published["jwks"]) if path == "/jwks.json" else (404, None))
    try:
        issuers = write_issuers(tmp_path / "jku.json", [{"iss": ehr.iss, "jwks_url": host.url + "/jwks.json"}])
        app = make_app(CDS_HOOKS_ISSUERS=str(issuers))
        assert discover(app, ehr.token(DISCOVERY)).status_code == 200
        assert discover(app, ehr.token(DISCOVERY)).status_code == 200
        assert len(host.requests) == 1  # cached

        rotated = EhrKey.generate("RS384")
        ehr.keys.append(rotated)
        published["jwks"] = ehr.jwks  # the EHR rotates: the new kid is fetched on first sight
        assert discover(app, ehr.token(DISCOVERY, key=rotated)).status_code == 200
        assert len(host.requests) == 2

        stranger = EhrKey.generate("ES384")
        assert_bare_401(discover(app, ehr.token(DISCOVERY, key=stranger)))
        assert_bare_401(discover(app, ehr.token(DISCOVERY, key=stranger)))
        assert len(host.requests) == 3  # an unknown kid refetches at most once a minute
    finally:
        host.close()


def test_unreachable_jwks_url_refuses(make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path) -> None:
    host = serve(lambda path, headers: (503, None))
    host.close()  # nothing listens there any more
    issuers = write_issuers(tmp_path / "gone.json", [{"iss": ehr.iss, "jwks_url": host.url + "/jwks.json"}])
    app = make_app(CDS_HOOKS_ISSUERS=str(issuers))
    assert_bare_401(discover(app, ehr.token(DISCOVERY)))


def test_tokens_never_reach_the_log(app: Flask, ehr: Ehr, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good, replayed = ehr.token(DISCOVERY), ehr.token(DISCOVERY, lifetime=7200)
    discover(app, good)
    discover(app, good)
    discover(app, replayed)
    assert "refused" in caplog.text
    for token in (good, replayed):
        for part in token.split("."):
            assert part not in caplog.text


def test_disabled_auth_warns_and_lets_calls_through(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    app = make_app(CDS_HOOKS_AUTH="disabled")
    assert "CDS_HOOKS_AUTH=disabled" in caplog.text
    assert discover(app, None).status_code == 200


def test_no_issuers_configured_refuses_everything(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    app = make_app(CDS_HOOKS_ISSUERS="")
    assert_bare_401(discover(app, ehr.token(DISCOVERY)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"iss": "x"}', "must be a JSON list"),
        ('[{"iss": "x"}]', "exactly one of `jwks`"),
        ('[{"iss": "x", "jwks": {"keys": []}, "jwks_url": "https://x.example/jwks"}]', "exactly one of `jwks`"),
        ('[{"iss": "x", "jwks_url": "http://ehr.example.org/jwks"}]', "https URL"),
        ('[{"iss": "x", "jwks": {"keys": [{"kid": "k", "kty": "oct", "k": "c2VjcmV0"}]}}]', "no usable"),
        ('[{"iss": "x", "jwks": {"keys": []}, "extra": 1}]', "unknown keys"),
        ('[{"iss": ""}]', "`iss`"),
    ],
)
def test_bad_issuers_file_stops_start_up(
    make_app: Callable[..., Flask], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad-issuers.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        make_app(CDS_HOOKS_ISSUERS=str(path))


def test_unknown_auth_mode_stops_start_up(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SystemExit, match="CDS_HOOKS_AUTH"):
        make_app(CDS_HOOKS_AUTH="off")


def test_replay_table_unavailable_is_503_not_acceptance(
    make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path
) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    app = make_app(DATABASE_URL=f"sqlite:///{folder / 'log.sqlite3'}")
    assert discover(app, ehr.token(DISCOVERY)).status_code == 200
    app.extensions["decision_log"].engine.dispose()
    shutil.rmtree(folder)
    resp = discover(app, ehr.token(DISCOVERY))
    assert resp.status_code == 503 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_random_kids_cannot_force_a_jwks_fetch_per_request(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    ehr = Ehr("https://jku.example.org", [EhrKey.generate("ES384")])
    host = serve(lambda path, headers: (200, ehr.jwks))
    try:
        issuers = write_issuers(tmp_path / "jku.json", [{"iss": ehr.iss, "jwks_url": host.url + "/jwks.json"}])
        app = make_app(CDS_HOOKS_ISSUERS=str(issuers))
        assert discover(app, ehr.token(DISCOVERY)).status_code == 200
        for _ in range(20):  # each token names a kid never seen before
            assert_bare_401(discover(app, ehr.token(DISCOVERY, key=EhrKey.generate("ES384"))))
        assert len(host.requests) == 1 + auth.UNKNOWN_KID_REFETCHES
        assert discover(app, ehr.token(DISCOVERY)).status_code == 200  # the real key still works
    finally:
        host.close()


class _StallingHost:
    """A TCP server that accepts connections and then sends one byte every `every` seconds, or nothing."""

    def __init__(self, every: float | None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/jwks.json"
        self.connections = 0
        self.every = every
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 200:
                if self.stop.wait(self.every or 60):
                    return
                if self.every is not None:
                    with contextlib.suppress(OSError):
                        conn.sendall(bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("every", [0.2, None], ids=["dripping", "silent"])
def test_a_stalling_jwks_host_costs_one_bounded_wait_a_minute(
    make_app: Callable[..., Flask], ehr: Ehr, tmp_path: Path, every: float | None
) -> None:
    host = _StallingHost(every)
    try:
        issuers = write_issuers(tmp_path / "stall.json", [{"iss": ehr.iss, "jwks_url": host.url}])
        app = make_app(CDS_HOOKS_ISSUERS=str(issuers))
        answers: list[Any] = []
        worker = threading.Thread(target=lambda: answers.extend(discover(app, ehr.token(DISCOVERY)) for _ in range(3)))
        worker.start()
        worker.join(timeout=25)  # the fetch deadline is 3 s; without it the host holds the request for 40 s
        assert not worker.is_alive(), "the JWKS fetch has no overall deadline"
        for resp in answers:
            assert_bare_401(resp)
        assert host.connections == 1  # the failed host is left alone for a minute, not asked per request
    finally:
        host.close()


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_numeric_date_given_as_text_is_refused(app: Flask, ehr: Ehr, claim: str) -> None:
    now = int(time.time())
    key = ehr.keys[0]
    payload: dict[str, Any] = {"iss": ehr.iss, "aud": DISCOVERY, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    payload[claim] = str(payload[claim])  # "1767225600" is not a NumericDate (RFC 7519 section 2)
    token = jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"})
    assert_bare_401(discover(app, token))
