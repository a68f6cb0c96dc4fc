"""holders' self-service page: holder sessions (issue 4)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 09:00:00
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
        "holder_sessions",
        sa.Column("id_digest", sa.String(length=64), nullable=False),
        sa.Column("holder_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["holders.id"], name=op.f("fk_holder_sessions_holder_id_holders")
        ),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_holder_sessions")),
    )
    op.create_index("ix_holder_sessions_holder", "holder_sessions", ["holder_id"])


def downgrade() -> None:
    op.drop_index("ix_holder_sessions_holder", table_name="holder_sessions")
    op.drop_table("holder_sessions")
