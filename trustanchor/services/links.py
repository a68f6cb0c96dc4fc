"""Removing account links, from whichever side asks (the intermediary's API, the holder's
self-service page, an account being closed): the link is marked removed and every grant that
relied on it is revoked — its refresh tokens and access tokens with it — and audited, in one
transaction. "A token for an account link used after the link is removed → refused": resource
servers see it through introspection and our own token checks, which consult grant revocation.
"""

from __future__ import annotations

from sqlalchemy import Connection

from trustanchor.services import audit_trail
from trustanchor.services.container import Services
from trustanchor.storage import accounts_repo, grants_repo


def remove_in(conn: Connection, link_id: str, *, reason: str, at: int) -> bool:
    """Remove ``link_id`` inside the caller's transaction; False when it was not active."""
    if accounts_repo.remove_link(conn, link_id, reason=reason, now=at) is None:
        return False
    revoke_grants(conn, grants_repo.live_grants_of_link(conn, link_id), reason=reason, at=at)
    return True


def revoke_grants(conn: Connection, grant_ids: list[str], *, reason: str, at: int) -> None:
    for grant_id in grant_ids:
        if grants_repo.revoke_grant(conn, grant_id, now=at, reason=reason):
            audit_trail.record(
                conn, audit_trail.grant_revoked(at=at, grant_id=grant_id, reason=reason)
            )


def remove_for_holder(services: Services, holder_id: str, link_id: str) -> bool:
    """The holder's own removal (self-service page): only their own active links."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        link = accounts_repo.get_link(conn, link_id)
        if link is None or link.holder_id != holder_id:
            return False
        return remove_in(conn, link_id, reason="removed_by_holder", at=at)
