"""Sessions of the holders' self-service page (/my/links).

A session is stored by the digest of its id only, with the holder and the grant its login
produced; every request looks it up together with the grant in one statement
(:func:`live_session`), so ending a session, its expiry or revoking the grant (the token service
does so when the login's code is presented twice) takes effect on the very next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from trustanchor.digests import secret_digest
from trustanchor.storage.tables import grants, holder_sessions


@dataclass(frozen=True, slots=True)
class HolderSession:
    holder_id: str
    grant_id: str
    expires_at: int


def create_session(
    conn: Connection,
    session_id: str,
    holder_id: str,
    grant_id: str,
    *,
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        holder_sessions.insert().values(
            id_digest=secret_digest(session_id),
            holder_id=holder_id,
            grant_id=grant_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


def live_session(conn: Connection, session_id: str, *, now: int) -> HolderSession | None:
    """The session if it exists, has not expired, was not ended and its grant was not revoked."""
    row = conn.execute(
        select(
            holder_sessions.c.holder_id, holder_sessions.c.grant_id, holder_sessions.c.expires_at
        )
        .select_from(holder_sessions.join(grants, grants.c.id == holder_sessions.c.grant_id))
        .where(
            holder_sessions.c.id_digest == secret_digest(session_id),
            holder_sessions.c.expires_at > now,
            holder_sessions.c.ended_at.is_(None),
            grants.c.revoked_at.is_(None),
        )
    ).first()
    return None if row is None else HolderSession(row.holder_id, row.grant_id, row.expires_at)


def end_session(conn: Connection, session_id: str, *, now: int) -> bool:
    result = conn.execute(
        update(holder_sessions)
        .where(
            holder_sessions.c.id_digest == secret_digest(session_id),
            holder_sessions.c.ended_at.is_(None),
        )
        .values(ended_at=now)
    )
    return result.rowcount == 1
