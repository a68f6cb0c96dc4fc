"""which link's creation bound an account (attack-session finding F1)

- accounts.bound_by_link_id: the account link whose consent bound the account (it was unbound,
  or flagged and bound again, when that link was created); NULL for an unbound account and for
  one bound before this migration. When the intermediary removes that link
  (``DELETE /links/<id>``), the accounts it bound and no active link uses are released
  (services/links.py, docs/HOLDER-INTEGRITY.md "When the wrong person approved a link").
  No foreign key: the link row is inserted in the same transaction as the binding, and a
  foreign key in each direction between accounts and account_links would be a cycle.
- account_links.removed_by: the intermediary (client id) whose ``DELETE /links/<id>`` removed the
  link; NULL for other removals. Only the accounts that intermediary registered are released
  by its removal (a second attack session: one intermediary's removal released another's
  accounts).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("bound_by_link_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("account_links") as batch:
        batch.add_column(sa.Column("removed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_links") as batch:
        batch.drop_column("removed_by")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("bound_by_link_id")
