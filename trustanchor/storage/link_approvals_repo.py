"""Which intermediaries approved an account link for movements that debit the account they
hold (funding over the link: docs/POLICY.md "Funding"). One row per (link, intermediary):
approving is an insert that a second approval leaves alone, withdrawing is one delete."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select

from trustanchor.storage.database import insert_once
from trustanchor.storage.tables import link_approvals


def approve(conn: Connection, link_id: str, client_id: str, *, now: int) -> bool:
    """Record ``client_id``'s approval of the link; False when it had approved it already."""
    return insert_once(
        conn, link_approvals, {"link_id": link_id, "client_id": client_id, "approved_at": now}
    )


def withdraw(conn: Connection, link_id: str, client_id: str) -> bool:
    """Withdraw ``client_id``'s approval; False when there was none."""
    result = conn.execute(
        delete(link_approvals).where(
            link_approvals.c.link_id == link_id, link_approvals.c.client_id == client_id
        )
    )
    return result.rowcount > 0


def approved_by(conn: Connection, link_id: str, client_id: str) -> bool:
    row = conn.execute(
        select(link_approvals.c.link_id).where(
            link_approvals.c.link_id == link_id, link_approvals.c.client_id == client_id
        )
    ).first()
    return row is not None


def approved_among(conn: Connection, link_ids: Sequence[str], client_id: str) -> set[str]:
    """Which of ``link_ids`` ``client_id`` approved (one statement for a whole listing)."""
    if not link_ids:
        return set()
    rows = conn.execute(
        select(link_approvals.c.link_id).where(
            link_approvals.c.link_id.in_(list(link_ids)), link_approvals.c.client_id == client_id
        )
    ).all()
    return {row.link_id for row in rows}
