"""Auditor sessions ended by signing out, remembered until they would have expired.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Not part of the hash chain: entries expire with their sessions and are purged (DELETE allowed). Only a
SHA-256 of the session id is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditor_revoked_sessions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_auditor_revoked_sessions_expires_at", "auditor_revoked_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_auditor_revoked_sessions_expires_at", "auditor_revoked_sessions")
    op.drop_table("auditor_revoked_sessions")
