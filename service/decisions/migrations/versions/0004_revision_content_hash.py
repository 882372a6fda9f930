"""Ruleset revisions: a hash over every column, so `decisions verify` covers tests_text, options and the rest.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01

Before this, verify checked only that a revision's source_text hashes to its sha256: an edit of
`options` (which audit queries are validated against) or `tests_text` (which replays load) went
unnoticed. The new `content_hash` column holds chain.revision_hash of the row (REVISION_FORMAT 1).

Rows stored before this migration get their hash computed from what they hold now: an edit made
before the upgrade cannot be told apart any more (verify still re-derives id, version and options
from the text, which the decisions' hashes anchor). The append-only trigger on the table is set aside
for this one UPDATE, inside the migration's transaction, and restored before it commits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.decisions.chain import revision_hash
from service.decisions.models import UTCDateTime

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

REVISIONS = sa.table(
    "ruleset_revisions",
    sa.column("sha256", sa.String()),
    sa.column("ruleset_id", sa.String()),
    sa.column("version", sa.String()),
    sa.column("tests_text", sa.Text()),
    sa.column("options", sa.Text()),
    sa.column("stored_at", UTCDateTime()),
    sa.column("content_hash", sa.String()),
)


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    if postgresql:
        op.add_column("ruleset_revisions", sa.Column("content_hash", sa.String(64), nullable=True))
        op.execute("ALTER TABLE ruleset_revisions DISABLE TRIGGER ruleset_revisions_append_only")
    else:
        # SQLite adds a NOT NULL column only with a default; '' is never a valid hash, so verify names it.
        op.execute("ALTER TABLE ruleset_revisions ADD COLUMN content_hash VARCHAR(64) NOT NULL DEFAULT ''")
        op.execute("DROP TRIGGER ruleset_revisions_no_update")
    rows = bind.execute(sa.select(REVISIONS)).mappings().all()
    for row in rows:
        bind.execute(
            REVISIONS.update().where(REVISIONS.c.sha256 == row["sha256"]).values(content_hash=revision_hash(row))
        )
    if postgresql:
        op.execute("ALTER TABLE ruleset_revisions ENABLE TRIGGER ruleset_revisions_append_only")
        op.alter_column("ruleset_revisions", "content_hash", nullable=False)
    else:
        op.execute(
            "CREATE TRIGGER ruleset_revisions_no_update BEFORE UPDATE ON ruleset_revisions "
            "BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END"
        )


def downgrade() -> None:
    raise NotImplementedError("the decision log is append-only: restore a backup to go back before 0004")
