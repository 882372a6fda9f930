"""deploy/compose.yaml: the service reachable only through nginx. Docker cannot run here, so what is checked
is the file's meaning: it parses, only nginx's port is published, gunicorn stays on loopback, and both
containers get the same body limits. The nginx side of it runs for real in test_proxy.py."""

from __future__ import annotations

import re
from typing import Any

import yaml

from bench.proxy import DEFAULTS, TEMPLATE, placeholders

from .conftest import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def interpolated(value: str) -> str:
    """Compose's `${NAME:-default}` with the variable unset, and `$$` as a literal `$`."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return value.replace("$$", "$")


def test_only_nginx_port_is_published_and_gunicorn_stays_on_loopback() -> None:
    services = compose()["services"]
    assert set(services) == {"app", "proxy"}
    app, proxy = services["app"], services["proxy"]
    assert app["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert app["environment"]["GUNICORN_BIND"] == "127.0.0.1:8000"
    # nginx shares the app's network namespace: the one published port is nginx's, on the host's loopback
    # unless HAIRLOSS_PUBLISH says otherwise.
    assert proxy["network_mode"] == "service:app" and "ports" not in proxy
    assert [interpolated(p) for p in app["ports"]] == ["127.0.0.1:8080:8080"]
    assert proxy["environment"]["NGINX_LISTEN"] == "8080"
    assert proxy["environment"]["HAIRLOSS_UPSTREAM"] == app["environment"]["GUNICORN_BIND"]
    assert "expose" not in app
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"


def test_both_containers_get_the_same_body_limits() -> None:
    app, proxy = compose()["services"]["app"], compose()["services"]["proxy"]
    for name in ("MAX_BODY_BYTES", "CDS_HOOKS_MAX_BODY_BYTES"):
        assert app["environment"][name] == proxy["environment"][name]
        assert interpolated(app["environment"][name]) == DEFAULTS[name]


def test_nginx_renders_the_shipped_template_and_only_its_placeholders() -> None:
    proxy = compose()["services"]["proxy"]
    source, target, mode = proxy["volumes"][0].split(":")
    assert (COMPOSE.parent / source).resolve() == TEMPLATE
    # The official image renders /etc/nginx/templates/X.template to /etc/nginx/conf.d/X (replacing its
    # default.conf) and fills only the variables NGINX_ENVSUBST_FILTER matches.
    assert target == "/etc/nginx/templates/default.conf.template" and mode == "ro"
    names = re.compile(interpolated(proxy["environment"]["NGINX_ENVSUBST_FILTER"]))
    assert all(names.search(n) for n in placeholders())
    assert not any(names.search(n) for n in ("HOSTNAME", "PATH", "HOME", "NGINX_VERSION"))
    assert set(placeholders()) <= set(proxy["environment"])
    assert re.fullmatch(r"nginx:\d+\.\d+-bookworm(@sha256:[0-9a-f]{64})?", proxy["image"])


def test_decision_log_is_a_named_volume() -> None:
    data = compose()
    assert "hairloss-log:/app/instance" in data["services"]["app"]["volumes"]
    assert "hairloss-log" in data["volumes"]
