"""Walk the hash chains and name every record that was edited, deleted or reordered.

Checks, per chain, in seq order: each record's content hashes to its stored hash (else: edited); each
record links to the one before it (else: the record it links to is elsewhere - reordered - or gone -
deleted or rewritten); seq numbers run without gaps; the chain head matches the last record (else:
the newest records were cut off). For ruleset revisions, the stored text must hash to its sha256, the
id, version and option list must be the ones the text declares (audit queries are validated against
the stored options), and every column must match the revision's content_hash (tests_text, stored_at).
The ruleset lifecycle's actions are a chain of their own (`lifecycle`); each published release and each
reviewer sign-off must hash to what the action that stored it recorded (chain.release_hash, signoff_hash).
The lifecycle's current-state tables (stages, worker status, shadows, shadow divergences) change in place
and are not evidence: every change of stage or shadow is itself an action in the chain.
The walk runs in one snapshot (REPEATABLE READ on PostgreSQL, a read transaction on SQLite), so it can
run while the service writes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from ..ruleset.yamlsrc import YamlSyntaxError, parse
from .chain import (
    GENESIS,
    action_content,
    decision_content,
    feedback_content,
    link_hash,
    release_hash,
    revision_hash,
    signoff_hash,
)
from .errors import LogError
from .log import DecisionLog, revision_options
from .models import Card, ChainHead, Decision, Feedback, LifecycleAction, Release, Revision, Signoff

BATCH = 1000


@dataclass(frozen=True)
class Problem:
    chain: str
    seq: int | None
    record: str | None  # decision_id, or the card of a feedback record
    kind: str  # edited | deleted | reordered | renumbered | truncated | revision
    message: str

    def __str__(self) -> str:
        where = f" seq {self.seq}" if self.seq is not None else ""
        what = f" ({self.record})" if self.record else ""
        return f"{self.chain}{where}{what}: {self.kind}: {self.message}"


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)
    revisions: int = 0
    releases: int = 0
    signoffs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(log: DecisionLog) -> Report:
    report = Report()
    conn_options = {"isolation_level": "REPEATABLE READ"} if log.backend == "postgresql" else {}
    try:
        with log.engine.connect().execution_options(**conn_options) as conn, conn.begin():
            heads = {h.name: (h.seq, h.hash) for h in conn.execute(select(ChainHead.__table__))}
            gone = (-1, "")  # a deleted head row: reported as a mismatch
            _walk(
                conn, report, "decisions", Decision, heads.get("decisions", gone), _decision_rows(conn), "decision_id"
            )
            _walk(conn, report, "feedback", Feedback, heads.get("feedback", gone), _feedback_rows(conn), "card_uuid")
            _revisions(conn, report)
            anchors = _Anchors()
            _walk(
                conn,
                report,
                "lifecycle",
                LifecycleAction,
                heads.get("lifecycle", gone),
                _action_rows(conn, anchors),
                "action",
            )
            _releases(conn, report, anchors)
    except SQLAlchemyError as exc:
        raise LogError("the decision log cannot be read") from exc
    return report


def _batches(conn: Connection, model: Any) -> Iterator[list[Any]]:
    last = None
    while True:
        q = select(model.__table__).order_by(model.seq).limit(BATCH)
        if last is not None:
            q = q.where(model.seq > last)
        rows = list(conn.execute(q).all())
        if not rows:
            return
        yield rows
        last = rows[-1].seq


Checked = tuple[Any, str]  # a row and the hash recomputed from its content


def _decision_rows(conn: Connection) -> Iterator[Checked]:
    texts: dict[str, bytes | None] = {}

    def dictionary(sha256: str) -> bytes | None:
        """A revision's text as stored in the log: what format-2 answers are compressed with (answers.py)."""
        if sha256 not in texts:
            text = conn.execute(select(Revision.source_text).where(Revision.sha256 == sha256)).scalar()
            texts[sha256] = text.encode("utf-8") if text is not None else None
        return texts[sha256]

    for rows in _batches(conn, Decision):
        cards: dict[int, list[dict[str, Any]]] = defaultdict(list)
        in_batch = Card.seq.between(rows[0].seq, rows[-1].seq)
        for card in conn.execute(select(Card.__table__).where(in_batch)):
            cards[card.seq].append(card._asdict())
        for row in rows:
            content = decision_content(row._asdict(), cards.get(row.seq, []), dictionary=dictionary)
            yield row, link_hash(row.prev_hash, content)


def _feedback_rows(conn: Connection) -> Iterator[Checked]:
    for rows in _batches(conn, Feedback):
        for row in rows:
            yield row, link_hash(row.prev_hash, feedback_content(row._asdict()))


@dataclass
class _Anchors:
    """What the lifecycle actions recorded of the rows they stored: sha256 -> release hash, sign-off hashes."""

    releases: dict[str, str] = field(default_factory=dict)
    signoffs: set[str] = field(default_factory=set)


def _action_rows(conn: Connection, anchors: _Anchors) -> Iterator[Checked]:
    for rows in _batches(conn, LifecycleAction):
        for row in rows:
            try:
                detail = json.loads(row.detail)
            except ValueError:
                detail = None  # the chain walk reports the edit
            if isinstance(detail, dict):
                if isinstance(detail.get("release"), str) and row.sha256:
                    anchors.releases.setdefault(row.sha256, detail["release"])
                anchors.signoffs.update(s for s in detail.get("signoffs") or () if isinstance(s, str))
            yield row, link_hash(row.prev_hash, action_content(row._asdict()))


def _releases(conn: Connection, report: Report, anchors: _Anchors) -> None:
    """Each release and sign-off against the hash its action recorded (the text against its sha256 too)."""
    for rel in conn.execute(select(Release.__table__).order_by(Release.published_at, Release.sha256)):
        report.releases += 1
        name = f"{rel.ruleset_id} {rel.sha256[:12]}"
        if hashlib.sha256(rel.source_text.encode("utf-8")).hexdigest() != rel.sha256:
            report.problems.append(
                Problem(
                    "ruleset_releases", None, name, "revision", "the stored ruleset text does not hash to its sha256"
                )
            )
        if anchors.releases.get(rel.sha256) != release_hash(rel._asdict()):
            report.problems.append(
                Problem(
                    "ruleset_releases",
                    None,
                    name,
                    "edited",
                    "its columns do not match the hash its publish action recorded",
                )
            )
    for sig in conn.execute(select(Signoff.__table__).order_by(Signoff.added_at, Signoff.jws_sha256)):
        report.signoffs += 1
        name = f"{sig.sha256[:12]} {sig.jws_sha256[:12]}"
        intact = hashlib.sha256(sig.jws.encode("utf-8")).hexdigest() == sig.jws_sha256
        if not intact or signoff_hash(sig._asdict()) not in anchors.signoffs:
            report.problems.append(
                Problem(
                    "ruleset_signoffs",
                    None,
                    name,
                    "edited",
                    "the sign-off does not match the hash the action that added it recorded",
                )
            )


def _walk(
    conn: Connection,
    report: Report,
    chain: str,
    model: Any,
    head: tuple[int, str],
    rows: Iterator[Checked],
    label: str,
) -> None:
    prev_seq, prev_hash, count = 0, GENESIS, 0

    def owner(digest: str) -> int | None:
        return conn.execute(select(model.seq).where(model.hash == digest)).scalar()

    for row, recomputed in rows:
        count += 1
        name = getattr(row, label)
        say = _reporter(report, chain, row.seq, name)
        if recomputed != row.hash:
            say("edited", "its content does not match its hash")
        if row.prev_hash != prev_hash:
            linked = owner(row.prev_hash) if row.prev_hash != GENESIS else 0
            if linked is None:
                say(
                    "deleted",
                    f"it links to a record that is not in the log: the record(s) after seq {prev_seq} "
                    "were deleted or rewritten",
                )
            else:
                say("reordered", f"it links to the record at seq {linked}, not to the one before it (seq {prev_seq})")
        elif row.seq != prev_seq + 1:
            say("renumbered", f"seq follows {prev_seq} although the record links to it: seq numbers were edited")
        prev_seq, prev_hash = row.seq, row.hash
    report.counts[chain] = count
    report.heads[chain] = prev_hash
    head_seq, head_hash = head
    if (head_seq, head_hash) != (prev_seq, prev_hash):
        what = (
            f"the chain head records seq {head_seq} but the log ends at seq {prev_seq}: the newest records were deleted"
            if head_seq > prev_seq
            else f"the chain head (seq {head_seq}) does not match the last record (seq {prev_seq})"
        )
        report.problems.append(Problem(chain, head_seq, None, "truncated", what))


def _reporter(report: Report, chain: str, seq: int, name: str) -> Callable[[str, str], None]:
    def say(kind: str, message: str) -> None:
        report.problems.append(Problem(chain, seq, name, kind, message))

    return say


def _revisions(conn: Connection, report: Report) -> None:
    for rev in conn.execute(select(Revision.__table__).order_by(Revision.stored_at, Revision.sha256)):
        report.revisions += 1

        def say(kind: str, message: str, rev: Any = rev) -> None:
            name = f"{rev.ruleset_id} {rev.sha256[:12]}"
            report.problems.append(Problem("ruleset_revisions", None, name, kind, message))

        if hashlib.sha256(rev.source_text.encode("utf-8")).hexdigest() != rev.sha256:
            say("revision", "the stored ruleset text does not hash to its sha256: replays against it would mislead")
        else:
            for column in _derived_mismatches(rev):
                say(
                    "revision",
                    f"the stored `{column}` is not what the ruleset text declares: "
                    "audit queries and pages would filter by it wrongly",
                )
        if revision_hash(rev._asdict()) != rev.content_hash:
            say("edited", "its columns (tests, options, id, version, time stored) do not match its content_hash")


def _derived_mismatches(rev: Any) -> list[str]:
    """The columns that restate the ruleset text (id, version, option ids) and no longer agree with it."""
    try:
        data = parse(rev.source_text).data
    except YamlSyntaxError:
        return ["source_text"]
    if not isinstance(data, dict):
        return ["source_text"]
    options = data.get("options")
    declared = {
        "ruleset_id": data.get("id"),
        "version": data.get("version"),
        "options": revision_options(options) if isinstance(options, dict) else None,
    }
    return [column for column, value in declared.items() if getattr(rev, column) != value]


def summary_lines(report: Report) -> list[str]:
    lines = [
        f"{chain} chain: {report.counts[chain]} record(s), last hash {report.heads[chain]}"
        for chain in ("decisions", "feedback", "lifecycle")
    ]
    lines.append(f"ruleset revisions: {report.revisions}")
    lines.append(f"ruleset releases: {report.releases}, sign-offs: {report.signoffs}")
    return lines
