"""Rows of ``clients``: a client's validated metadata JSON, an optional demo secret digest and
``updated_at``. Parsing the metadata into a :class:`~trustanchor.domain.clients.Client` (and
caching it) is the client registry's business (``services/client_registry.py``); this module only
reads and writes rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from trustanchor.storage.database import insert_once
from trustanchor.storage.tables import clients as clients_table

ID_CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True, slots=True)
class ClientRow:
    client_id: str
    metadata: Mapping[str, Any]
    secret_digest: str | None
    updated_at: int


def get_row(conn: Connection, client_id: str) -> ClientRow | None:
    row = conn.execute(select(clients_table).where(clients_table.c.client_id == client_id)).first()
    return None if row is None else _row(row)


def list_rows(conn: Connection) -> list[ClientRow]:
    rows = conn.execute(select(clients_table).order_by(clients_table.c.client_id)).all()
    return [_row(row) for row in rows]


def list_versions(conn: Connection, *, limit: int) -> list[tuple[str, int]]:
    """``(client_id, updated_at)`` of at most ``limit`` rows: the cheap query with which the client
    registry notices what changed (ids and integers only; no metadata is read or parsed)."""
    stmt = select(clients_table.c.client_id, clients_table.c.updated_at).limit(limit)
    return [(row.client_id, row.updated_at) for row in conn.execute(stmt)]


def get_rows(conn: Connection, client_ids: Sequence[str]) -> list[ClientRow]:
    """The rows of ``client_ids`` that exist, in chunks of :data:`ID_CHUNK` ids per statement."""
    found: list[ClientRow] = []
    for start in range(0, len(client_ids), ID_CHUNK):
        chunk = client_ids[start : start + ID_CHUNK]
        stmt = select(clients_table).where(clients_table.c.client_id.in_(chunk))
        found.extend(_row(row) for row in conn.execute(stmt))
    return found


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(clients_table)).scalar_one())


def exists(conn: Connection, client_id: str) -> bool:
    stmt = select(clients_table.c.client_id).where(clients_table.c.client_id == client_id)
    return conn.execute(stmt).first() is not None


def upsert_row(
    conn: Connection,
    client_id: str,
    metadata: Mapping[str, Any],
    secret_digest: str | None,
    now: int,
) -> bool:
    """Insert or update one client row inside the caller's transaction; False if unchanged.

    ``updated_at`` strictly increases on every change (even two changes within one second), since
    other processes use it to notice that their cached copy is stale.
    """
    values: dict[str, Any] = {
        "client_id": client_id,
        "metadata": dict(metadata),
        "secret_digest": secret_digest,
        "updated_at": now,
    }
    if insert_once(conn, clients_table, values):
        return True
    row = conn.execute(
        select(clients_table).where(clients_table.c.client_id == client_id).with_for_update()
    ).one()
    if row.metadata == values["metadata"] and row.secret_digest == secret_digest:
        return False
    values["updated_at"] = max(now, row.updated_at + 1)
    conn.execute(update(clients_table).where(clients_table.c.client_id == client_id).values(values))
    return True


def delete_row(conn: Connection, client_id: str) -> bool:
    result = conn.execute(delete(clients_table).where(clients_table.c.client_id == client_id))
    return bool(result.rowcount)


def _row(row: Any) -> ClientRow:
    return ClientRow(
        client_id=row.client_id,
        metadata=row.metadata,
        secret_digest=row.secret_digest,
        updated_at=row.updated_at,
    )
