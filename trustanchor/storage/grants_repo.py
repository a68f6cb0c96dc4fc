"""Grants and everything issued under them: authorization codes, refresh tokens (rotated), and
the record of each JWT access token (for introspection and revocation).

A grant is the token family: its own client reusing a consumed code or refresh token revokes the
whole family; another client presenting them changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from trustanchor.digests import secret_digest
from trustanchor.storage.prepared import PreparedInsert
from trustanchor.storage.tables import (
    access_tokens,
    authorization_codes,
    grant_anchors,
    grants,
    refresh_tokens,
)


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    client_id: str
    holder_id: str | None
    details: dict[str, Any]
    expires_at: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class ConsumedCode:
    grant_id: str
    client_id: str
    binding: dict[str, Any]
    expires_at: int


class Reused(Exception):
    """A one-time artefact was presented again; its grant has been revoked."""

    def __init__(self, grant_id: str) -> None:
        self.grant_id = grant_id
        super().__init__(grant_id)


class IssuedToAnotherClient(Exception):
    """A code was presented by a client other than the one it was issued to. Nothing was
    consumed or revoked: only the owner's own second presentation proves the code was replayed
    against the owner (a leaked code must not let a stranger revoke someone else's grant)."""


def create_grant(
    conn: Connection,
    grant_id: str,
    client_id: str,
    holder_id: str | None,
    details: dict[str, Any],
    *,
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(grants).values(
            id=grant_id,
            client_id=client_id,
            holder_id=holder_id,
            details=details,
            created_at=now,
            expires_at=expires_at,
        )
    )


# Statements of the token endpoint's path, built once (their compiled form is cached by
# SQLAlchemy; building them per call cost more than running them).
_GET_GRANT = select(grants).where(grants.c.id == bindparam("b_id"))


def get_grant(conn: Connection, grant_id: str) -> Grant | None:
    row = conn.execute(_GET_GRANT, {"b_id": grant_id}).first()
    if row is None:
        return None
    return Grant(
        id=row.id,
        client_id=row.client_id,
        holder_id=row.holder_id,
        details=dict(row.details),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def store_code(
    conn: Connection,
    code: str,
    grant_id: str,
    client_id: str,
    binding: dict[str, Any],
    *,
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(authorization_codes).values(
            code_digest=secret_digest(code),
            grant_id=grant_id,
            client_id=client_id,
            binding=binding,
            created_at=now,
            expires_at=expires_at,
        )
    )


_CONSUME_CODE = (
    update(authorization_codes)
    .where(
        authorization_codes.c.code_digest == bindparam("b_digest"),
        authorization_codes.c.client_id == bindparam("b_client"),
        authorization_codes.c.consumed_at.is_(None),
    )
    .values(consumed_at=bindparam("b_now"))
    .returning(
        authorization_codes.c.grant_id,
        authorization_codes.c.client_id,
        authorization_codes.c.binding,
        authorization_codes.c.expires_at,
    )
)
_CODE_OWNER = select(authorization_codes.c.grant_id, authorization_codes.c.client_id).where(
    authorization_codes.c.code_digest == bindparam("b_digest")
)


def consume_code(conn: Connection, code: str, client_id: str, *, now: int) -> ConsumedCode | None:
    """Mark the client's code used (one conditional UPDATE). None if unknown;
    IssuedToAnotherClient (left untouched) if another client's; Reused if this client's code
    was already used."""
    digest = secret_digest(code)
    row = conn.execute(
        _CONSUME_CODE, {"b_digest": digest, "b_client": client_id, "b_now": now}
    ).first()
    if row is not None:
        return ConsumedCode(row.grant_id, row.client_id, dict(row.binding), row.expires_at)
    previous = conn.execute(_CODE_OWNER, {"b_digest": digest}).first()
    if previous is None:
        return None
    if previous.client_id != client_id:
        raise IssuedToAnotherClient()
    raise Reused(previous.grant_id)


_INSERT_REFRESH_TOKEN = PreparedInsert(
    refresh_tokens,
    ("token_digest", "grant_id", "client_id", "bound_jkt", "created_at", "expires_at"),
)


def store_refresh_token(
    conn: Connection,
    token: str,
    grant_id: str,
    client_id: str,
    *,
    bound_jkt: str | None,
    now: int,
    expires_at: int,
) -> None:
    _INSERT_REFRESH_TOKEN.run(
        conn,
        {
            "token_digest": secret_digest(token),
            "grant_id": grant_id,
            "client_id": client_id,
            "bound_jkt": bound_jkt,
            "created_at": now,
            "expires_at": expires_at,
        },
    )


@dataclass(frozen=True, slots=True)
class RotatedRefreshToken:
    grant_id: str
    expires_at: int
    bound_jkt: str | None


_ROTATE_REFRESH_TOKEN = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.token_digest == bindparam("b_digest"),
        refresh_tokens.c.client_id == bindparam("b_client"),
        refresh_tokens.c.consumed_at.is_(None),
    )
    .values(consumed_at=bindparam("b_now"))
    .returning(refresh_tokens.c.grant_id, refresh_tokens.c.expires_at, refresh_tokens.c.bound_jkt)
)
_REFRESH_OWNER = select(refresh_tokens.c.grant_id).where(
    refresh_tokens.c.token_digest == bindparam("b_digest"),
    refresh_tokens.c.client_id == bindparam("b_client"),
)


def rotate_refresh_token(
    conn: Connection, token: str, client_id: str, *, now: int
) -> RotatedRefreshToken | None:
    """Consume the client's refresh token (one conditional UPDATE). None if unknown or another
    client's (left untouched); Reused if it was already rotated."""
    digest = secret_digest(token)
    row = conn.execute(
        _ROTATE_REFRESH_TOKEN, {"b_digest": digest, "b_client": client_id, "b_now": now}
    ).first()
    if row is not None:
        return RotatedRefreshToken(row.grant_id, row.expires_at, row.bound_jkt)
    previous = conn.execute(_REFRESH_OWNER, {"b_digest": digest, "b_client": client_id}).first()
    if previous is None:
        return None
    raise Reused(previous.grant_id)


def find_refresh_token(conn: Connection, token: str) -> tuple[str, str] | None:
    row = conn.execute(
        select(refresh_tokens.c.grant_id, refresh_tokens.c.client_id).where(
            refresh_tokens.c.token_digest == secret_digest(token)
        )
    ).first()
    return None if row is None else (row.grant_id, row.client_id)


# Compiled once and run on the driver cursor: this runs for every issued token.
_INSERT_ACCESS_TOKEN = PreparedInsert(
    access_tokens, ("jti", "grant_id", "client_id", "created_at", "expires_at")
)


def record_access_token(
    conn: Connection, jti: str, grant_id: str | None, client_id: str, *, now: int, expires_at: int
) -> None:
    _INSERT_ACCESS_TOKEN.run(
        conn,
        {
            "jti": jti,
            "grant_id": grant_id,
            "client_id": client_id,
            "created_at": now,
            "expires_at": expires_at,
        },
    )


def grant_of_access_token(conn: Connection, jti: str) -> str | None:
    """The grant an access token was issued under (None for client_credentials or unknown)."""
    return conn.execute(
        select(access_tokens.c.grant_id).where(access_tokens.c.jti == jti)
    ).scalar_one_or_none()


def access_token_active(conn: Connection, jti: str, *, now: int) -> bool:
    """Whether the token was issued by us, is not revoked, and its grant is not revoked."""
    row = conn.execute(
        select(access_tokens.c.revoked_at, access_tokens.c.expires_at, grants.c.revoked_at)
        .select_from(access_tokens.outerjoin(grants, grants.c.id == access_tokens.c.grant_id))
        .where(access_tokens.c.jti == jti)
    ).first()
    if row is None:
        return False
    token_revoked, expires_at, grant_revoked = row
    return token_revoked is None and grant_revoked is None and expires_at > now


def revoke_access_token(conn: Connection, jti: str, client_id: str, *, now: int) -> bool:
    row = conn.execute(
        update(access_tokens)
        .where(
            access_tokens.c.jti == jti,
            access_tokens.c.client_id == client_id,
            access_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(access_tokens.c.jti)
    ).first()
    return row is not None


def revoke_grant(conn: Connection, grant_id: str, *, now: int, reason: str) -> bool:
    """Revoke a grant, its unused refresh tokens and its access tokens. True if it was live."""
    row = conn.execute(
        update(grants)
        .where(grants.c.id == grant_id, grants.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(grants.c.id)
    ).first()
    conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.grant_id == grant_id, refresh_tokens.c.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    conn.execute(
        update(access_tokens)
        .where(access_tokens.c.grant_id == grant_id, access_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return row is not None


# --- what a grant relied on (issue 4) -----------------------------------------------------------


def record_reliance(
    conn: Connection,
    grant_id: str,
    *,
    anchor_set_id: str,
    anchor_ids: Sequence[str],
    link_id: str | None,
) -> None:
    """Remember the anchor set, anchors and link a grant's decision relied on, so that
    suspending an anchor or removing a link finds the grant."""
    conn.execute(
        update(grants)
        .where(grants.c.id == grant_id)
        .values(anchor_set_id=anchor_set_id, link_id=link_id)
    )
    rows = [{"grant_id": grant_id, "anchor_id": anchor} for anchor in sorted(set(anchor_ids))]
    if rows:
        conn.execute(insert(grant_anchors), rows)


def live_grants_of_link(
    conn: Connection, link_id: str, *, except_client: str | None = None
) -> list[str]:
    """The unrevoked grants relying on the link (``except_client``: other clients' only)."""
    query = select(grants.c.id).where(grants.c.link_id == link_id, grants.c.revoked_at.is_(None))
    if except_client is not None:
        query = query.where(grants.c.client_id != except_client)
    return [row.id for row in conn.execute(query).all()]


def _grant(row: Any) -> Grant:
    return Grant(
        id=row.id,
        client_id=row.client_id,
        holder_id=row.holder_id,
        details=dict(row.details),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def grants_of_link(conn: Connection, link_id: str) -> list[Grant]:
    """Every grant that relied on the link, revoked or not (the consent that created it among
    them, unless purged)."""
    rows = conn.execute(
        select(grants).where(grants.c.link_id == link_id).order_by(grants.c.id)
    ).all()
    return [_grant(row) for row in rows]


def live_grants_of_holder(conn: Connection, holder_id: str, *, now: int) -> list[Grant]:
    """The holder's unrevoked, unexpired grants, with what they authorised."""
    rows = conn.execute(
        select(grants)
        .where(
            grants.c.holder_id == holder_id,
            grants.c.revoked_at.is_(None),
            grants.c.expires_at > now,
        )
        .order_by(grants.c.id)
    ).all()
    return [_grant(row) for row in rows]


def live_grants_relying_on_anchor(conn: Connection, anchor_id: str) -> list[str]:
    rows = conn.execute(
        select(grants.c.id)
        .select_from(grants.join(grant_anchors, grant_anchors.c.grant_id == grants.c.id))
        .where(grant_anchors.c.anchor_id == anchor_id, grants.c.revoked_at.is_(None))
    ).all()
    return sorted({row.id for row in rows})


def live_grants_of_holder_relying_on_anchor(
    conn: Connection, holder_id: str, anchor_id: str
) -> list[str]:
    rows = conn.execute(
        select(grants.c.id)
        .select_from(grants.join(grant_anchors, grant_anchors.c.grant_id == grants.c.id))
        .where(
            grant_anchors.c.anchor_id == anchor_id,
            grants.c.holder_id == holder_id,
            grants.c.revoked_at.is_(None),
        )
    ).all()
    return sorted({row.id for row in rows})
