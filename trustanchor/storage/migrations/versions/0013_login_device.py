"""where an interaction's login answer arrived (relayed QR codes start no SSO session)

- interactions.login_transaction: the login transaction whose answer is the interaction's current
  login (NULL for a login taken over from an SSO session, and for rows older than this).
- interactions.login_device: ``this`` when that answer reached the browser holding the
  interaction (an upstream provider's callback in it, or the wallet's or card app's same-device
  return with its one-time response code), ``other`` while it came only from another device
  (the wallet's ``direct_post``, noticed by the status poll). Consent starts an SSO session only
  for ``this``: a QR code relayed from an attacker's browser to a victim's phone gives the
  attacker's browser that one request at most, never a session
  (docs/HOLDER-INTEGRITY.md, "Relay").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("login_transaction", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("login_device", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("login_device")
        batch.drop_column("login_transaction")
