"""Reading the decision log back: one record, filtered pages with opaque cursors, CSV rows, feedback counts.

Pages run newest first. A cursor is the seq to continue below (older records) or, for the auditor pages'
"newer" link, above; it is bound to a fingerprint of the filters it was issued for, so a cursor reused
with other filters is refused instead of silently skipping records.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Row, Select, or_, select
from sqlalchemy.exc import SQLAlchemyError

from . import answers
from .chain import DECISION_FIELDS
from .errors import LogError
from .log import DecisionLog
from .models import IDENTIFIER_COLUMNS, Card, Decision, Feedback, Revision

ROLE_COLUMNS = {"candidate": Decision.candidates, "excluded": Decision.excluded, "referral": Decision.referrals}
ROLES = tuple(ROLE_COLUMNS)
# Everything of a record but the full decision text, which only the single-record view returns.
SUMMARY_COLUMNS = tuple(getattr(Decision, c) for c in ("seq", *DECISION_FIELDS, "hash") if c != "decision")

CSV_HEADER = (
    "seq",
    "decision_id",
    "evaluated_at",
    "channel",
    "ruleset_id",
    "ruleset_version",
    "ruleset_sha256",
    "candidates",
    "excluded",
    "referrals",
    "fired_rules",
    "latency_ms",
    "patient_hash",
    "user_hash",
    "hook_instance_hash",
    "profile",
    "hash",
)


MAX_SEQ = 2**63 - 1  # seq is a signed 64-bit integer (BIGINT) in the log


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    ruleset: str | None = None
    option: str | None = None
    role: str | None = None  # with option: only decisions naming it in this role
    channel: str | None = None
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    patient_hash: str | None = None
    user_hash: str | None = None
    hook_instance_hash: str | None = None

    def fingerprint(self) -> str:
        plain = {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in asdict(self).items()}
        return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(filters: Filters, before_seq: int) -> str:
    raw = json.dumps({"b": before_seq, "f": filters.fingerprint()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_newer_cursor(filters: Filters, after_seq: int) -> str:
    """A cursor to the records newer than `after_seq` (the pages' "newer" link; the JSON list has none)."""
    raw = json.dumps({"a": after_seq, "f": filters.fingerprint()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(filters: Filters, cursor: str) -> tuple[str, int]:
    """("older", seq) to continue below seq, or ("newer", seq) to continue above it."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        fingerprint = data["f"]
        direction, seq = ("older", data["b"]) if "b" in data else ("newer", data["a"])
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise BadCursor("`cursor` is not a cursor this service issued; use `next_cursor` as returned") from None
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:  # a forged seq past 64 bits overflows the database
        raise BadCursor("`cursor` is not a cursor this service issued; use `next_cursor` as returned")
    if fingerprint != filters.fingerprint():
        raise BadCursor("`cursor` was issued for other filters; repeat the same filters with it, or drop it")
    return direction, seq


def decode_cursor(filters: Filters, cursor: str) -> int:
    direction, before = decode_position(filters, cursor)
    if direction != "older":
        raise BadCursor("`cursor` is not a cursor this service issued; use `next_cursor` as returned")
    return before


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summary(row: Row[Any]) -> dict[str, Any]:
    """A record as the list endpoint shows it: what was asked, what was answered, under which revision."""
    item = {
        "decision_id": row.decision_id,
        "seq": row.seq,
        "evaluated_at": _rfc3339(row.evaluated_at),
        "channel": row.channel,
        "ruleset": {"id": row.ruleset_id, "version": row.ruleset_version, "sha256": row.ruleset_sha256},
        "profile": json.loads(row.profile),
        "candidates": json.loads(row.candidates),
        "excluded": json.loads(row.excluded),
        "referrals": json.loads(row.referrals),
        "fired_rules": json.loads(row.fired_rules),
        "latency_ms": row.latency_us / 1000,
    }
    identifiers = {c: getattr(row, c) for c in IDENTIFIER_COLUMNS if getattr(row, c)}
    if identifiers:
        item["identifiers"] = identifiers
    return item


def csv_row(row: Row[Any]) -> list[Any]:
    item = summary(row)
    return [
        row.seq,
        row.decision_id,
        item["evaluated_at"],
        row.channel,
        row.ruleset_id,
        row.ruleset_version,
        row.ruleset_sha256,
        " ".join(item["candidates"]),
        " ".join(item["excluded"]),
        " ".join(item["referrals"]),
        " ".join(item["fired_rules"]),
        item["latency_ms"],
        row.patient_hash or "",
        row.user_hash or "",
        row.hook_instance_hash or "",
        row.profile,
        row.hash,
    ]


def _filtered(filters: Filters) -> Select[Any]:
    q = select(*SUMMARY_COLUMNS)
    for column in ("ruleset", "channel", *IDENTIFIER_COLUMNS):
        value = getattr(filters, column)
        if value is not None:
            q = q.where(getattr(Decision, "ruleset_id" if column == "ruleset" else column) == value)
    if filters.since is not None:
        q = q.where(Decision.evaluated_at >= filters.since)
    if filters.until is not None:
        q = q.where(Decision.evaluated_at < filters.until)
    if filters.option is not None:
        # The hashed JSON lists hold option ids in quotes, so `"oral"` matches oral and never oral_high.
        quoted = f'"{filters.option}"'
        roles = [filters.role] if filters.role is not None else list(ROLE_COLUMNS)
        q = q.where(or_(*(ROLE_COLUMNS[r].contains(quoted, autoescape=True) for r in roles)))
    return q


def _rows(log: DecisionLog, q: Select[Any]) -> list[Row[Any]]:
    try:
        with log.engine.connect() as conn:
            return list(conn.execute(q).all())
    except SQLAlchemyError as exc:
        raise LogError("the decision log cannot be read") from exc


def search(log: DecisionLog, filters: Filters, *, limit: int, cursor: str | None = None) -> Page:
    """One page of matching records, newest first. Raises BadCursor for a foreign or stale cursor."""
    q = _filtered(filters)
    if cursor:
        q = q.where(Decision.seq < decode_cursor(filters, cursor))
    rows = _rows(log, q.order_by(Decision.seq.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([summary(r) for r in rows], encode_cursor(filters, rows[-1].seq) if more else None)


@dataclass(frozen=True)
class Window:
    """A page of the auditor pages: newest first, with cursors to the older and the newer neighbours."""

    items: list[dict[str, Any]]
    older: str | None
    newer: str | None


def browse(log: DecisionLog, filters: Filters, *, limit: int, cursor: str | None = None) -> Window:
    """One page of matching records, newest first, paged both ways. Raises BadCursor like `search`."""
    direction, seq = decode_position(filters, cursor) if cursor else ("older", None)
    q = _filtered(filters)
    if direction == "older":
        if seq is not None:
            q = q.where(Decision.seq < seq)
        rows = _rows(log, q.order_by(Decision.seq.desc()).limit(limit))
    else:
        rows = _rows(log, q.where(Decision.seq > seq).order_by(Decision.seq.asc()).limit(limit))[::-1]
    if not rows:
        return Window([], None, None)
    older = _exists(log, filters, Decision.seq < rows[-1].seq)
    newer = _exists(log, filters, Decision.seq > rows[0].seq)
    return Window(
        [summary(r) for r in rows],
        encode_cursor(filters, rows[-1].seq) if older else None,
        encode_newer_cursor(filters, rows[0].seq) if newer else None,
    )


def _exists(log: DecisionLog, filters: Filters, *where: Any) -> bool:
    return bool(_rows(log, _filtered(filters).where(*where).limit(1)))


def iterate(log: DecisionLog, filters: Filters, batch: int = 500) -> Iterator[Row[Any]]:
    """Every matching record, newest first, read in short transactions (for the CSV export)."""
    before: int | None = None
    while True:
        q = _filtered(filters)
        if before is not None:
            q = q.where(Decision.seq < before)
        rows = _rows(log, q.order_by(Decision.seq.desc()).limit(batch))
        yield from rows
        if len(rows) < batch:
            return
        before = rows[-1].seq


def get(log: DecisionLog, decision_id: str) -> dict[str, Any] | None:
    """The full record: the summary, the decision as answered, its cards with their feedback, chain links."""
    try:
        with log.engine.connect() as conn:
            row = conn.execute(
                select(
                    *SUMMARY_COLUMNS, Decision.decision, Decision.record_format, Decision.answer, Decision.prev_hash
                ).where(Decision.decision_id == decision_id)
            ).first()
            if row is None:
                return None
            cards = conn.execute(select(Card.__table__).where(Card.seq == row.seq).order_by(Card.position)).all()
            feedback = conn.execute(
                select(Feedback.__table__).where(Feedback.decision_id == decision_id).order_by(Feedback.seq)
            ).all()
    except SQLAlchemyError as exc:
        raise LogError("the decision log cannot be read") from exc
    record = summary(row)
    try:
        record["decision"] = answers.answer_json(row._asdict(), log.stored_revision_text)
    except (answers.BadAnswer, ValueError) as exc:
        raise LogError(f"the stored answer of decision {decision_id} cannot be read; run `decisions verify`") from exc
    record["cards"] = [
        {
            "uuid": c.uuid,
            "option": c.option,
            "indicator": c.indicator,
            "summary": c.summary,
            "rules": json.loads(c.rules),
        }
        for c in cards
    ]
    record["feedback"] = [_feedback(f) for f in feedback]
    record["chain"] = {"seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash}
    return record


def _feedback(f: Row[Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": f.card_uuid,
        "service": f.service_id,
        "outcome": f.outcome,
        "outcomeTimestamp": _rfc3339(f.outcome_timestamp),
        "received_at": _rfc3339(f.received_at),
    }
    if f.override_reason:
        item["overrideReason"] = json.loads(f.override_reason)
    if f.accepted_suggestions:
        item["acceptedSuggestions"] = [{"id": s} for s in json.loads(f.accepted_suggestions)]
    return item


def known_options(log: DecisionLog) -> dict[str, set[str]]:
    """Ruleset id -> every option id any stored revision of it defines (the vocabulary of audit queries)."""
    out: dict[str, set[str]] = {}
    for ruleset_id, options in _rows(log, select(Revision.ruleset_id, Revision.options)):
        out.setdefault(ruleset_id, set()).update(json.loads(options))
    return out


def known_channels(log: DecisionLog) -> list[str]:
    return sorted(r[0] for r in _rows(log, select(Decision.channel).distinct()))


def feedback_by_rule(log: DecisionLog, ruleset_id: str | None = None) -> list[dict[str, Any]]:
    """Accepted and overridden CDS Hooks feedback per rule behind the cards (for the rule review cycle)."""
    return [
        {k: item[k] for k in ("ruleset", "rule", "accepted", "overridden")}
        for item in feedback_report(log, ruleset_id)["rules"]
    ]


def feedback_report(log: DecisionLog, ruleset_id: str | None = None) -> dict[str, Any]:
    """Feedback per rule behind the cards, with the override reasons given, and on cards tied to no rule.

    A card counts for every rule behind its option, so a card from two rules counts for both. Cards that
    name no option (a summary of exclusions, a request for missing facts) have no rules: their feedback is
    reported per ruleset under `without_rule`, so that no feedback goes uncounted. Override reasons are
    counted by coding (system and code); free-text comments are not part of this report.
    """
    q = select(Decision.ruleset_id, Card.rules, Feedback.outcome, Feedback.override_reason)
    q = q.join(Card, Feedback.card_uuid == Card.uuid).join(Decision, Decision.seq == Card.seq)
    if ruleset_id is not None:
        q = q.where(Decision.ruleset_id == ruleset_id)
    tallies: dict[tuple[str, str | None], _Tally] = {}
    for rs, rules, outcome, reason in _rows(log, q):
        for rule in json.loads(rules) or [None]:
            tallies.setdefault((rs, rule), _Tally()).add(outcome, reason)
    ordered = sorted(tallies.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    return {
        "rules": [{"ruleset": rs, "rule": rule, **t.as_dict()} for (rs, rule), t in ordered if rule is not None],
        "without_rule": [{"ruleset": rs, **t.as_dict()} for (rs, rule), t in ordered if rule is None],
    }


@dataclass
class _Tally:
    accepted: int = 0
    overridden: int = 0
    unexplained: int = 0
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    displays: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, outcome: str, reason_json: str | None) -> None:
        if outcome == "accepted":
            self.accepted += 1
            return
        self.overridden += 1
        coding = json.loads(reason_json).get("reason") if reason_json else None
        if coding is None:
            self.unexplained += 1
            return
        key = (coding["system"], coding["code"])
        self.reasons[key] += 1
        self.displays.setdefault(key, coding.get("display", ""))

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "overridden": self.overridden,
            "override_reasons": [
                {"system": system, "code": code, "display": self.displays[(system, code)], "count": n}
                for (system, code), n in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "overridden_without_reason": self.unexplained,
        }
