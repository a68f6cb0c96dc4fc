"""accounts, account links, what grants relied on, step-up requirements (issue 4)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(
            sa.Column(
                "credential_status", sa.String(length=16), nullable=False, server_default="valid"
            )
        )
        batch.add_column(sa.Column("status_checked_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("step_up", sa.JSON(), nullable=True))
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("anchor_set_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("link_id", sa.String(length=64), nullable=True))
    op.create_index("ix_grants_link", "grants", ["link_id"])
    op.create_table(
        "grant_anchors",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("anchor_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grants.id"],
            name=op.f("fk_grant_anchors_grant_id_grants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("grant_id", "anchor_id", name=op.f("pk_grant_anchors")),
    )
    op.create_index("ix_grant_anchors_anchor", "grant_anchors", ["anchor_id"])
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("reference_digest", sa.String(length=64), nullable=False),
        sa.Column("holder_id", sa.String(length=64), nullable=True),
        sa.Column("binding_identity_id", sa.String(length=64), nullable=True),
        sa.Column("bound_at", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("flagged_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["holders.id"], name=op.f("fk_accounts_holder_id_holders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("client_id", "reference_digest", name="uq_accounts_client_reference"),
    )
    op.create_index("ix_accounts_holder", "accounts", ["holder_id"])
    op.create_index("ix_accounts_binding_identity", "accounts", ["binding_identity_id"])
    op.create_table(
        "account_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("holder_id", sa.String(length=64), nullable=False),
        sa.Column("deposit_account_id", sa.String(length=64), nullable=False),
        sa.Column("wallet_account_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.BigInteger(), nullable=True),
        sa.Column("removed_reason", sa.String(length=64), nullable=True),
        sa.Column("flagged_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["holders.id"], name=op.f("fk_account_links_holder_id_holders")
        ),
        sa.ForeignKeyConstraint(
            ["deposit_account_id"],
            ["accounts.id"],
            name=op.f("fk_account_links_deposit_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_account_id"],
            ["accounts.id"],
            name=op.f("fk_account_links_wallet_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_links")),
    )
    op.create_index(
        "uq_account_links_active_pair",
        "account_links",
        ["deposit_account_id", "wallet_account_id"],
        unique=True,
        sqlite_where=sa.text("removed_at IS NULL"),
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_index("ix_account_links_holder", "account_links", ["holder_id"])
    op.create_index("ix_account_links_wallet", "account_links", ["wallet_account_id"])


def downgrade() -> None:
    op.drop_table("account_links")
    op.drop_table("accounts")
    op.drop_table("grant_anchors")
    op.drop_index("ix_grants_link", table_name="grants")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("link_id")
        batch.drop_column("anchor_set_id")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("step_up")
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("status_checked_at")
        batch.drop_column("credential_status")
