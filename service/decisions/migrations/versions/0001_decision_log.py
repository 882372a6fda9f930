"""The decision log: ruleset revisions, hash-chained decisions with their cards, feedback chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Rows of the logged tables can be inserted, never updated or deleted: triggers refuse it on both
backends (the chain makes tampering evident; the triggers stop accidents and casual edits).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64
APPEND_ONLY = ("ruleset_revisions", "decisions", "decision_options", "decision_cards", "feedback")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ruleset_revisions",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("tests_text", sa.Text(), nullable=True),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("stored_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_ruleset_revisions"),
    )
    op.create_table(
        "decisions",
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("evaluated_at", utc(), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("ruleset_version", sa.String(100), nullable=False),
        sa.Column("ruleset_sha256", sa.String(64), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("candidates", sa.Text(), nullable=False),
        sa.Column("excluded", sa.Text(), nullable=False),
        sa.Column("referrals", sa.Text(), nullable=False),
        sa.Column("fired_rules", sa.Text(), nullable=False),
        sa.Column("latency_us", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=True),
        sa.Column("user_hash", sa.String(64), nullable=True),
        sa.Column("hook_instance_hash", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_decisions"),
        sa.UniqueConstraint("decision_id", name="uq_decisions_decision_id"),
        sa.UniqueConstraint("prev_hash", name="uq_decisions_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_decisions_hash"),
        sa.ForeignKeyConstraint(
            ["ruleset_sha256"], ["ruleset_revisions.sha256"], name="fk_decisions_ruleset_sha256_ruleset_revisions"
        ),
    )
    op.create_index("ix_decisions_evaluated_at", "decisions", ["evaluated_at"])
    for column in ("ruleset_id", "channel", "patient_hash", "user_hash", "hook_instance_hash"):
        op.create_index(f"ix_decisions_{column}_seq", "decisions", [column, "seq"])
    op.create_table(
        "decision_options",
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("option", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("seq", "role", "option", name="pk_decision_options"),
        sa.ForeignKeyConstraint(["seq"], ["decisions.seq"], name="fk_decision_options_seq_decisions"),
    )
    op.create_index("ix_decision_options_option_seq", "decision_options", ["option", "seq"])
    op.create_table(
        "decision_cards",
        sa.Column("uuid", sa.String(100), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("option", sa.String(100), nullable=True),
        sa.Column("indicator", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_decision_cards"),
        sa.ForeignKeyConstraint(["seq"], ["decisions.seq"], name="fk_decision_cards_seq_decisions"),
    )
    op.create_index("ix_decision_cards_seq", "decision_cards", ["seq"])
    op.create_table(
        "feedback",
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("card_uuid", sa.String(100), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("service_id", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("outcome_timestamp", utc(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("accepted_suggestions", sa.Text(), nullable=True),
        sa.Column("received_at", utc(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_feedback"),
        sa.UniqueConstraint(
            "card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_card_uuid_outcome_outcome_timestamp"
        ),
        sa.UniqueConstraint("prev_hash", name="uq_feedback_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_feedback_hash"),
        sa.ForeignKeyConstraint(["card_uuid"], ["decision_cards.uuid"], name="fk_feedback_card_uuid_decision_cards"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.decision_id"], name="fk_feedback_decision_id_decisions"),
    )
    op.create_index("ix_feedback_decision_id", "feedback", ["decision_id"])
    heads = op.create_table(
        "chain_heads",
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_chain_heads"),
    )
    op.bulk_insert(
        heads, [{"name": "decisions", "seq": 0, "hash": GENESIS}, {"name": "feedback", "seq": 0, "hash": GENESIS}]
    )
    op.create_table(
        "log_settings",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_log_settings"),
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION decision_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'the decision log is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION decision_log_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION decision_log_append_only()"
            )
        return
    for table in APPEND_ONLY:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END"
            )


def downgrade() -> None:
    for table in ("log_settings", "chain_heads", "feedback", "decision_cards", "decision_options", "decisions"):
        op.drop_table(table)
    op.drop_table("ruleset_revisions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION decision_log_append_only()")
