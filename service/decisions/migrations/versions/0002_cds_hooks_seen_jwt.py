"""The CDS Hooks channel's replay cache: JWT ids already seen, shared by every worker process.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Not part of the hash chain: entries expire with their tokens and are purged, so this table is the one
that allows DELETE. Only a SHA-256 of issuer and jti is kept, never token material.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_hooks_seen_jwt",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_cds_hooks_seen_jwt_expires_at", "cds_hooks_seen_jwt", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_cds_hooks_seen_jwt_expires_at", "cds_hooks_seen_jwt")
    op.drop_table("cds_hooks_seen_jwt")
