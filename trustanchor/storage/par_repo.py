"""Pushed authorization requests (RFC 9126). A request_uri is consumed once, atomically."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, update

from trustanchor.digests import secret_digest
from trustanchor.storage.tables import par_requests


def store(
    conn: Connection,
    request_uri: str,
    client_id: str,
    params: dict[str, Any],
    *,
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(par_requests).values(
            id_digest=secret_digest(request_uri),
            client_id=client_id,
            params=params,
            created_at=now,
            expires_at=expires_at,
        )
    )


def consume(
    conn: Connection, request_uri: str, client_id: str, *, now: int
) -> dict[str, Any] | None:
    """The stored request if ``request_uri`` is known, unexpired, unused and the client's."""
    row = conn.execute(
        update(par_requests)
        .where(
            par_requests.c.id_digest == secret_digest(request_uri),
            par_requests.c.client_id == client_id,
            par_requests.c.consumed_at.is_(None),
            par_requests.c.expires_at > now,
        )
        .values(consumed_at=now)
        .returning(par_requests.c.params)
    ).first()
    return None if row is None else dict(row.params)
