"""standing authorizations (issue 12)

- standing_authorizations: a holder's approval, once, of automatic funding over a link within
  bounds (services/standing_funding.py); its state is its grant's (revoked, expired).
- standing_movements: every movement token minted from one, for the holder's page and the
  intermediary's links API.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "standing_authorizations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("holder_id", sa.String(length=64), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_standing_authorizations_grant_id_grants")
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["account_links.id"],
            name=op.f("fk_standing_authorizations_link_id_account_links"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_authorizations")),
        sa.UniqueConstraint("grant_id", name=op.f("uq_standing_authorizations_grant_id")),
    )
    op.create_index(
        "ix_standing_authorizations_holder_id", "standing_authorizations", ["holder_id"]
    )
    op.create_index("ix_standing_authorizations_link_id", "standing_authorizations", ["link_id"])
    op.create_table(
        "standing_movements",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("standing_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["standing_id"],
            ["standing_authorizations.id"],
            name=op.f("fk_standing_movements_standing_id_standing_authorizations"),
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_standing_movements")),
    )
    op.create_index(
        "ix_standing_movements_standing_id", "standing_movements", ["standing_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_standing_movements_standing_id", table_name="standing_movements")
    op.drop_table("standing_movements")
    op.drop_index("ix_standing_authorizations_link_id", table_name="standing_authorizations")
    op.drop_index("ix_standing_authorizations_holder_id", table_name="standing_authorizations")
    op.drop_table("standing_authorizations")
