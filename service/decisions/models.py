"""The decision log's tables (SQLAlchemy 2 declarative models; Alembic migrations create them).

JSON documents (profile, decision, option lists) are stored as the exact canonical JSON text that the
hash chain covers, not as JSON/JSONB: PostgreSQL would re-normalise JSONB, and a verifier must hash what
was written, byte for byte, on either backend. Every column of a record is covered by its hash (a ruleset
revision's by its sha256 and content_hash, see chain.py); there is
no derived index table that could disagree with it (a search by option reads the hashed option lists).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Sequence numbers are assigned by the appender (never by the database), so no autoincrement.
Seq = BigInteger().with_variant(Integer(), "sqlite")
HASH = 64  # hex SHA-256 / HMAC-SHA256
IDENTIFIER_COLUMNS = ("patient_hash", "user_hash", "hook_instance_hash")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (naive text) and PostgreSQL (timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous in the decision log; pass UTC")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    # Deterministic constraint names, so migrations can name what they create and later alter it.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Revision(Base):
    """A ruleset file exactly as activated; its primary key is the sha256 of that text."""

    __tablename__ = "ruleset_revisions"

    sha256: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    ruleset_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    source_text: Mapped[str] = mapped_column(Text)
    # The sibling <name>.tests.yaml, when the file keeps its tests there: load_text needs tests to accept a file.
    tests_text: Mapped[str | None] = mapped_column(Text)
    options: Mapped[str] = mapped_column(Text)  # JSON list of option ids, to validate audit queries
    stored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # SHA-256 of every other column (chain.revision_hash), so verify notices an edit of any of them.
    content_hash: Mapped[str] = mapped_column(String(HASH))


class Decision(Base):
    __tablename__ = "decisions"
    # Every index is paid for by every append, so there are few: identifiers (partial - only CDS Hooks
    # decisions carry them) for "all decisions for one patient", time for since/until. Filters on ruleset,
    # channel or option walk the primary key newest first: audit queries are rare, appends are not.
    __table_args__ = tuple(
        Index(
            None,
            column,
            "seq",
            sqlite_where=text(f"{column} IS NOT NULL"),
            postgresql_where=text(f"{column} IS NOT NULL"),
        )
        for column in IDENTIFIER_COLUMNS
    )

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    decision_id: Mapped[str] = mapped_column(String(36), unique=True)
    evaluated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    ruleset_id: Mapped[str] = mapped_column(String(100))
    ruleset_version: Mapped[str] = mapped_column(String(100))
    ruleset_sha256: Mapped[str] = mapped_column(ForeignKey("ruleset_revisions.sha256"))
    profile: Mapped[str] = mapped_column(Text)
    candidates: Mapped[str] = mapped_column(Text)
    excluded: Mapped[str] = mapped_column(Text)
    referrals: Mapped[str] = mapped_column(Text)
    fired_rules: Mapped[str] = mapped_column(Text)
    latency_us: Mapped[int] = mapped_column(BigInteger)
    decision: Mapped[str] = mapped_column(Text)
    patient_hash: Mapped[str | None] = mapped_column(String(HASH))
    user_hash: Mapped[str | None] = mapped_column(String(HASH))
    hook_instance_hash: Mapped[str | None] = mapped_column(String(HASH))
    # Two appenders that read the same chain head would both claim the next seq: the primary key stops a fork.
    prev_hash: Mapped[str] = mapped_column(String(HASH))
    hash: Mapped[str] = mapped_column(String(HASH))


class Card(Base):
    """A CDS Hooks card issued with a decision, so that feedback on it can be traced to its decision and rules."""

    __tablename__ = "decision_cards"

    uuid: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(ForeignKey("decisions.seq"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    option: Mapped[str | None] = mapped_column(String(100))
    indicator: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    rules: Mapped[str] = mapped_column(Text)  # JSON list of the rules behind the card's option
    service_id: Mapped[str | None] = mapped_column(String(100))  # the CDS service that issued it (0006)
    suggestions: Mapped[str | None] = mapped_column(Text)  # canonical JSON list of its suggestion uuids (0006)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("card_uuid", "outcome", "outcome_timestamp"),)

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    card_uuid: Mapped[str] = mapped_column(ForeignKey("decision_cards.uuid"))
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.decision_id"), index=True)
    service_id: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))
    outcome_timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    override_reason: Mapped[str | None] = mapped_column(Text)  # canonical JSON {reason?, userComment?}
    accepted_suggestions: Mapped[str | None] = mapped_column(Text)  # canonical JSON list of ids
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(HASH))
    hash: Mapped[str] = mapped_column(String(HASH))


class ChainHead(Base):
    """The last seq and hash of each chain: the row appenders lock, and how verify notices a cut-off tail."""

    __tablename__ = "chain_heads"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)  # decisions | feedback
    seq: Mapped[int] = mapped_column(Seq)
    hash: Mapped[str] = mapped_column(String(HASH))


class Setting(Base):
    """Facts about the log itself, e.g. the fingerprint of the identifier key it was written with."""

    __tablename__ = "log_settings"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SeenJwt(Base):
    """CDS Hooks: JWT ids already accepted, so a replayed token fails in every worker (service/cds/store.py).

    Not part of the hash chain: entries expire with their tokens and are purged, so this is the one table
    that allows DELETE. Only a SHA-256 of issuer and jti is kept, never token material.
    """

    __tablename__ = "cds_hooks_seen_jwt"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


# ---- the ruleset lifecycle (service/lifecycle): revisions, stages, sign-offs, actions -------------


class Release(Base):
    """A published ruleset file set (ruleset, tests, FHIR mapping) with the report of its activation gate.

    Keyed by the sha256 of the ruleset file, as `GET /v1/rulesets` shows it. Append-only: a revision is
    never edited, and its stage lives in `ruleset_stages`.
    """

    __tablename__ = "ruleset_releases"

    sha256: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    ruleset_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(100))
    file_name: Mapped[str] = mapped_column(String(300))
    source_text: Mapped[str] = mapped_column(Text)
    tests_text: Mapped[str | None] = mapped_column(Text)
    fhir_text: Mapped[str | None] = mapped_column(Text)
    gate_ok: Mapped[int] = mapped_column(Integer)  # 1 passed, 0 refused
    gate_report: Mapped[str] = mapped_column(Text)  # canonical JSON
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[str] = mapped_column(String(200))


class Stage(Base):
    """The stage of each published revision: draft | testing | production | retired (mutable)."""

    __tablename__ = "ruleset_stages"
    __table_args__ = (
        # One production revision per ruleset id, enforced by the database for every replica.
        Index(
            "uq_ruleset_stages_one_production",
            "ruleset_id",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
    )

    sha256: Mapped[str] = mapped_column(ForeignKey("ruleset_releases.sha256"), primary_key=True)
    ruleset_id: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Signoff(Base):
    """A reviewer's detached JWS over the sha256 of each file of a revision (append-only)."""

    __tablename__ = "ruleset_signoffs"

    sha256: Mapped[str] = mapped_column(ForeignKey("ruleset_releases.sha256"), primary_key=True)
    jws_sha256: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    jws: Mapped[str] = mapped_column(Text)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LifecycleAction(Base):
    """Every publish, stage change, activation, rollback and sign-off, with who did it, in a hash chain."""

    __tablename__ = "lifecycle_actions"

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    ruleset_id: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str | None] = mapped_column(String(HASH))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(HASH))
    hash: Mapped[str] = mapped_column(String(HASH))


class WorkerStatus(Base):
    """What each worker process serves for each ruleset, and what it refused and why (mutable)."""

    __tablename__ = "ruleset_worker_status"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    ruleset_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    serving_sha256: Mapped[str | None] = mapped_column(String(HASH))
    refused_sha256: Mapped[str | None] = mapped_column(String(HASH))
    reason: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Shadow(Base):
    """The testing revision that shadows a ruleset's production one: every live decision is evaluated with it too."""

    __tablename__ = "ruleset_shadows"

    ruleset_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("ruleset_releases.sha256"))
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ShadowDivergence(Base):
    """A live decision whose shadow evaluation came out differently: which kinds of difference, for which decision."""

    __tablename__ = "shadow_divergences"

    id: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decision_id: Mapped[str] = mapped_column(String(36), index=True)
    ruleset_id: Mapped[str] = mapped_column(String(100))
    production_sha256: Mapped[str] = mapped_column(String(HASH))
    shadow_sha256: Mapped[str] = mapped_column(String(HASH), index=True)
    kinds: Mapped[str] = mapped_column(Text)  # canonical JSON list of changes in words


class RevokedSession(Base):
    """Auditor sessions ended by signing out, so a copied cookie stops working at once in every worker.

    The session cookie is signed, not stored: signing out must be remembered server-side until the session
    would have expired anyway. Like the seen-JWT table, entries expire and are purged (DELETE allowed);
    only a SHA-256 of the session id is kept.
    """

    __tablename__ = "auditor_revoked_sessions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
