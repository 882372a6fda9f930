"""One decision, whatever the channel: pick the ruleset, evaluate, stamp, record.

Every channel (JSON API, batch, CDS Hooks, web form, CLI) goes through `make_decision`, so each answer
carries the same fields and is recorded the same way before it is returned. This module knows nothing
of HTTP; the channels translate its exceptions into their own error formats.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from .decisions.errors import LogError, RecordError
from .engine import InvalidProfile, TooManyCompletions
from .errors import ServiceError
from .registry import Active, Registry

__all__ = [
    "DecisionNotRecorded",
    "InvalidProfile",
    "NoDefaultRuleset",
    "Prepared",
    "Recorder",
    "TooManyCompletions",
    "UnknownRuleset",
    "commit",
    "make_decision",
    "pick_ruleset",
    "prepare",
]


class UnknownRuleset(ServiceError, LookupError):
    status = 404
    slug = "unknown-ruleset"
    title = "Unknown ruleset"

    def __init__(self, ruleset_id: str, known: list[str]) -> None:
        super().__init__(f"unknown ruleset `{ruleset_id}`; loaded: {', '.join(known) or 'none'}")
        self.ruleset_id = ruleset_id
        self.known = known

    @property
    def detail(self) -> str:
        return str(self)  # names rulesets only


class NoDefaultRuleset(ServiceError, LookupError):
    status = 422
    slug = "validation-error"
    title = "Invalid request"

    def __init__(self, known: list[str]) -> None:
        super().__init__(
            "name the ruleset: the default is used only when exactly one production ruleset is loaded "
            f"(loaded: {', '.join(known) or 'none'})"
        )
        self.known = known

    @property
    def detail(self) -> str:
        return str(self)  # names rulesets only


class DecisionNotRecorded(RecordError):
    """The decision log could not store an answer, so the answer is not given: the one route to this 503.

    A RecordError with the message of its cause, so callers of `make_decision` still see what failed; the
    service's own log names only the cause's type, since a database's message can quote patient data.
    """

    slug = "decision-not-recorded"
    title = "Decision not recorded"
    public_detail = "The decision log is unavailable, so no decision is returned; retry later."

    def __init__(self, cause: LogError) -> None:
        super().__init__(str(cause))
        self.cause_type = type(cause).__name__

    @property
    def log_text(self) -> str:
        return self.cause_type


class Recorder(Protocol):
    """The decision log (service/decisions). Both methods raise LogError if they cannot store durably."""

    def record(
        self,
        decision: dict[str, Any],
        *,
        channel: str,
        profile: dict[str, Any],
        latency_ms: float,
        identifiers: dict[str, str] | None = None,
        cards: list[dict[str, Any]] | None = None,
    ) -> None: ...

    def record_feedback(self, service_id: str, items: list[dict[str, Any]]) -> None: ...


def pick_ruleset(registry: Registry, ruleset_id: str | None) -> Active:
    known = [a.ruleset.id for a in registry.all()]
    if ruleset_id is None:
        active = registry.default()
        if active is None:
            raise NoDefaultRuleset(known)
        return active
    active = registry.get(ruleset_id)
    if active is None:
        raise UnknownRuleset(ruleset_id, known)
    return active


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Prepared:
    """An evaluated, stamped decision that is not yet recorded - and so must not be returned yet."""

    decision: dict[str, Any]
    profile: dict[str, Any]
    started: float


def prepare(
    registry: Registry, ruleset_id: str | None, raw_profile: Any, *, explain: bool = False, partial: bool = False
) -> Prepared:
    """Pick the ruleset, validate the profile and evaluate.

    With `partial`, missing required facts are allowed: the decision then holds for every way they could
    be filled in (engine/partial.py) and carries a `partial` section. Raises UnknownRuleset,
    NoDefaultRuleset, InvalidProfile, or TooManyCompletions (partial only).
    """
    started = time.perf_counter()
    active = pick_ruleset(registry, ruleset_id)
    profile = active.engine.check(raw_profile, partial=partial)
    if partial:
        body = active.engine.decide_partial(profile, explain=explain)
    else:
        body = active.engine.decide(profile, explain=explain)
    decision = {"decision_id": str(uuid.uuid4()), "evaluated_at": now_rfc3339(), **body}
    return Prepared(decision, profile, started)


def commit(
    prepared: Prepared,
    recorder: Recorder | None,
    *,
    channel: str,
    identifiers: dict[str, str] | None = None,
    cards: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Record the decision (with the channel's artefacts, e.g. CDS Hooks cards) and hand it out.

    If the recorder cannot store it (LogError), DecisionNotRecorded is raised instead, which every channel
    answers as its 503: an unrecorded answer is never returned. Other errors (a programming error such as
    an unknown identifier kind) propagate as they are.
    """
    latency_ms = (time.perf_counter() - prepared.started) * 1000.0
    if recorder is not None:
        try:
            recorder.record(
                prepared.decision,
                channel=channel,
                profile=prepared.profile,
                latency_ms=latency_ms,
                identifiers=identifiers,
                cards=cards,
            )
        except LogError as exc:
            raise DecisionNotRecorded(exc) from exc
    return prepared.decision


def make_decision(
    registry: Registry,
    ruleset_id: str | None,
    raw_profile: Any,
    *,
    channel: str,
    explain: bool = False,
    recorder: Recorder | None = None,
    identifiers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Validate, evaluate and record one profile; the returned dict is the full decision."""
    prepared = prepare(registry, ruleset_id, raw_profile, explain=explain)
    return commit(prepared, recorder, channel=channel, identifiers=identifiers)
