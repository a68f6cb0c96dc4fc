"""indexes for purge (issue 13: bounded growth)

``trustanchor purge`` selects expired rows by ``expires_at`` and, for grants, checks that no row
still refers to the grant. Without these indexes each batch scanned whole tables (only used_jtis
had an ``expires_at`` index): the purge's time grew with the tables, not with what it deletes.

- expires_at: access_tokens, refresh_tokens, authorization_codes, par_requests, interactions,
  grants; grants.revoked_at (a revoked grant goes once its rows are gone);
- grant_id: authorization_codes, auditor_sessions, holder_sessions (the "nothing refers to the
  grant any more" checks; refresh_tokens and access_tokens already had one).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_access_tokens_expires", "access_tokens", ["expires_at"]),
    ("ix_refresh_tokens_expires", "refresh_tokens", ["expires_at"]),
    ("ix_authorization_codes_expires", "authorization_codes", ["expires_at"]),
    ("ix_authorization_codes_grant", "authorization_codes", ["grant_id"]),
    ("ix_par_requests_expires", "par_requests", ["expires_at"]),
    ("ix_interactions_expires", "interactions", ["expires_at"]),
    ("ix_grants_expires", "grants", ["expires_at"]),
    ("ix_grants_revoked", "grants", ["revoked_at"]),
    ("ix_auditor_sessions_grant", "auditor_sessions", ["grant_id"]),
    ("ix_holder_sessions_grant", "holder_sessions", ["grant_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
