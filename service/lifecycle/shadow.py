"""Shadow mode: every live production decision is also evaluated with a testing revision, off the request path.

The request only puts (decision, profile) on a bounded in-process queue (never waiting: when the queue is
full the item is dropped and counted), after the decision was recorded. A thread per process evaluates it
with the shadow revision and compares candidates, exclusions and referrals; a divergence is stored with the
decision id (`shadow_divergences`) and counted in Prometheus metrics. The answer is never delayed or changed.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from ..engine import InvalidProfile
from ..engine.answer import to_json
from ..registry import Active, Registry
from .impact import _changes
from .store import Store

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000

SHADOW_EVALUATIONS = Counter(
    "ruleset_shadow_evaluations_total",
    "Live decisions evaluated again with the shadow revision, by result (same, diverged, unreadable, dropped).",
    ["ruleset", "result"],
)
SHADOW_DIVERGENCES = Counter(
    "ruleset_shadow_divergences_total", "Differences the shadow revision would have made, by kind.", ["ruleset", "kind"]
)


@dataclass(eq=False)
class ShadowRunner:
    store: Store
    registry: Registry
    _queue: queue.Queue[tuple[Active, Active, dict[str, Any], dict[str, Any]] | None] = field(
        default_factory=lambda: queue.Queue(QUEUE_SIZE)
    )
    _pid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, active: Active, decision: dict[str, Any], profile: dict[str, Any]) -> None:
        """Called on the request path: enqueue and return at once."""
        shadow = self.registry.shadow.get(active.ruleset.id)
        if shadow is None:
            return
        self._start()
        try:
            self._queue.put_nowait((active, shadow, decision, profile))
        except queue.Full:
            SHADOW_EVALUATIONS.labels(active.ruleset.id, "dropped").inc()

    def _start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.Queue(QUEUE_SIZE)  # a forked child must not share its parent's queue
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="ruleset-shadow", daemon=True).start()

    def drain(self) -> None:
        """Wait until every submitted decision was evaluated (for tests and orderly shutdown)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is not None:
                    self._evaluate(*item)
            except Exception as exc:  # a shadow failure must never reach a request
                log.warning("shadow evaluation failed: %s", type(exc).__name__)
            finally:
                self._queue.task_done()

    def _evaluate(self, active: Active, shadow: Active, decision: dict[str, Any], profile: dict[str, Any]) -> None:
        rid = active.ruleset.id
        recorded = {
            "candidates": {c["option"] for c in decision["candidates"]},
            "excluded": {e["option"] for e in decision["excluded"]},
            "referrals": {r["option"] for r in decision["referrals"]},
        }
        try:
            body = to_json(shadow.engine.decide(shadow.engine.check(profile)))
        except InvalidProfile as exc:
            kinds = [f"not readable by the shadow: {exc.errors[0].message if exc.errors else exc}"]
            SHADOW_EVALUATIONS.labels(rid, "unreadable").inc()
        else:
            now = {
                "candidates": {c["option"] for c in body["candidates"]},
                "excluded": {e["option"] for e in body["excluded"]},
                "referrals": {r["option"] for r in body["referrals"]},
            }
            kinds = _changes(shadow.ruleset, recorded, now)
            SHADOW_EVALUATIONS.labels(rid, "diverged" if kinds else "same").inc()
        if not kinds:
            return
        for kind in kinds:
            SHADOW_DIVERGENCES.labels(rid, kind).inc()
        self.store.record_divergence(decision["decision_id"], rid, active.ruleset.sha256, shadow.ruleset.sha256, kinds)
