"""cumulative limits (issue 12)

- cumulative_counters: what the service authorized per anchor set, operation, window kind,
  subject (holder or debtor account), currency and time bucket, in minor units
  (storage/counters_repo.py, docs/POLICY.md "Cumulative limits").

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cumulative_counters",
        sa.Column("anchor_set_id", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("time_window", sa.String(length=16), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "anchor_set_id",
            "operation",
            "time_window",
            "subject_kind",
            "subject_id",
            "currency",
            "bucket_start",
            name=op.f("pk_cumulative_counters"),
        ),
    )


def downgrade() -> None:
    op.drop_table("cumulative_counters")
