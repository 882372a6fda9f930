"""The CDS service that issued each card and the ids of the suggestions it offered.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Feedback is checked against them (issue 13): feedback is taken only by the service that issued the card,
and an `accepted` outcome only names suggestions the card offered. Both columns are null for cards
recorded before this revision; the hash chain covers them only when they are set, so older records
verify unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decision_cards", sa.Column("service_id", sa.String(100), nullable=True))
    op.add_column("decision_cards", sa.Column("suggestions", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decision_cards") as batch:
        batch.drop_column("suggestions")
        batch.drop_column("service_id")
