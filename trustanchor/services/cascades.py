"""What follows when trust is withdrawn after the fact (issue 4, "cascading effects"):

- an anchor is suspended: outstanding transfer and funding tokens and standing authorizations
  whose decision relied on it are revoked,
  and accounts bound through an identity it verified are flagged — with the links touching them —
  for re-verification; future decisions relying on it fail in the policy engine
  (``anchor_suspended``), which reads the anchor's status;
- a credential is found revoked or suspended (a status-list check): the identity records it, the
  holder's outstanding movement tokens and standing authorizations relying on that anchor are
  revoked, and accounts bound
  through the identity (and their links) are flagged; future decisions fail
  (``credential_revoked``).

Link tokens are not revoked by a flag: the link stands until its holder re-verifies or someone
removes it. Each step is one transaction with its audit entries; every call is idempotent, so an
operator re-running a command after a failure finishes the work.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from trustanchor.services.grant_details import GrantDetails
from trustanchor.services.links import revoke_grants
from trustanchor.storage import accounts_repo, grants_repo, identities_repo
from trustanchor.storage.database import Database

CREDENTIAL_STATUSES = ("valid", "revoked", "suspended", "unknown")


@dataclass(frozen=True, slots=True)
class CascadeResult:
    revoked_grants: int
    flagged_accounts: int
    flagged_links: int


def _transfer_grants(conn: Connection, grant_ids: list[str]) -> list[str]:
    result = []
    for grant_id in grant_ids:
        grant = grants_repo.get_grant(conn, grant_id)
        details = GrantDetails.from_json(grant.details) if grant is not None else None
        # Movement grants end; so does a standing authorization (it would go on minting
        # movements relying on what was withdrawn). A link grant stands: its link is flagged.
        if details is not None and (details.is_one_time or details.is_standing):
            result.append(grant_id)
    return result


def anchor_suspended(db: Database, anchor_id: str, *, at: int) -> CascadeResult:
    with db.transaction() as conn:
        grants = _transfer_grants(conn, grants_repo.live_grants_relying_on_anchor(conn, anchor_id))
        revoke_grants(conn, grants, reason="anchor_suspended", at=at)
        identity_ids = identities_repo.ids_at_anchor(conn, anchor_id)
        accounts = accounts_repo.flag_bound_by_identities(
            conn, identity_ids, reason="anchor_suspended", now=at
        )
        links = accounts_repo.flag_links_of_accounts(conn, accounts, now=at)
    return CascadeResult(len(grants), len(accounts), len(links))


def credential_status_changed(
    db: Database, identity_id: str, status: str, *, at: int
) -> CascadeResult | None:
    """Record a credential's new status; None when the identity is unknown. ``valid`` and
    ``unknown`` only record (a flag is cleared by the holder re-verifying, not by a check)."""
    if status not in CREDENTIAL_STATUSES:
        raise ValueError(f"unknown credential status {status!r}")
    with db.transaction() as conn:
        change = identities_repo.set_credential_status(conn, identity_id, status, now=at)
        if change is None:
            return None
        if status in ("valid", "unknown"):
            # Unknown is not revoked: decisions read it (``credential_status_unknown``, or
            # accepted where the set's policy fails open); nothing is withdrawn for it.
            return CascadeResult(0, 0, 0)
        grants = _transfer_grants(
            conn,
            grants_repo.live_grants_of_holder_relying_on_anchor(
                conn, change.holder_id, change.anchor_id
            ),
        )
        reason = f"credential_{status}"
        revoke_grants(conn, grants, reason=reason, at=at)
        accounts = accounts_repo.flag_bound_by_identities(
            conn, [identity_id], reason=reason, now=at
        )
        links = accounts_repo.flag_links_of_accounts(conn, accounts, now=at)
    return CascadeResult(len(grants), len(accounts), len(links))
