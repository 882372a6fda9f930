"""The ruleset lifecycle: published revisions with their gate reports, stages, sign-offs, actions, workers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Releases, sign-offs and lifecycle actions are append-only like the decision log (same triggers; the
actions form their own hash chain, head `lifecycle` in chain_heads). Stages and worker status change in
place: they are the current state, and every change of stage is also an appended action.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
APPEND_ONLY = ("ruleset_releases", "ruleset_signoffs", "lifecycle_actions")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ruleset_releases",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("file_name", sa.String(300), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("tests_text", sa.Text(), nullable=True),
        sa.Column("fhir_text", sa.Text(), nullable=True),
        sa.Column("gate_ok", sa.Integer(), nullable=False),
        sa.Column("gate_report", sa.Text(), nullable=False),
        sa.Column("published_at", utc(), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_ruleset_releases"),
    )
    op.create_index("ix_ruleset_releases_ruleset_id", "ruleset_releases", ["ruleset_id"])
    op.create_table(
        "ruleset_stages",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("changed_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_ruleset_stages"),
        sa.ForeignKeyConstraint(
            ["sha256"], ["ruleset_releases.sha256"], name="fk_ruleset_stages_sha256_ruleset_releases"
        ),
    )
    op.create_index(
        "uq_ruleset_stages_one_production",
        "ruleset_stages",
        ["ruleset_id"],
        unique=True,
        sqlite_where=sa.text("stage = 'production'"),
        postgresql_where=sa.text("stage = 'production'"),
    )
    op.create_table(
        "ruleset_signoffs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("jws_sha256", sa.String(64), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("added_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "jws_sha256", name="pk_ruleset_signoffs"),
        sa.ForeignKeyConstraint(
            ["sha256"], ["ruleset_releases.sha256"], name="fk_ruleset_signoffs_sha256_ruleset_releases"
        ),
    )
    op.create_table(
        "lifecycle_actions",
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("at", utc(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_lifecycle_actions"),
    )
    op.create_table(
        "ruleset_worker_status",
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("serving_sha256", sa.String(64), nullable=True),
        sa.Column("refused_sha256", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("checked_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("worker", "ruleset_id", name="pk_ruleset_worker_status"),
    )
    op.create_table(
        "ruleset_shadows",
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("set_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("ruleset_id", name="pk_ruleset_shadows"),
        sa.ForeignKeyConstraint(
            ["sha256"], ["ruleset_releases.sha256"], name="fk_ruleset_shadows_sha256_ruleset_releases"
        ),
    )
    op.create_table(
        "shadow_divergences",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("at", utc(), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("ruleset_id", sa.String(100), nullable=False),
        sa.Column("production_sha256", sa.String(64), nullable=False),
        sa.Column("shadow_sha256", sa.String(64), nullable=False),
        sa.Column("kinds", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_divergences"),
    )
    op.create_index("ix_shadow_divergences_decision_id", "shadow_divergences", ["decision_id"])
    op.create_index("ix_shadow_divergences_shadow_sha256", "shadow_divergences", ["shadow_sha256"])
    heads = sa.table("chain_heads", sa.column("name", sa.String), sa.column("seq", SEQ), sa.column("hash", sa.String))
    op.bulk_insert(heads, [{"name": "lifecycle", "seq": 0, "hash": GENESIS}])
    _append_only_triggers()


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:  # decision_log_append_only() was created by 0001
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
    op.execute("DELETE FROM chain_heads WHERE name = 'lifecycle'")
    for table in (
        "shadow_divergences",
        "ruleset_shadows",
        "ruleset_worker_status",
        "lifecycle_actions",
        "ruleset_signoffs",
        "ruleset_stages",
    ):
        op.drop_table(table)
    op.drop_table("ruleset_releases")
