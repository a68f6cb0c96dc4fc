"""The checkpoints the auditor console's log check verified (services/log_check.py): size,
root and the Merkle frontier at that size, so the next check starts there and reads only the
leaves added since. Rows are only ever inserted (one per verified size, first writer wins)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from trustanchor.storage.database import insert_once
from trustanchor.storage.tables import audit_verified


@dataclass(frozen=True, slots=True)
class Verified:
    size: int
    root_hash: bytes
    frontier: tuple[bytes, ...]
    verified_at: int


def latest(conn: Connection) -> Verified | None:
    """The largest size a check verified, or None before the first check."""
    row = conn.execute(
        select(audit_verified).order_by(audit_verified.c.size.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return Verified(
        size=int(row.size),
        root_hash=bytes.fromhex(row.root_hash),
        frontier=tuple(bytes.fromhex(h) for h in row.frontier),
        verified_at=int(row.verified_at),
    )


def remember(
    conn: Connection, *, size: int, root_hash: bytes, frontier: Sequence[bytes], now: int
) -> bool:
    """Remember that the log of ``size`` leaves with ``root_hash`` verified (False: a
    concurrent check remembered that size first)."""
    return insert_once(
        conn,
        audit_verified,
        {
            "size": size,
            "root_hash": root_hash.hex(),
            "frontier": [h.hex() for h in frontier],
            "verified_at": now,
        },
    )
