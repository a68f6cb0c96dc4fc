"""Browser login sessions (single sign-on between authorization requests).

The cookie holds a random secret; only its digest is the key here. ``sid`` is the session's
public id (the OpenID Connect ``sid`` claim, RP-Initiated Logout), unrelated to the secret.
A session is created only from a finished login that the browser approved, gets new ids at every
login, and records the holder and the authentication (achieved ``acr``, ``auth_time``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from trustanchor.digests import secret_digest
from trustanchor.storage.tables import sessions


@dataclass(frozen=True, slots=True)
class SsoSession:
    sid: str | None
    holder_id: str
    authentication: dict[str, Any]
    created_at: int
    expires_at: int


def create(
    conn: Connection,
    session_id: str,
    *,
    sid: str,
    holder_id: str,
    authentication: dict[str, Any],
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(sessions).values(
            id_digest=secret_digest(session_id),
            sid=sid,
            holder_id=holder_id,
            authentication=authentication,
            created_at=now,
            expires_at=expires_at,
        )
    )


def get(conn: Connection, session_id: str, *, now: int) -> SsoSession | None:
    """The live session whose cookie secret is ``session_id``."""
    row = conn.execute(
        select(
            sessions.c.sid,
            sessions.c.holder_id,
            sessions.c.authentication,
            sessions.c.created_at,
            sessions.c.expires_at,
        ).where(
            sessions.c.id_digest == secret_digest(session_id),
            sessions.c.expires_at > now,
            sessions.c.ended_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return SsoSession(
        sid=row.sid,
        holder_id=row.holder_id,
        authentication=dict(row.authentication),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def end_all_of_holder(conn: Connection, holder_id: str, *, now: int) -> int:
    """End every open session of ``holder_id`` (an operator undid a wrong identity join: any of
    them may carry that identity's login); how many ended."""
    result = conn.execute(
        update(sessions)
        .where(sessions.c.holder_id == holder_id, sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(result.rowcount)


def end(conn: Connection, session_id: str, *, now: int) -> bool:
    """End the session whose cookie secret is ``session_id``; True when it was open."""
    result = conn.execute(
        update(sessions)
        .where(sessions.c.id_digest == secret_digest(session_id), sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return bool(result.rowcount)
