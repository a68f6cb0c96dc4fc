"""holder integrity at the login seam (issue 10)

- interactions: the digest of the binding secret held by the browser that started it
  (``browser_digest``), so the interaction id alone is no credential;
- sessions: a public session id (``sid``, OpenID Connect ``sid`` claim and RP-Initiated Logout),
  distinct from the secret cookie value whose digest is the key.

Other parts of issue 10 add their columns in this same revision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("browser_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("login_via", sa.String(length=16), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("sid", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(batch.f("uq_sessions_sid"), ["sid"])
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("kyc", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("kyc_matched_identity_id", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_omissions",
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("what", "window_start", "reason"),
    )
    op.create_table(
        "audit_verified",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.Column("verified_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("kyc_matched_identity_id")
        batch.drop_column("kyc")
    op.drop_table("audit_verified")
    op.drop_table("audit_omissions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_constraint(batch.f("uq_sessions_sid"), type_="unique")
        batch.drop_column("sid")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("login_via")
        batch.drop_column("browser_digest")
