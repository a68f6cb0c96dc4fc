"""Designated auditors and their console sessions.

An auditor is named by their auditor reference (the holder pseudonym of the audit log). A console
session is stored by the digest of its id only, with the grant its login produced; every console
request looks it up together with the designation and the grant in one statement
(:func:`session_access`), so ending a session, removing a designation or revoking the grant (the
token service does so when the login's code is presented twice) takes effect on the very next
request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from trustanchor.digests import secret_digest
from trustanchor.storage.database import insert_once
from trustanchor.storage.tables import auditor_sessions, auditors, grants


@dataclass(frozen=True, slots=True)
class Auditor:
    holder_ref: str
    label: str
    added_at: int


@dataclass(frozen=True, slots=True)
class SessionAccess:
    """A live console session: whose it is, and the designation if there (still) is one."""

    holder_ref: str
    expires_at: int
    auditor: Auditor | None


def list_auditors(conn: Connection) -> list[Auditor]:
    rows = conn.execute(select(auditors).order_by(auditors.c.added_at, auditors.c.holder_ref))
    return [Auditor(row.holder_ref, row.label, row.added_at) for row in rows]


def get(conn: Connection, holder_ref: str) -> Auditor | None:
    row = conn.execute(select(auditors).where(auditors.c.holder_ref == holder_ref)).first()
    return None if row is None else Auditor(row.holder_ref, row.label, row.added_at)


def add(conn: Connection, holder_ref: str, label: str, *, now: int) -> bool:
    """Designate ``holder_ref``; False when it already is (nothing changed)."""
    return insert_once(conn, auditors, {"holder_ref": holder_ref, "label": label, "added_at": now})


def relabel(conn: Connection, holder_ref: str, label: str) -> bool:
    result = conn.execute(
        update(auditors)
        .where(auditors.c.holder_ref == holder_ref, auditors.c.label != label)
        .values(label=label)
    )
    return result.rowcount == 1


def remove(conn: Connection, holder_ref: str, *, now: int) -> bool:
    """Withdraw a designation and end that person's open console sessions (they would be refused
    anyway; ending them keeps the table truthful). False when ``holder_ref`` was not designated."""
    result = conn.execute(delete(auditors).where(auditors.c.holder_ref == holder_ref))
    if result.rowcount != 1:
        return False
    conn.execute(
        update(auditor_sessions)
        .where(auditor_sessions.c.holder_ref == holder_ref, auditor_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return True


def create_session(
    conn: Connection,
    session_id: str,
    holder_ref: str,
    grant_id: str,
    *,
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        auditor_sessions.insert().values(
            id_digest=secret_digest(session_id),
            holder_ref=holder_ref,
            grant_id=grant_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


def session_access(conn: Connection, session_id: str, *, now: int) -> SessionAccess | None:
    """The session if it exists, has not expired, was not ended and its grant was not revoked,
    with its designation (None when the person is not, or no longer, designated)."""
    row = conn.execute(
        select(
            auditor_sessions.c.holder_ref,
            auditor_sessions.c.expires_at,
            auditors.c.label,
            auditors.c.added_at,
        )
        .select_from(
            auditor_sessions.join(grants, grants.c.id == auditor_sessions.c.grant_id).outerjoin(
                auditors, auditors.c.holder_ref == auditor_sessions.c.holder_ref
            )
        )
        .where(
            auditor_sessions.c.id_digest == secret_digest(session_id),
            auditor_sessions.c.expires_at > now,
            auditor_sessions.c.ended_at.is_(None),
            grants.c.revoked_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    auditor = None if row.label is None else Auditor(row.holder_ref, row.label, row.added_at)
    return SessionAccess(row.holder_ref, row.expires_at, auditor)


def end_session(conn: Connection, session_id: str, *, now: int) -> bool:
    result = conn.execute(
        update(auditor_sessions)
        .where(
            auditor_sessions.c.id_digest == secret_digest(session_id),
            auditor_sessions.c.ended_at.is_(None),
        )
        .values(ended_at=now)
    )
    return result.rowcount == 1
