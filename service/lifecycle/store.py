"""The lifecycle store: published revisions, their stages, sign-offs and the actions chain, in the log's database.

It shares the decision log's database (SQLite in the instance folder, or PostgreSQL for several replicas),
so every worker of every replica sees the same production revision. Writes take the database's write lock
(SQLite BEGIN IMMEDIATE; the chain-head row FOR UPDATE on PostgreSQL), so stage changes from two admins
never interleave and the actions chain never forks. The head of that chain is also the cheap "did anything
change?" number that workers poll.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ..decisions.chain import GENESIS, action_content, canonical, link_hash, release_hash, signoff_hash, timestamp
from ..decisions.models import (
    ChainHead,
    LifecycleAction,
    Release,
    Shadow,
    ShadowDivergence,
    Signoff,
    Stage,
    WorkerStatus,
)
from ..errors import MessageError
from .files import FileSet
from .gate import GateResult
from .notify import CHANNEL as CHANNEL_NAME

STAGES = ("draft", "testing", "production", "retired")
CHAIN = "lifecycle"


class LifecycleError(MessageError):
    """A lifecycle action that cannot be done; the message says why, in words for the person who asked.

    It names rulesets, revisions and files only, never patient data, so the message is the detail.
    """

    slug = "lifecycle"
    status = 409
    title = "Lifecycle action refused"


@dataclass(frozen=True)
class StoredRevision:
    sha256: str
    ruleset_id: str
    version: str
    stage: str
    gate_ok: bool
    gate_report: dict[str, Any]
    published_at: dt.datetime
    published_by: str
    files: FileSet

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.ruleset_id,
            "version": self.version,
            "sha256": self.sha256,
            "stage": self.stage,
            "gate": {"ok": self.gate_ok, "problems": self.gate_report.get("problems", [])},
            "published_at": timestamp(self.published_at),
            "published_by": self.published_by,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    """Revisions and stages on the decision log's engine (see module docstring)."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self.engine = engine
        self.writer = writer
        self._upsert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert

    # ---- reading ---------------------------------------------------------------------------------

    def generation(self) -> int:
        """The number of lifecycle actions so far: the cheap check workers poll."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(ChainHead.seq).where(ChainHead.name == CHAIN)).scalar() or 0)

    def get(self, sha256: str) -> StoredRevision | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(Release.__table__, Stage.stage)
                    .join(Stage, Stage.sha256 == Release.sha256)
                    .where(Release.sha256 == sha256)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            signatures = tuple(
                conn.execute(select(Signoff.jws).where(Signoff.sha256 == sha256).order_by(Signoff.added_at)).scalars()
            )
        return _stored(row, signatures)

    def find(self, ruleset_id: str, ref: str) -> StoredRevision | None:
        """A revision of a ruleset by sha256 (or a unique prefix of at least 8 characters) or by version."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Release.sha256, Release.version).where(Release.ruleset_id == ruleset_id)).all()
        matches = [s for s, v in rows if s == ref or (len(ref) >= 8 and s.startswith(ref))]
        if not matches:
            matches = [s for s, v in rows if v == ref]
        return self.get(matches[-1]) if len(matches) == 1 else None

    def revisions(self, ruleset_id: str | None = None) -> list[StoredRevision]:
        q = (
            select(Release.__table__, Stage.stage)
            .join(Stage, Stage.sha256 == Release.sha256)
            .order_by(Release.published_at)
        )
        if ruleset_id is not None:
            q = q.where(Release.ruleset_id == ruleset_id)
        with self.engine.connect() as conn:
            return [_stored(r, ()) for r in conn.execute(q).mappings().all()]

    def in_stage(self, stage: str) -> dict[str, list[str]]:
        """ruleset id -> shas in that stage (one for production)."""
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for rid, sha in conn.execute(select(Stage.ruleset_id, Stage.sha256).where(Stage.stage == stage)):
                out.setdefault(rid, []).append(sha)
        return out

    def production(self) -> dict[str, str]:
        return {rid: shas[0] for rid, shas in self.in_stage("production").items()}

    def actions(self, ruleset_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        q = select(LifecycleAction.__table__).order_by(LifecycleAction.seq.desc()).limit(limit)
        if ruleset_id is not None:
            q = q.where(LifecycleAction.ruleset_id == ruleset_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                **{k: row[k] for k in ("seq", "actor", "action", "ruleset_id", "sha256", "hash")},
                "at": timestamp(row["at"]),
                "detail": json.loads(row["detail"]),
            }
            for row in reversed(rows)
        ]

    def worker_status(self, ruleset_id: str | None = None) -> list[dict[str, Any]]:
        q = select(WorkerStatus.__table__).order_by(WorkerStatus.worker)
        if ruleset_id is not None:
            q = q.where(WorkerStatus.ruleset_id == ruleset_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [{**dict(r), "checked_at": timestamp(r["checked_at"])} for r in rows]

    def production_history(self, conn: Connection, ruleset_id: str) -> list[str]:
        """The stack of production revisions of a ruleset, oldest first, as activations and rollbacks left it."""
        stack: list[str] = []
        q = (
            select(LifecycleAction.action, LifecycleAction.sha256, LifecycleAction.detail)
            .where(LifecycleAction.ruleset_id == ruleset_id)
            .order_by(LifecycleAction.seq)
        )
        for action, sha, detail in conn.execute(q):
            stage = json.loads(detail).get("stage")
            if action == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != sha:
                    stack.append(sha)
            elif stage == "production" and action in ("activate", "stage"):
                if stack and sha in stack:
                    stack.remove(sha)
                stack.append(sha)
            elif stage is not None and sha in stack and stage != "production":
                stack.remove(sha)
        return stack

    # ---- writing ---------------------------------------------------------------------------------

    def publish(self, files: FileSet, gate: GateResult, actor: str, *, quiet_if_known: bool = False) -> bool:
        """Store a file set with its gate report (as a draft); True if it was new. Sign-offs are added."""
        sha = files.sha256
        ruleset = gate.ruleset
        with self.writer.begin() as conn:
            self._lock(conn)  # two replicas publishing the same file set: one stores it, the other finds it
            known = conn.execute(select(Release.sha256).where(Release.sha256 == sha)).first() is not None
            new_signatures = (
                self._new_signatures(conn, sha, files.signatures) if known else list(dict.fromkeys(files.signatures))
            )
            if known and quiet_if_known and not new_signatures:
                return False
            anchors: dict[str, Any] = {}
            if not known:
                release = {
                    "sha256": sha,
                    "ruleset_id": ruleset.id if ruleset else _id_guess(files),
                    "version": ruleset.version if ruleset else "?",
                    "file_name": files.file_name,
                    "source_text": files.source_text,
                    "tests_text": files.tests_text,
                    "fhir_text": files.fhir_text,
                    "gate_ok": 1 if gate.ok else 0,
                    "gate_report": canonical(gate.as_dict()),
                    "published_at": _now(),
                    "published_by": actor[:200],
                }
                conn.execute(insert(Release).values(**release))
                anchors["release"] = release_hash(release)  # `decisions verify` checks every column against it
                conn.execute(
                    insert(Stage).values(
                        sha256=sha,
                        ruleset_id=release["ruleset_id"],
                        stage="draft",
                        changed_at=_now(),
                    )
                )
            signoffs = self._add_signatures(conn, sha, new_signatures)
            if signoffs:
                anchors["signoffs"] = signoffs
            rid = conn.execute(select(Release.ruleset_id).where(Release.sha256 == sha)).scalar_one()
            self._append(
                conn,
                actor,
                "publish",
                rid,
                sha,
                {
                    "new": not known,
                    "gate_ok": gate.ok,
                    "problems": gate.problems[:20],
                    "signatures": len(new_signatures),
                    **anchors,
                },
            )
        return not known

    def add_signatures(self, sha256: str, signatures: list[str], actor: str) -> int:
        with self.writer.begin() as conn:
            rid = conn.execute(select(Release.ruleset_id).where(Release.sha256 == sha256)).scalar()
            if rid is None:
                raise LifecycleError(f"no published revision {sha256[:12]}", 404)
            new = self._new_signatures(conn, sha256, tuple(signatures))
            signoffs = self._add_signatures(conn, sha256, new)
            if new:
                self._append(conn, actor, "sign", rid, sha256, {"signatures": len(new), "signoffs": signoffs})
        return len(new)

    def set_stage(
        self,
        ruleset_id: str,
        sha256: str,
        stage: str,
        actor: str,
        *,
        check: Callable[[StoredRevision], None] | None = None,
        action: str = "activate",
    ) -> StoredRevision:
        """Move a revision to a stage; to production retires the current one. `check` may refuse (raise)."""
        if stage not in STAGES:
            raise LifecycleError(f"stage must be one of {', '.join(STAGES)}, not `{stage}`", 422)
        revision = self.get(sha256)
        if revision is None or revision.ruleset_id != ruleset_id:
            raise LifecycleError(f"ruleset `{ruleset_id}` has no published revision {sha256[:12]}", 404)
        if stage in ("production", "testing") and not revision.gate_ok:
            problems = "; ".join(revision.gate_report.get("problems", [])[:5])
            raise LifecycleError(f"revision {sha256[:12]} failed the activation gate at publish: {problems}", 422)
        if stage == "production" and check is not None:
            check(revision)
        with self.writer.begin() as conn:
            self._lock(conn)
            before = conn.execute(select(Stage.stage).where(Stage.sha256 == sha256)).scalar_one()
            retired = None
            if stage == "production":
                retired = conn.execute(
                    select(Stage.sha256).where(
                        and_(Stage.ruleset_id == ruleset_id, Stage.stage == "production", Stage.sha256 != sha256)
                    )
                ).scalar()
                if retired:
                    conn.execute(
                        update(Stage).where(Stage.sha256 == retired).values(stage="retired", changed_at=_now())
                    )
            conn.execute(update(Stage).where(Stage.sha256 == sha256).values(stage=stage, changed_at=_now()))
            detail: dict[str, Any] = {"stage": stage, "from": before}
            if retired:
                detail["retired"] = retired
            self._append(conn, actor, action, ruleset_id, sha256, detail)
        return self.get(sha256)  # type: ignore[return-value]

    def rollback(
        self, ruleset_id: str, actor: str, check: Callable[[StoredRevision], None] | None = None
    ) -> StoredRevision:
        """Make the previous production revision production again (the current one is retired)."""
        with self.engine.connect() as conn:
            stack = self.production_history(conn, ruleset_id)
        current = self.production().get(ruleset_id)
        if current is None or len(stack) < 2 or stack[-1] != current:
            raise LifecycleError(f"ruleset `{ruleset_id}` has no earlier production revision to roll back to")
        target = stack[-2]
        revision = self.get(target)
        assert revision is not None
        if check is not None:
            check(revision)
        with self.writer.begin() as conn:
            self._lock(conn)
            conn.execute(update(Stage).where(Stage.sha256 == current).values(stage="retired", changed_at=_now()))
            conn.execute(update(Stage).where(Stage.sha256 == target).values(stage="production", changed_at=_now()))
            self._append(conn, actor, "rollback", ruleset_id, target, {"stage": "production", "from": current})
        return self.get(target)  # type: ignore[return-value]

    def report_worker(
        self, worker: str, ruleset_id: str, serving: str | None, refused: str | None, reason: str | None
    ) -> None:
        values = {
            "worker": worker,
            "ruleset_id": ruleset_id,
            "serving_sha256": serving,
            "refused_sha256": refused,
            "reason": reason,
            "checked_at": _now(),
        }
        stmt = self._upsert(WorkerStatus).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["worker", "ruleset_id"],
            set_={k: stmt.excluded[k] for k in ("serving_sha256", "refused_sha256", "reason", "checked_at")},
        )
        with self.writer.begin() as conn:
            conn.execute(stmt)

    # ---- shadow mode -----------------------------------------------------------------------------

    def shadows(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(Shadow.ruleset_id, Shadow.sha256)).all())

    def set_shadow(self, ruleset_id: str, sha256: str | None, actor: str) -> None:
        """Let a testing revision shadow the production one (None: stop shadowing)."""
        if sha256 is not None:
            revision = self.get(sha256)
            if revision is None or revision.ruleset_id != ruleset_id:
                raise LifecycleError(f"ruleset `{ruleset_id}` has no published revision {sha256[:12]}", 404)
            if revision.stage != "testing":
                raise LifecycleError(f"only a testing revision can shadow; {sha256[:12]} is {revision.stage}", 422)
        with self.writer.begin() as conn:
            self._lock(conn)
            conn.execute(Shadow.__table__.delete().where(Shadow.ruleset_id == ruleset_id))
            if sha256 is not None:
                conn.execute(insert(Shadow).values(ruleset_id=ruleset_id, sha256=sha256, set_at=_now()))
            self._append(conn, actor, "shadow", ruleset_id, sha256, {"shadow": sha256 is not None})

    def record_divergence(
        self, decision_id: str, ruleset_id: str, production: str, shadow: str, kinds: list[str]
    ) -> None:
        with self.writer.begin() as conn:
            conn.execute(
                insert(ShadowDivergence).values(
                    at=_now(),
                    decision_id=decision_id,
                    ruleset_id=ruleset_id,
                    production_sha256=production,
                    shadow_sha256=shadow,
                    kinds=canonical(kinds),
                )
            )

    def divergences(self, ruleset_id: str, limit: int = 10_000) -> dict[str, Any]:
        """Divergences of the current (and past) shadows, counted by kind, with decision ids (newest first)."""
        q = (
            select(ShadowDivergence.decision_id, ShadowDivergence.shadow_sha256, ShadowDivergence.kinds)
            .where(ShadowDivergence.ruleset_id == ruleset_id)
            .order_by(ShadowDivergence.id.desc())
            .limit(limit)
        )
        by_kind: dict[tuple[str, str], list[str]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        for decision_id, sha, kinds in rows:
            for kind in json.loads(kinds):
                by_kind.setdefault((sha, kind), []).append(decision_id)
        return {
            "ruleset_id": ruleset_id,
            "shadow": self.shadows().get(ruleset_id),
            "diverged_decisions": len(rows),
            "kinds": [
                {"shadow_sha256": sha, "kind": kind, "decisions": len(ids), "decision_ids": ids[:20]}
                for (sha, kind), ids in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))
            ],
        }

    # ---- the actions chain -----------------------------------------------------------------------

    def _lock(self, conn: Connection) -> tuple[int, str]:
        head = conn.execute(
            select(ChainHead.seq, ChainHead.hash).where(ChainHead.name == CHAIN).with_for_update()
        ).one()
        return int(head[0]), head[1]

    def _append(
        self, conn: Connection, actor: str, action: str, ruleset_id: str, sha256: str | None, detail: dict[str, Any]
    ) -> None:
        seq, prev = self._lock(conn)
        row = {
            "at": _now(),
            "actor": actor[:200],
            "action": action,
            "ruleset_id": ruleset_id,
            "sha256": sha256,
            "detail": canonical(detail),
        }
        digest = link_hash(prev, action_content(row))
        conn.execute(insert(LifecycleAction).values(seq=seq + 1, prev_hash=prev, hash=digest, **row))
        conn.execute(update(ChainHead).where(ChainHead.name == CHAIN).values(seq=seq + 1, hash=digest))
        if conn.dialect.name == "postgresql":  # delivered at commit to every listening follower (notify.py)
            conn.execute(text("SELECT pg_notify(:channel, :seq)"), {"channel": CHANNEL_NAME, "seq": str(seq + 1)})

    def verify_chain(self) -> list[str]:
        """Problems of the actions chain (edited, removed, reordered or cut-off actions); [] when intact."""
        problems = []
        prev, expected_seq = GENESIS, 1
        with self.engine.connect() as conn:
            head = conn.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.name == CHAIN)).first()
            for row in conn.execute(select(LifecycleAction.__table__).order_by(LifecycleAction.seq)).mappings():
                if row["seq"] != expected_seq:
                    problems.append(f"action {expected_seq} is missing (next is {row['seq']})")
                if row["prev_hash"] != prev:
                    problems.append(f"action {row['seq']} does not link to the action before it")
                if link_hash(row["prev_hash"], action_content(dict(row))) != row["hash"]:
                    problems.append(f"action {row['seq']} was altered after it was recorded")
                prev, expected_seq = row["hash"], row["seq"] + 1
        if head is None or (head[0], head[1]) != (expected_seq - 1, prev):
            problems.append("the chain head does not point at the last action: actions were cut off")
        return problems

    @staticmethod
    def _new_signatures(conn: Connection, sha256: str, signatures: tuple[str, ...]) -> list[str]:
        have = set(conn.execute(select(Signoff.jws_sha256).where(Signoff.sha256 == sha256)).scalars())
        out = []
        for jws in dict.fromkeys(signatures):
            if hashlib.sha256(jws.encode()).hexdigest() not in have:
                out.append(jws)
        return out

    @staticmethod
    def _add_signatures(conn: Connection, sha256: str, signatures: list[str]) -> list[str]:
        """Store sign-offs; the hash of each row, for the action that adds them to carry (chain.signoff_hash)."""
        hashes = []
        for jws in signatures:
            row = {
                "sha256": sha256,
                "jws_sha256": hashlib.sha256(jws.encode()).hexdigest(),
                "jws": jws,
                "added_at": _now(),
            }
            conn.execute(insert(Signoff).values(**row))
            hashes.append(signoff_hash(row))
        return hashes


def _id_guess(files: FileSet) -> str:
    """The id of a file set that does not load, for listing its refusal: the `id:` line, else the file name."""
    for line in files.source_text.splitlines():
        if line.startswith("id:"):
            return line[3:].strip().strip("'\"")[:100] or files.file_name
    return files.file_name[:100]


def _stored(row: Any, signatures: tuple[str, ...]) -> StoredRevision:
    return StoredRevision(
        sha256=row["sha256"],
        ruleset_id=row["ruleset_id"],
        version=row["version"],
        stage=row["stage"],
        gate_ok=bool(row["gate_ok"]),
        gate_report=json.loads(row["gate_report"]),
        published_at=row["published_at"],
        published_by=row["published_by"],
        files=FileSet(row["file_name"], row["source_text"], row["tests_text"], row["fhir_text"], signatures),
    )
