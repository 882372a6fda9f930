"""Compact decision records: the answer bytes as sent, compressed, and a format marker per record.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

`record_format` 1 (every row stored before this) keeps its canonical JSON text in `decision` and is
verified as before; format 2 rows leave `decision` empty and hold zlib(answer bytes) in `answer`
(service/decisions/answers.py). Adding columns updates no row, so the append-only triggers stay.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("record_format", sa.SmallInteger(), nullable=False, server_default="1"))
    op.add_column("decisions", sa.Column("answer", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the decision log is append-only: restore a backup to go back before 0006")
