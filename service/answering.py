"""One decision, whatever the channel: pick the ruleset, evaluate, stamp, record.

Every channel (JSON API, batch, CDS Hooks, web form, CLI) goes through `make_decision`, so each answer
carries the same fields and is recorded the same way before it is returned. This module knows nothing
of HTTP; the channels translate its exceptions into their own error formats.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .decisions.errors import LogError, RecordError
from .engine import InvalidProfile, TooManyCompletions
from .engine.answer import Decision, Warning, WarningKind, to_json
from .errors import ServiceError
from .registry import Active, Registry
from .ruleset.validator import ProfileCheck

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
        decision: Decision,
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
    active = registry.get(ruleset_id) or registry.lookup(ruleset_id)
    if active is None:
        raise UnknownRuleset(ruleset_id, known)
    return active


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Prepared:
    """An evaluated, stamped decision that is not yet recorded - and so must not be returned yet."""

    decision: Decision
    profile: dict[str, Any]
    started: float
    active: Active | None = None
    registry: Registry | None = None


def prepare(
    registry: Registry,
    ruleset_id: str | None,
    raw_profile: Any,
    *,
    explain: bool = False,
    partial: bool = False,
    partly_known: Mapping[str, int] | None = None,
) -> Prepared:
    """Pick the ruleset, validate the profile (unless it comes validated, as a ProfileCheck) and evaluate.

    With `partial`, missing required facts are allowed: the decision then holds for every way they could
    be filled in (engine/partial.py) and carries a `partial` section. Raises UnknownRuleset,
    NoDefaultRuleset, InvalidProfile, or TooManyCompletions (partial only). `partly_known`: set inputs
    whose values are only those found in a record (engine/partly.py), with the items not classified.
    """
    started = time.perf_counter()
    active = pick_ruleset(registry, ruleset_id)
    if (
        isinstance(raw_profile, ProfileCheck)
        and raw_profile.ok
        and raw_profile.ruleset_sha256 == active.ruleset.sha256
        and raw_profile.partial == partial
        and not partly_known
    ):
        profile = raw_profile.profile  # the channel validated it with this revision's validator: not again
    else:
        data = raw_profile.data if isinstance(raw_profile, ProfileCheck) else raw_profile
        profile = active.engine.check(data, partial=partial, partly_known=partly_known)
    if partial:
        body = active.engine.decide_partial(profile, explain=explain)
    else:
        body = active.engine.decide(profile, explain=explain)
    decision = dataclasses.replace(body, decision_id=str(uuid.uuid4()), evaluated_at=now_rfc3339())
    return Prepared(_mark_revision(active, decision), profile, started, active, registry)


def _mark_revision(active: Active, decision: Decision) -> Decision:
    """What the lifecycle adds to an answer: the stage of a testing revision named explicitly, and a
    warning when the ruleset is past its review date (it keeps answering, and says so)."""
    if active.stage != "production":
        decision = dataclasses.replace(decision, ruleset=dataclasses.replace(decision.ruleset, stage=active.stage))
    review_due = active.ruleset.review_due
    if review_due < dt.datetime.now(dt.UTC).date():
        overdue = Warning(
            kind=WarningKind.REVIEW_OVERDUE, text=f"Review overdue: this ruleset was due for review on {review_due}."
        )
        decision = dataclasses.replace(decision, warnings=(*decision.warnings, overdue))
    return decision


def commit(
    prepared: Prepared,
    recorder: Recorder | None,
    *,
    channel: str,
    identifiers: dict[str, str] | None = None,
    cards: list[dict[str, Any]] | None = None,
) -> Decision:
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
    _shadow(prepared)
    return prepared.decision


def _shadow(prepared: Prepared) -> None:
    """Hand a live production decision to the shadow revision (service/lifecycle/shadow.py), off the request path."""
    registry, active = prepared.registry, prepared.active
    if registry is None or active is None or registry.shadow_sink is None or active.stage != "production":
        return
    if prepared.decision.partial is not None:  # a decision over missing facts: nothing comparable to re-evaluate
        return
    if active.ruleset.id in registry.shadow:
        registry.shadow_sink(active, to_json(prepared.decision), prepared.profile)


def make_decision(
    registry: Registry,
    ruleset_id: str | None,
    raw_profile: Any,
    *,
    channel: str,
    explain: bool = False,
    recorder: Recorder | None = None,
    identifiers: dict[str, str] | None = None,
) -> Decision:
    """Validate, evaluate and record one profile; the stamped decision (serialise it with `to_json`)."""
    prepared = prepare(registry, ruleset_id, raw_profile, explain=explain)
    return commit(prepared, recorder, channel=channel, identifiers=identifiers)
