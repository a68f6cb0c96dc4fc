"""Browser login sessions (single sign-on between authorization requests)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from trustanchor.digests import secret_digest
from trustanchor.storage.tables import sessions


def create(
    conn: Connection,
    session_id: str,
    holder_id: str,
    authentication: dict[str, Any],
    *,
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(sessions).values(
            id_digest=secret_digest(session_id),
            holder_id=holder_id,
            authentication=authentication,
            created_at=now,
            expires_at=expires_at,
        )
    )


def get(conn: Connection, session_id: str, *, now: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(sessions.c.authentication).where(
            sessions.c.id_digest == secret_digest(session_id),
            sessions.c.expires_at > now,
            sessions.c.ended_at.is_(None),
        )
    ).first()
    return None if row is None else dict(row.authentication)


def end(conn: Connection, session_id: str, *, now: int) -> None:
    conn.execute(
        update(sessions)
        .where(sessions.c.id_digest == secret_digest(session_id))
        .values(ended_at=now)
    )
