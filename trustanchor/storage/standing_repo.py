"""Standing authorizations and the movements minted from them (services/standing_funding.py).

A standing authorization's state is its grant's: revoking the grant (the holder on /my, an
intermediary through the links API, a link removal, an anchor suspension or a revoked
credential) ends it, and an expired grant has ended. Rows are never deleted here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from trustanchor.storage.tables import grants, standing_authorizations, standing_movements


@dataclass(frozen=True, slots=True)
class StandingRow:
    id: str
    grant_id: str
    link_id: str
    client_id: str
    holder_id: str
    entry: Mapping[str, Any]
    created_at: int
    expires_at: int
    revoked_at: int | None
    revoked_reason: str | None

    def active(self, at: int) -> bool:
        return self.revoked_at is None and at < self.expires_at


@dataclass(frozen=True, slots=True)
class Movement:
    jti: str
    standing_id: str
    at: int
    direction: str
    currency: str
    amount: int  # minor units


def _select() -> Any:
    return select(standing_authorizations, grants.c.revoked_at, grants.c.revoked_reason).join(
        grants, grants.c.id == standing_authorizations.c.grant_id
    )


def _row(row: Row[Any]) -> StandingRow:
    return StandingRow(
        id=row.id,
        grant_id=row.grant_id,
        link_id=row.link_id,
        client_id=row.client_id,
        holder_id=row.holder_id,
        entry=row.entry,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_reason=row.revoked_reason,
    )


def create(
    conn: Connection,
    *,
    standing_id: str,
    grant_id: str,
    link_id: str,
    client_id: str,
    holder_id: str,
    entry: Mapping[str, Any],
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(standing_authorizations).values(
            id=standing_id,
            grant_id=grant_id,
            link_id=link_id,
            client_id=client_id,
            holder_id=holder_id,
            entry=dict(entry),
            created_at=now,
            expires_at=expires_at,
        )
    )


def get(conn: Connection, standing_id: str) -> StandingRow | None:
    row = conn.execute(_select().where(standing_authorizations.c.id == standing_id)).first()
    return None if row is None else _row(row)


def of_grant(conn: Connection, grant_id: str) -> StandingRow | None:
    row = conn.execute(_select().where(standing_authorizations.c.grant_id == grant_id)).first()
    return None if row is None else _row(row)


def for_holder(conn: Connection, holder_id: str, *, limit: int = 200) -> list[StandingRow]:
    """The holder's standing authorizations, newest first (ended ones included)."""
    rows = conn.execute(
        _select()
        .where(standing_authorizations.c.holder_id == holder_id)
        .order_by(standing_authorizations.c.created_at.desc(), standing_authorizations.c.id)
        .limit(limit)
    ).all()
    return [_row(row) for row in rows]


def for_links(conn: Connection, link_ids: Sequence[str]) -> list[StandingRow]:
    if not link_ids:
        return []
    rows = conn.execute(
        _select()
        .where(standing_authorizations.c.link_id.in_(list(link_ids)))
        .order_by(standing_authorizations.c.created_at, standing_authorizations.c.id)
    ).all()
    return [_row(row) for row in rows]


def record_movement(
    conn: Connection,
    *,
    jti: str,
    standing_id: str,
    at: int,
    direction: str,
    currency: str,
    amount: int,
) -> None:
    conn.execute(
        insert(standing_movements).values(
            jti=jti,
            standing_id=standing_id,
            at=at,
            direction=direction,
            currency=currency,
            amount=amount,
        )
    )


def movements(
    conn: Connection, standing_ids: Sequence[str], *, limit: int = 50
) -> dict[str, list[Movement]]:
    """The latest ``limit`` movements of each standing authorization, newest first."""
    found: dict[str, list[Movement]] = {sid: [] for sid in standing_ids}
    for standing_id in standing_ids:
        rows = conn.execute(
            select(standing_movements)
            .where(standing_movements.c.standing_id == standing_id)
            .order_by(standing_movements.c.at.desc(), standing_movements.c.jti)
            .limit(limit)
        ).all()
        found[standing_id] = [
            Movement(r.jti, r.standing_id, r.at, r.direction, r.currency, r.amount) for r in rows
        ]
    return found
