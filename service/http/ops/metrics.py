"""Prometheus metrics: HTTP requests and latency by endpoint and status, decisions by ruleset and option.

gunicorn runs several worker processes, each with its own counters. gunicorn.conf.py therefore sets
PROMETHEUS_MULTIPROC_DIR (a fresh directory) before the app is imported: prometheus_client then keeps
every worker's values in files there, and GET /metrics, whichever worker answers it, adds them all up.
Without that variable (tests, `flask run`) the ordinary in-process registry is used.

Labels are bounded on purpose: `endpoint` is the route template (`/v1/rulesets/<ruleset_id>`), never
the raw path, so random URLs cannot create new series; no label ever carries patient data.
Other channels (CDS Hooks, the web form) call `observe_decision` after `make_decision` to be counted.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from .. import app_context
from ..openapi import SpecContext, document

# `*_created` series exist only in single-process mode; drop them so both modes expose the same series.
disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, in seconds.",
    ["method", "endpoint", "status"],
    buckets=LATENCY_BUCKETS,
)
EVALUATIONS = Counter(
    "decisions_total", "Decisions returned (each batch item counts once).", ["ruleset", "version", "channel"]
)
CANDIDATES = Counter("decision_candidates_total", "Times an option was a candidate.", ["ruleset", "option"])
REFERRALS = Counter("decision_referrals_total", "Times an option was a referral.", ["ruleset", "option"])
EXCLUSIONS = Counter("decision_exclusions_total", "Times an option was excluded.", ["ruleset", "option"])
INVALID = Counter("invalid_profiles_total", "Profiles rejected by validation.", ["channel"])

# Any token is a valid HTTP method; only these become label values, so clients cannot add series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

bp = Blueprint("metrics", __name__)


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: it takes a lock on every call, and this runs on every request.

    The label values are bounded (route templates, status codes, ruleset and option ids), and so is this.
    """
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def observe_decision(decision: dict[str, Any], channel: str) -> None:
    """Count one returned decision: by ruleset and version, and each candidate, referral and exclusion."""
    ruleset = decision["ruleset"]
    rid = ruleset["id"]
    _child(EVALUATIONS, rid, ruleset["version"], channel).inc()
    for item in decision["candidates"]:
        _child(CANDIDATES, rid, item["option"]).inc()
    for item in decision["referrals"]:
        _child(REFERRALS, rid, item["option"]).inc()
    for item in decision["excluded"]:
        _child(EXCLUSIONS, rid, item["option"]).inc()


def observe_invalid(channel: str) -> None:
    _child(INVALID, channel).inc()


def _registry() -> CollectorRegistry:
    if app_context.settings().prometheus_multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _finish(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        endpoint = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        method = request.method if request.method in METHODS else "other"
        labels = (method, endpoint, str(response.status_code))
        _child(REQUESTS, *labels).inc()
        _child(LATENCY, *labels).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.register_blueprint(bp)


@document(bp)
def _paths(ctx: SpecContext) -> None:
    ctx.spec.path(
        "/metrics",
        operations={
            "get": {
                "tags": ["service"],
                "operationId": "getMetrics",
                "summary": "Prometheus metrics, summed over every worker process",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    )
