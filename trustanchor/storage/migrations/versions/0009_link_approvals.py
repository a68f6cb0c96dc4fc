"""link approvals (issue 12, funding)

- link_approvals: which intermediaries approved an account link for movements that debit the
  account they hold (services/funding_decision.py, docs/POLICY.md "Funding"). The intermediary
  whose request created a link approves it by that request; the other one through the links API.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_approvals",
        sa.Column("link_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("approved_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["account_links.id"],
            name=op.f("fk_link_approvals_link_id_account_links"),
        ),
        sa.PrimaryKeyConstraint("link_id", "client_id", name=op.f("pk_link_approvals")),
    )


def downgrade() -> None:
    op.drop_table("link_approvals")
