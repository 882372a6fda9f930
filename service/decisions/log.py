"""The decision log: the real `Recorder` of service/answering.py, appending to a hash chain before answering.

One append is one transaction: store the ruleset revision if the log lacks it, lock the chain head,
insert the decision with its CDS Hooks cards, move the head, commit. The lock is
SQLite's write lock (BEGIN IMMEDIATE, see database.py) or, on PostgreSQL, SELECT ... FOR UPDATE on the
chain-head row, so appends from every worker process and replica form one unbroken chain. Any database
failure raises RecordError and nothing of the record remains; the caller must not answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from ..engine.answer import Decision as AnswerDecision
from ..engine.answer import encode
from ..ruleset.model import Ruleset
from . import answers
from . import feedback as fb
from .appends import Appends
from .chain import canonical, decision_content, feedback_content, link_hash, revision_hash
from .database import WRITE, Timeouts, connect
from .errors import ConfigurationError, ConflictingFeedback, InvalidFeedback, LogError, RecordError
from .identifiers import IdentifierKey
from .migrate import upgrade
from .models import Card, ChainHead, Decision, Feedback, Revision, Setting

log = logging.getLogger(__name__)

KEY_SETTING = "identifier_key_fingerprint"
# Start-up may wait for another replica's migration; requests never wait this long (Timeouts).
STARTUP = Timeouts(operation_ms=300_000, query_ms=300_000)
MIN_FREE_MB = 64
# Every table an append writes: the readiness probe takes the lock an INSERT takes on each (PostgreSQL).
APPENDED = ("ruleset_revisions", "decisions", "decision_cards", "feedback", "chain_heads")


@dataclass(frozen=True)
class FeedbackResult:
    stored: int
    repeated: int


def outcome(decision: AnswerDecision) -> dict[str, list[str]]:
    """What an answer consisted of, as ids: the columns the log keeps and replay compares."""
    return {
        "candidates": [c.option for c in decision.candidates],
        "excluded": [e.option for e in decision.excluded],
        "referrals": [r.option for r in decision.referrals],
        "fired_rules": list(decision.fired_rules),
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _failure(exc: Exception) -> str:
    """The database's reason without SQL or parameters (hide_parameters is on; the statement is cut too)."""
    orig = getattr(exc, "orig", None)
    reason = str(orig if orig is not None else exc).strip().splitlines()[0]
    return f"{type(orig or exc).__name__}: {reason}"


@dataclass(frozen=True)
class Entry:
    """One decision to append, with what its channel adds (see DecisionLog.record)."""

    decision: AnswerDecision
    channel: str
    profile: dict[str, Any]
    latency_ms: float
    identifiers: dict[str, str] | None = None
    cards: list[dict[str, Any]] | None = None
    answer: bytes | None = None


class DecisionLog:
    """Append decisions and feedback; see queries.py, replay.py and verify.py for reading them back."""

    def __init__(
        self,
        engine: Engine,
        key: IdentifierKey,
        revisions: Callable[[str], Ruleset | None],
        min_free_mb: int = MIN_FREE_MB,
    ) -> None:
        self.engine = engine
        self.min_free_mb = min_free_mb
        self.writer = engine.execution_options(**WRITE)
        self.key = key
        self._revisions = revisions
        self._stored: set[str] = set()
        self._texts: dict[str, bytes] = {}
        self._stored_lock = threading.Lock()
        self._appends = Appends(engine)
        # Appends run on the driver's cursor: its errors are not wrapped in SQLAlchemy's.
        self._failures: tuple[type[Exception], ...] = (SQLAlchemyError, engine.dialect.loaded_dbapi.Error)

    @classmethod
    def open(
        cls,
        url: str,
        key: IdentifierKey,
        revisions: Callable[[str], Ruleset | None] = lambda sha256: None,
        sqlite_sync: str = "NORMAL",
        timeouts: Timeouts | None = None,
        min_free_mb: int = MIN_FREE_MB,
    ) -> DecisionLog:
        """Connect, migrate to the newest schema and check the identifier key; LogError if unreachable.

        The migration runs on an engine of its own with start-up timeouts (waiting minutes for another
        replica's migration is right at start-up, never in a request); it is closed afterwards, so no
        connection is inherited by gunicorn workers forked after this.
        """
        timeouts = timeouts or Timeouts()
        engine = connect(url, sqlite_sync, timeouts)
        startup = connect(url, sqlite_sync, Timeouts(STARTUP.operation_ms, timeouts.connect_ms, STARTUP.query_ms))
        try:
            with startup.execution_options(**WRITE).begin() as conn:
                upgrade(conn)
                _check_key(conn, key)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise LogError(f"the decision log database cannot be opened: {_failure(exc)}") from exc
        except ConfigurationError:
            engine.dispose()
            raise
        finally:
            startup.dispose()
        return cls(engine, key, revisions, min_free_mb)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        """Close every connection. The log stays usable: connections are opened again when needed."""
        self._appends.close()
        self.engine.dispose()

    def ping(self) -> None:
        """Raise LogError unless the database answers and holds the log's tables."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(ChainHead.seq).where(ChainHead.name == "decisions")).one()
        except SQLAlchemyError as exc:
            raise LogError(f"the decision log database is unreachable: {_failure(exc)}") from exc

    def cannot_record(self) -> str | None:
        """Why an append would fail now (a public reason, details go to the log), or None if it would not.

        The readiness probe: a disk without room for the log (SQLite), or a write that cannot take the
        locks an append takes within the operation timeout - a table lock held by another connection, a
        stuck transaction holding the chain head, an exclusive SQLite lock. Nothing is written.
        """
        if self.backend == "sqlite":
            full = self._disk_full()
            if full:
                return full
        try:
            with self.writer.connect() as conn:
                tx = conn.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
                try:
                    if self.backend == "postgresql":
                        conn.execute(text(f"LOCK TABLE {', '.join(APPENDED)} IN ROW EXCLUSIVE MODE"))
                    head = select(ChainHead.seq).where(ChainHead.name == "decisions").with_for_update()
                    conn.execute(head).one()
                finally:
                    tx.rollback()
        except self._failures as exc:  # BEGIN IMMEDIATE runs on the driver (database.py): its errors are not wrapped
            log.warning("readiness: the decision log cannot take a write: %s", _failure(exc))
            return "the database does not take writes in time"
        return None

    def _disk_full(self) -> str | None:
        database = self.engine.url.database or ""
        path = database.removeprefix("file:").split("?", 1)[0]
        if not path or path == ":memory:":
            return None
        try:
            free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
        except OSError as exc:
            log.warning("readiness: free space of the decision log's disk unknown: %s", exc)
            return None
        if free < self.min_free_mb * 1024 * 1024:
            log.warning("readiness: %d MB free beside the decision log, under DECISION_LOG_MIN_FREE_MB", free >> 20)
            return "the disk holding the decision log is full"
        return None

    # ---- ruleset revisions ----------------------------------------------------------------------

    def store_revisions(self, rulesets: Iterable[Ruleset]) -> None:
        """Store activated revisions that the log does not hold yet (at start-up, after a reload)."""
        pending = [r for r in rulesets if r.sha256 not in self._stored]
        if not pending:
            return
        sql = self._appends
        try:
            with sql.transaction() as dbapi:
                for ruleset in pending:
                    sql.run(dbapi, sql.revision, _revision_row(ruleset))
        except self._failures as exc:
            raise RecordError(f"ruleset revisions were not stored: {_failure(exc)}") from exc
        with self._stored_lock:
            self._stored.update(r.sha256 for r in pending)

    def _revision_to_store(self, sha256: str) -> Ruleset | None:
        if sha256 in self._stored:
            return None
        ruleset = self._revisions(sha256)
        if ruleset is not None:
            return ruleset
        try:
            with self.engine.connect() as conn:
                known = conn.execute(select(Revision.sha256).where(Revision.sha256 == sha256)).first()
        except SQLAlchemyError as exc:
            raise RecordError(f"the decision log cannot be read: {_failure(exc)}") from exc
        if known is None:
            raise RecordError(
                f"ruleset revision {sha256[:12]} is not stored in the decision log and its text is not known "
                "here, so the decision could never be replayed; it was not recorded"
            )
        with self._stored_lock:
            self._stored.add(sha256)
        return None

    def revision_text(self, sha256: str) -> bytes:
        """The source text of a revision (the dictionary its answers are compressed with, answers.py)."""
        found = self._texts.get(sha256)
        if found is not None:
            return found
        ruleset = self._revisions(sha256)
        if ruleset is not None:
            text = ruleset.source_text
        else:
            try:
                with self.engine.connect() as conn:
                    text = conn.execute(select(Revision.source_text).where(Revision.sha256 == sha256)).scalar()
            except SQLAlchemyError as exc:
                raise RecordError(f"the decision log cannot be read: {_failure(exc)}") from exc
            if text is None:
                raise RecordError(f"ruleset revision {sha256[:12]} is not stored in the decision log")
        found = text.encode("utf-8")
        with self._stored_lock:
            if len(self._texts) >= 16:
                self._texts.clear()
            self._texts[sha256] = found
        return found

    def stored_revision_text(self, sha256: str) -> bytes | None:
        """As revision_text, None if neither the service nor the log knows the revision (reading records)."""
        try:
            return self.revision_text(sha256)
        except RecordError:
            return None

    # ---- decisions --------------------------------------------------------------------------------

    def record(
        self,
        decision: AnswerDecision,
        *,
        channel: str,
        profile: dict[str, Any],
        latency_ms: float,
        identifiers: dict[str, str] | None = None,
        cards: list[dict[str, Any]] | None = None,
        answer: bytes | None = None,
    ) -> None:
        """Append one decision; returns only once it is committed. Raises RecordError if it could not be.

        `answer` is the decision's encoding as the channel sends it (`encode(decision)`, which is what is
        used when it is left out): those bytes are stored, compressed, and hashed (answers.py); a decision
        with an explanation is stored without it.
        """
        self.record_many(
            [Entry(decision, channel, profile, latency_ms, identifiers, cards, answer)],
        )

    def record_many(self, entries: list[Entry]) -> None:
        """Append decisions in one transaction, in order: all are committed, or none (RecordError).

        A batch pays for one chain-head lock and one commit instead of one per decision.
        """
        prepared = []
        revisions: dict[str, Ruleset] = {}
        for e in entries:
            if e.decision.explanation is not None:
                # Kept without its explanation (issue 16, bounded recorded bytes): tens of kilobytes that
                # follow from the profile and the stored revision, which replay recomputes.
                answer = encode(dataclasses.replace(e.decision, explanation=None))
            else:
                answer = encode(e.decision) if e.answer is None else e.answer
            sha256 = e.decision.ruleset.sha256
            if sha256 not in revisions:
                revision = self._revision_to_store(sha256)
                if revision is not None:
                    revisions[sha256] = revision
            row = self._decision_row(e.decision, e.channel, e.profile, e.latency_ms, e.identifiers, answer)
            card_rows = _card_rows(e.decision, e.cards or [])
            prepared.append((row, card_rows, answers.digest(answer)))
        if not prepared:
            return
        sql = self._appends
        try:
            with sql.transaction() as dbapi:
                for revision in revisions.values():
                    sql.run(dbapi, sql.revision, _revision_row(revision))
                seq, digest = sql.lock_head(dbapi, "decisions")
                rows, cards = [], []
                for row, card_rows, answer_sha256 in prepared:
                    prev_hash, digest = digest, link_hash(digest, decision_content(row, card_rows, answer_sha256))
                    rows.append({**row, "seq": seq, "prev_hash": prev_hash, "hash": digest})
                    cards.extend({"seq": seq, **c} for c in card_rows)
                    seq += 1
                sql.run_many(dbapi, sql.decision, rows)
                if cards:
                    sql.run_many(dbapi, sql.cards, cards)
                sql.move(dbapi, "decisions", seq - 1, digest)
        except self._failures as exc:
            first = prepared[0][0]["decision_id"]
            what = f"decision {first}" if len(prepared) == 1 else f"{len(prepared)} decisions (from {first})"
            raise RecordError(f"{what} was not recorded: {_failure(exc)}") from exc
        if revisions:
            with self._stored_lock:
                self._stored.update(revisions)

    def _decision_row(
        self,
        decision: AnswerDecision,
        channel: str,
        profile: dict[str, Any],
        latency_ms: float,
        identifiers: dict[str, str] | None,
        answer: bytes,
    ) -> dict[str, Any]:
        if not isinstance(channel, str) or not 0 < len(channel) <= 40:
            raise ValueError("channel must be a short name such as `api` or `cds-hooks`")
        if decision.decision_id is None or decision.evaluated_at is None:
            raise ValueError("only a stamped decision (service/answering.py) is recorded")
        ruleset = decision.ruleset
        return {
            "decision_id": decision.decision_id,
            "evaluated_at": dt.datetime.fromisoformat(decision.evaluated_at).astimezone(dt.UTC),
            "channel": channel,
            "ruleset_id": ruleset.id,
            "ruleset_version": ruleset.version,
            "ruleset_sha256": ruleset.sha256,
            "profile": canonical(profile),
            **{column: canonical(ids) for column, ids in outcome(decision).items()},
            "latency_us": round(latency_ms * 1000),
            "decision": "",  # format 2: the answer is in `answer`
            "record_format": answers.CURRENT,
            "answer": answers.pack(answer, ruleset.sha256, self.revision_text(ruleset.sha256)),
            **self.key.columns(identifiers),
        }

    # ---- feedback ---------------------------------------------------------------------------------

    def record_feedback(self, service_id: str, items: list[dict[str, Any]]) -> FeedbackResult:
        """Append CDS Hooks feedback for cards this service issued. A repeated report is a no-op.

        Raises InvalidFeedback (nothing stored) for malformed items or unknown cards, RecordError if the
        database cannot take the write.
        """
        if not isinstance(service_id, str) or not 0 < len(service_id) <= 100:
            raise ValueError("service_id must be the CDS service id the feedback was posted to")
        rows = fb.check_items(items)
        if not rows:
            return FeedbackResult(0, 0)
        uuids = sorted({r["card_uuid"] for r in rows})
        stored = repeated = 0
        sql = self._appends
        try:
            with self.writer.begin() as conn:
                cards = {
                    r.uuid: r
                    for r in conn.execute(
                        select(Card.uuid, Card.service_id, Card.suggestions, Decision.decision_id)
                        .join(Decision, Decision.seq == Card.seq)
                        .where(Card.uuid.in_(uuids))
                    )
                }
                issued = {u: r.decision_id for u, r in cards.items()}
                problems = fb.against_cards(rows, cards, service_id)
                if problems:
                    raise InvalidFeedback(problems)
                stored_reports = {
                    (r.card_uuid, r.outcome, r.outcome_timestamp): (r.override_reason, r.accepted_suggestions)
                    for r in conn.execute(
                        select(
                            Feedback.card_uuid,
                            Feedback.outcome,
                            Feedback.outcome_timestamp,
                            Feedback.override_reason,
                            Feedback.accepted_suggestions,
                        ).where(Feedback.card_uuid.in_(uuids))
                    )
                }
                conflicts = fb.conflicts(rows, stored_reports)
                if conflicts:
                    raise ConflictingFeedback(conflicts)
                seen = set(stored_reports)
                dbapi = conn.connection.dbapi_connection
                seq, prev_hash = sql.lock_head(dbapi, "feedback")
                received = _now()
                for row in rows:
                    report = (row["card_uuid"], row["outcome"], row["outcome_timestamp"])
                    if report in seen:
                        repeated += 1
                        continue
                    seen.add(report)
                    full = {
                        **row,
                        "decision_id": issued[row["card_uuid"]],
                        "service_id": service_id,
                        "received_at": received,
                    }
                    digest = link_hash(prev_hash, feedback_content(full))
                    sql.run(dbapi, sql.feedback, {**full, "seq": seq, "prev_hash": prev_hash, "hash": digest})
                    seq, prev_hash = seq + 1, digest
                    stored += 1
                if stored:
                    sql.move(dbapi, "feedback", seq - 1, prev_hash)
        except self._failures as exc:
            raise RecordError(f"feedback was not recorded: {_failure(exc)}") from exc
        return FeedbackResult(stored, repeated)


def _revision_row(ruleset: Ruleset) -> dict[str, Any]:
    row = {
        "sha256": ruleset.sha256,
        "ruleset_id": ruleset.id,
        "version": ruleset.version,
        "source_text": ruleset.source_text,
        "tests_text": _tests_text(ruleset),
        "options": revision_options(ruleset.options),
        "stored_at": _now(),
    }
    return {**row, "content_hash": revision_hash(row)}


def revision_options(options: Iterable[str]) -> str:
    """The `options` column: the option ids of the ruleset, in file order, as canonical JSON."""
    return canonical(list(options))


def _tests_text(ruleset: Ruleset) -> str | None:
    """The sibling tests file as it is now: load_text refuses a ruleset without tests when replaying."""
    if not ruleset.tests_path:
        return None
    try:
        with open(ruleset.tests_path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        log.warning("tests file of ruleset %s could not be read for the decision log", ruleset.id)
        return None


def _card_rows(decision: AnswerDecision, cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules_of: dict[str, list[str]] = {}
    for item in (*decision.candidates, *decision.referrals):
        rules_of[item.option] = list(item.rules)
    for exclusion in decision.excluded:
        rules_of[exclusion.option] = list(dict.fromkeys(r.rule for r in exclusion.reasons))
    rows = []
    for position, card in enumerate(cards):
        uuid, summary, indicator = card.get("uuid"), card.get("summary"), card.get("indicator")
        option, service = card.get("option"), card.get("service")
        texts = (uuid, summary, indicator, *(t for t in (option, service) if t is not None))
        if not (uuid and all(isinstance(t, str) for t in texts)):
            raise ValueError("a card to record needs uuid, summary and indicator (text), and option (text) if any")
        offered = [s.get("uuid") for s in card.get("suggestions") or () if isinstance(s, dict)]
        if not all(isinstance(u, str) and u for u in offered):
            raise ValueError("a card's suggestions to record each need a uuid (text)")
        rows.append(
            {
                "uuid": uuid,
                "position": position,
                "option": option,
                "indicator": indicator,
                "summary": summary,
                "rules": canonical(rules_of.get(option, []) if option else []),
                "service_id": service,
                "suggestions": canonical(offered) if offered else None,
            }
        )
    return rows


def _check_key(conn: Connection, key: IdentifierKey) -> None:
    stored = conn.execute(select(Setting.value).where(Setting.name == KEY_SETTING)).scalar()
    if stored is None:
        conn.execute(insert(Setting).values(name=KEY_SETTING, value=key.fingerprint))
    elif stored != key.fingerprint:
        raise ConfigurationError(
            f"DECISION_HMAC_KEY is not the key this decision log was written with (fingerprint {stored}, "
            f"configured {key.fingerprint}): identifier hashes would not match. Configure the original key."
        )
