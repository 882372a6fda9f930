"""Environment configuration of the service and of gunicorn: defaults, overrides, clear errors."""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path

import pytest

from service import config, create_app

SERVICE = Path(__file__).resolve().parents[2] / "service"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RULESETS_DIR", "MAX_BODY_BYTES", "LOG_LEVEL", "BATCH_LIMIT", "GUNICORN_BIND", "GUNICORN_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    app = config.from_env()
    assert app["MAX_CONTENT_LENGTH"] == 1_048_576 and app["BATCH_LIMIT"] == 1000 and app["LOG_LEVEL"] == "INFO"
    assert app["RULESETS_DIR"].endswith("rulesets")
    server = config.gunicorn_from_env()
    assert server["bind"] == ["127.0.0.1:8000"]
    assert server["workers"] == (os.cpu_count() or 1)
    assert server["accesslog"] == "-" and server["control_socket"] is None


def test_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("BATCH_LIMIT", "10")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:9000, [::1]:9000")
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_ACCESS_LOG", "off")
    monkeypatch.setenv("GUNICORN_CONTROL_SOCKET", "/run/app/gunicorn.ctl")
    app = config.from_env()
    assert (app["MAX_CONTENT_LENGTH"], app["BATCH_LIMIT"], app["LOG_LEVEL"]) == (2048, 10, "DEBUG")
    server = config.gunicorn_from_env()
    assert server["bind"] == ["0.0.0.0:9000", "[::1]:9000"]
    assert (server["workers"], server["accesslog"], server["loglevel"]) == (3, None, "debug")
    assert server["control_socket"] == "/run/app/gunicorn.ctl"


def test_web_concurrency_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert config.gunicorn_from_env()["workers"] == 5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_BODY_BYTES", "1MB", "MAX_BODY_BYTES must be a whole number, not '1MB'"),
        ("BATCH_LIMIT", "0", "BATCH_LIMIT must be at least 1, not 0"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'LOUD'"),
    ],
)
def test_bad_values_stop_the_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=message):
        config.from_env()


def test_settings_are_one_frozen_typed_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_HOOKS_CORS_ORIGINS", "https://ehr.example/, https://other.example")
    monkeypatch.setenv("CDS_HOOKS_FHIR_TIMEOUT_MS", "1500")
    settings, flask_config = config.load({"BATCH_LIMIT": 7, "TESTING": True})
    assert settings.batch_limit == 7 and settings.cds_hooks_fhir_timeout == 1.5
    assert settings.cds_hooks_cors_origins == {"https://ehr.example", "https://other.example"}
    assert flask_config["TESTING"] is True and flask_config["MAX_CONTENT_LENGTH"] == settings.max_body_bytes
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_limit = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CDS_HOOKS_AUTH", "maybe", "CDS_HOOKS_AUTH must be enabled or disabled, not 'maybe'"),
        ("CDS_HOOKS_MAX_BODY_BYTES", "big", "CDS_HOOKS_MAX_BODY_BYTES must be a whole number, not 'big'"),
    ],
)
def test_a_bad_value_stops_create_app_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=message):
        create_app()


def test_only_the_configuration_module_reads_the_environment() -> None:
    readers = []
    for path in sorted(SERVICE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(f"{path.relative_to(SERVICE.parent)}:{node.lineno}")
    assert readers and all(r.startswith("service/config.py:") for r in readers), readers
