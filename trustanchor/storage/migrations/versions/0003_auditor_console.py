"""auditor console: designated auditors and console sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditors",
        sa.Column("holder_ref", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("holder_ref", name=op.f("pk_auditors")),
    )
    op.create_table(
        "auditor_sessions",
        sa.Column("id_digest", sa.String(length=64), nullable=False),
        sa.Column("holder_ref", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_auditor_sessions")),
    )
    with op.batch_alter_table("auditor_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_auditor_sessions_holder", ["holder_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auditor_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_auditor_sessions_holder")
    op.drop_table("auditor_sessions")
    op.drop_table("auditors")
