"""login methods beside the wallet (issue 11)

- wallet_transactions become the transactions of every login method: ``method`` says which
  (``wallet``: OpenID4VP; ``certificate``: the X.509 challenge of docs/CERTIFICATE-LOGIN.md;
  ``upstream``: an authorization request to an upstream OpenID Provider), and ``data`` holds what
  that method needs to finish (the challenge's instants and which certificates it asks for; the
  upstream request's PKCE verifier and max_age). Rows written before this revision are
  ``wallet``.
- identities: ``in_person``, the branch and staff operator of the last face-to-face (counter
  terminal) verification of this identity, or NULL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wallet_transactions") as batch:
        batch.add_column(
            sa.Column("method", sa.String(length=16), nullable=False, server_default="wallet")
        )
        batch.add_column(sa.Column("data", sa.JSON(), nullable=True))
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("in_person", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("in_person")
    with op.batch_alter_table("wallet_transactions") as batch:
        batch.drop_column("data")
        batch.drop_column("method")
