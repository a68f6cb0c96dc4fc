"""The schema, as SQLAlchemy Core tables. Alembic migrations under ``migrations/`` create it.

Timestamps are whole seconds since the epoch (integers): portable, cheap to compare, and the same
unit the protocol layer uses. One-time secrets are stored as SHA-256 digests, never raw.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

Time = BigInteger

anchors = Table(
    "anchors",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("display_name", JSON, nullable=False),
    Column("assurance_level", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("updated_at", Time, nullable=False),
)

anchor_sets = Table(
    "anchor_sets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("display_name", JSON, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Time, nullable=False),
)

anchor_set_members = Table(
    "anchor_set_members",
    metadata,
    Column("anchor_set_id", String(64), ForeignKey("anchor_sets.id", ondelete="CASCADE")),
    Column("anchor_id", String(64), ForeignKey("anchors.id", ondelete="CASCADE")),
    PrimaryKeyConstraint("anchor_set_id", "anchor_id"),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("metadata", JSON, nullable=False),
    Column("secret_digest", String(64), nullable=True),
    Column("updated_at", Time, nullable=False),
)

holders = Table(
    "holders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Time, nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("holder_id", String(64), ForeignKey("holders.id"), nullable=False),
    Column("anchor_id", String(64), ForeignKey("anchors.id"), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("claims", JSON, nullable=False),
    Column("assurance_level", String(16), nullable=False),
    Column("verified_at", Time, nullable=False),
    Column("expires_at", Time, nullable=True),
    Column("evidence_digest", String(64), nullable=False),
    Column("status_reference", JSON, nullable=True),
    # The credential's status as last learned (issue 4): valid at login; a later status-list
    # check may find it revoked or suspended, or fail to check (unknown).
    Column("credential_status", String(16), nullable=False, server_default="valid"),
    Column("status_checked_at", Time, nullable=True),
    # The branch and staff operator of the last face-to-face verification (counter terminal).
    Column("in_person", JSON, nullable=True),
    UniqueConstraint("anchor_id", "subject", name="uq_identities_anchor_subject"),
)
Index("ix_identities_holder", identities.c.holder_id)

par_requests = Table(
    "par_requests",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("params", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("consumed_at", Time, nullable=True),
)
Index("ix_par_requests_expires", par_requests.c.expires_at)  # purge (0011)

interactions = Table(
    "interactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("request", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("authentication", JSON, nullable=True),
    Column("finished_at", Time, nullable=True),
    # A policy decision asked for a stronger login (issue 4): which anchor set, what level,
    # how recent. Set when consent sends the person back to log in; cleared by the next login.
    Column("step_up", JSON, nullable=True),
    # Issue 10: the digest of the secret the starting browser holds (its binding cookie).
    Column("browser_digest", String(64), nullable=True),
    # Issue 10: where the finished authentication came from: "anchor" (a login in this
    # interaction) or "sso" (the browser's session); an SSO login never satisfies a step-up.
    Column("login_via", String(16), nullable=True),
    # Migration 0013: the login transaction whose answer is the current login, and whether that
    # answer reached this interaction's browser ("this") or only another device ("other": a QR
    # code answered from a phone). Only "this" starts an SSO session (services/consent.py).
    Column("login_transaction", String(64), nullable=True),
    Column("login_device", String(8), nullable=True),
)
Index("ix_interactions_expires", interactions.c.expires_at)  # purge (0011)

wallet_transactions = Table(
    "wallet_transactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("interaction_id", String(64), ForeignKey("interactions.id"), nullable=False),
    Column("anchor_id", String(64), nullable=False),
    Column("nonce", String(128), nullable=False, unique=True),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("request_fetched_at", Time, nullable=True),
    Column("consumed_at", Time, nullable=True),
    Column("outcome", JSON, nullable=True),
    # Which login method the transaction belongs to (wallet | certificate | upstream), and what
    # that method needs to finish it (migration 0007).
    Column("method", String(16), nullable=False, server_default="wallet"),
    Column("data", JSON, nullable=True),
)
Index("ix_wallet_transactions_interaction", wallet_transactions.c.interaction_id)

sessions = Table(
    "sessions",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("holder_id", String(64), ForeignKey("holders.id"), nullable=False),
    Column("authentication", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("ended_at", Time, nullable=True),
    # Issue 10: the public session id (OpenID Connect ``sid``), never the cookie's secret.
    Column("sid", String(64), nullable=True, unique=True),
)

grants = Table(
    "grants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("holder_id", String(64), nullable=True),
    Column("details", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("revoked_at", Time, nullable=True),
    Column("revoked_reason", String(64), nullable=True),
    # What the policy decision behind the grant relied on (issue 4): the anchor set, and the
    # account link for link grants, so that suspending an anchor or removing a link finds the
    # grants (and tokens) that depend on it. The anchors relied on are in grant_anchors.
    Column("anchor_set_id", String(64), nullable=True),
    Column("link_id", String(64), nullable=True),
)
Index("ix_grants_holder", grants.c.holder_id)
Index("ix_grants_link", grants.c.link_id)
# Purge (migration 0011): expired or revoked grants, once nothing refers to them.
Index("ix_grants_expires", grants.c.expires_at)
Index("ix_grants_revoked", grants.c.revoked_at)

grant_anchors = Table(
    "grant_anchors",
    metadata,
    Column("grant_id", String(64), ForeignKey("grants.id", ondelete="CASCADE"), nullable=False),
    Column("anchor_id", String(64), nullable=False),
    PrimaryKeyConstraint("grant_id", "anchor_id"),
)
Index("ix_grant_anchors_anchor", grant_anchors.c.anchor_id)

# --- accounts and links (issue 4) ---------------------------------------------------------------
# An account's raw reference at its intermediary is never stored: reference_digest is a keyed
# digest, unique per intermediary. Binding columns are set once the holder consented.

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("label", String(64), nullable=False),
    Column("reference_digest", String(64), nullable=False),
    Column("holder_id", String(64), ForeignKey("holders.id"), nullable=True),
    Column("binding_identity_id", String(64), nullable=True),
    Column("bound_at", Time, nullable=True),
    Column("status", String(16), nullable=False),
    Column("flagged_reason", String(64), nullable=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    # Issue 10: the KYC attributes the intermediary registered for the holder, only as a keyed
    # digest: {"normalizer", "claims" (names), "digest"} (services/account_kyc.py); NULL: none.
    Column("kyc", JSON, nullable=True),
    # The binding identity the registered KYC attributes matched when the account was bound
    # (NULL: not matched, or none registered). Claims stored with an identity change at every
    # login, so an account's KYC is compared once, at binding, with the claims just presented.
    Column("kyc_matched_identity_id", String(64), nullable=True),
    # The account link whose creation bound the account (migration 0012; NULL: unbound, or
    # bound before 0012). The intermediary removing that link releases the binding
    # (services/links.py). No foreign key: accounts <-> account_links would be a cycle.
    Column("bound_by_link_id", String(64), nullable=True),
    UniqueConstraint("client_id", "reference_digest", name="uq_accounts_client_reference"),
)
Index("ix_accounts_holder", accounts.c.holder_id)
Index("ix_accounts_binding_identity", accounts.c.binding_identity_id)

account_links = Table(
    "account_links",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("holder_id", String(64), ForeignKey("holders.id"), nullable=False),
    Column("deposit_account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("wallet_account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("removed_at", Time, nullable=True),
    Column("removed_reason", String(64), nullable=True),
    # the intermediary whose DELETE /links/<id> removed it (services/links.py); NULL otherwise
    Column("removed_by", String(64), nullable=True),
    Column("flagged_at", Time, nullable=True),
)
# At most one active link per account pair: a partial unique index (SQLite and PostgreSQL).
Index(
    "uq_account_links_active_pair",
    account_links.c.deposit_account_id,
    account_links.c.wallet_account_id,
    unique=True,
    sqlite_where=account_links.c.removed_at.is_(None),
    postgresql_where=account_links.c.removed_at.is_(None),
)
Index("ix_account_links_holder", account_links.c.holder_id)
Index("ix_account_links_wallet", account_links.c.wallet_account_id)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_digest", String(64), primary_key=True),
    Column("grant_id", String(64), ForeignKey("grants.id"), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("binding", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("consumed_at", Time, nullable=True),
)
# Purge (migration 0011): expired codes, and whether a grant still has any.
Index("ix_authorization_codes_expires", authorization_codes.c.expires_at)
Index("ix_authorization_codes_grant", authorization_codes.c.grant_id)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column("grant_id", String(64), ForeignKey("grants.id"), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("bound_jkt", String(64), nullable=True),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("consumed_at", Time, nullable=True),
)
Index("ix_refresh_tokens_grant", refresh_tokens.c.grant_id)
Index("ix_refresh_tokens_expires", refresh_tokens.c.expires_at)  # purge (0011)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=True),
    Column("client_id", String(128), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("revoked_at", Time, nullable=True),
)
Index("ix_access_tokens_grant", access_tokens.c.grant_id)
Index("ix_access_tokens_expires", access_tokens.c.expires_at)  # purge (0011)

used_jtis = Table(
    "used_jtis",
    metadata,
    Column("namespace", String(32), nullable=False),
    Column("jti_digest", String(64), nullable=False),
    Column("expires_at", Time, nullable=False),
    PrimaryKeyConstraint("namespace", "jti_digest"),
)
Index("ix_used_jtis_expires", used_jtis.c.expires_at)

# --- audit log (issue 3) -----------------------------------------------------------------------
# Leaves are appended inside the transaction of the work they record (so nothing is issued
# without its entry); the integrator later gives them consecutive tree indexes, stores the
# perfect-subtree hashes proofs need, and signs a checkpoint. Rows are never updated except to
# set tree_index once.

audit_leaves = Table(
    "audit_leaves",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("entry", Text, nullable=False),  # canonical JSON (docs/AUDIT-FORMAT.md)
    Column("leaf_hash", String(64), nullable=False),  # hex SHA-256(0x00 || entry)
    Column("kind", String(32), nullable=False),
    Column("ref", String(255), nullable=True),  # jti / decision id, for lookups
    Column("created_at", Time, nullable=False),
    Column("tree_index", BigInteger, nullable=True, unique=True),
)
Index("ix_audit_leaves_ref", audit_leaves.c.ref)
Index("ix_audit_leaves_pending", audit_leaves.c.tree_index, audit_leaves.c.id)

audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("level", Integer, nullable=False),  # subtree of 2**level leaves
    Column("position", BigInteger, nullable=False),  # first leaf index // 2**level
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("level", "position"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True),
    Column("root_hash", String(64), nullable=False),
    Column("signed_note", Text, nullable=False),
    Column("frontier", JSON, nullable=False),  # MerkleAccumulator frontier at this size
    Column("created_at", Time, nullable=False),
)

# Issue 10, bounded audit growth. Login failures left out of the log by the anonymous budget,
# counted per window and reason until one ``omitted`` entry summarises the window (then deleted);
# and the checkpoints the auditor console's log check verified, so the next check reads only the
# leaves added since (its own copy of the frontier at that size, checked against the root).
audit_omissions = Table(
    "audit_omissions",
    metadata,
    Column("what", String(32), nullable=False),
    Column("window_start", Time, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("what", "window_start", "reason"),
)

audit_verified = Table(
    "audit_verified",
    metadata,
    Column("size", BigInteger, primary_key=True),
    Column("root_hash", String(64), nullable=False),
    Column("frontier", JSON, nullable=False),
    Column("verified_at", Time, nullable=False),
)

# --- auditor console (issue 3) -----------------------------------------------------------------
# People designated by the operator to read the audit log in the web console, by their auditor
# reference (the holder pseudonym login entries carry, never the internal holder id), and their
# console sessions (the session id only as a digest, with the grant the console login produced).
# No foreign key to holders on purpose: a designation names a pseudonym, which the operator may
# register before its first login.

auditors = Table(
    "auditors",
    metadata,
    Column("holder_ref", String(64), primary_key=True),
    Column("label", String(200), nullable=False),  # the operator's note; never in the log
    Column("added_at", Time, nullable=False),
)

auditor_sessions = Table(
    "auditor_sessions",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("holder_ref", String(64), nullable=False),
    Column("grant_id", String(64), nullable=False),  # the console's grant; revoked: session over
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("ended_at", Time, nullable=True),
)
Index("ix_auditor_sessions_holder", auditor_sessions.c.holder_ref)
Index("ix_auditor_sessions_grant", auditor_sessions.c.grant_id)  # purge (0011)

# --- holders' self-service page (issue 4) ------------------------------------------------------
# Sessions of the page where holders list and remove their account links (/my/links): the session
# id only as a digest, the holder, and the grant the page's login produced (revoked: session over).

holder_sessions = Table(
    "holder_sessions",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("holder_id", String(64), ForeignKey("holders.id"), nullable=False),
    Column("grant_id", String(64), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
    Column("ended_at", Time, nullable=True),
)
Index("ix_holder_sessions_holder", holder_sessions.c.holder_id)
Index("ix_holder_sessions_grant", holder_sessions.c.grant_id)  # purge (0011)

# --- cumulative limits (issue 12) --------------------------------------------------------------
# What the service authorized, per anchor set, operation (value_transfer; funding will have its
# own), window kind, subject (a holder or a debtor account), currency and time bucket, in minor
# units. Rows are only ever added to, by one conditional statement (storage/counters_repo.py).
# ``bucket_start`` 0 is a rolling window's per-subject lock row (amount always 0).

cumulative_counters = Table(
    "cumulative_counters",
    metadata,
    Column("anchor_set_id", String(64), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("time_window", String(16), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("bucket_start", Time, nullable=False),
    Column("amount", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "anchor_set_id",
        "operation",
        "time_window",
        "subject_kind",
        "subject_id",
        "currency",
        "bucket_start",
    ),
)

# Which intermediaries approved an account link for movements debiting the account they hold
# (funding, issue 12): the link's creator by its own request, the other one through the links
# API. A funding movement debiting an account held elsewhere needs its holder's approval here.
link_approvals = Table(
    "link_approvals",
    metadata,
    Column("link_id", String(64), ForeignKey("account_links.id"), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("approved_at", Time, nullable=False),
    PrimaryKeyConstraint("link_id", "client_id"),
)

# Standing authorizations (issue 12): a holder's approval, once, of automatic funding over a link
# within bounds; its state is its grant's. Each movement token minted from one is listed.
standing_authorizations = Table(
    "standing_authorizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("grant_id", String(64), ForeignKey("grants.id"), nullable=False, unique=True),
    Column("link_id", String(64), ForeignKey("account_links.id"), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("holder_id", String(64), nullable=False),
    Column("entry", JSON, nullable=False),  # the granted standing_funding entry
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
)
Index("ix_standing_authorizations_holder_id", standing_authorizations.c.holder_id)
Index("ix_standing_authorizations_link_id", standing_authorizations.c.link_id)

standing_movements = Table(
    "standing_movements",
    metadata,
    Column("jti", String(64), primary_key=True),  # the movement token's
    Column("standing_id", String(64), ForeignKey("standing_authorizations.id"), nullable=False),
    Column("at", Time, nullable=False),
    Column("direction", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),  # minor units
)
Index(
    "ix_standing_movements_standing_id", standing_movements.c.standing_id, standing_movements.c.at
)
