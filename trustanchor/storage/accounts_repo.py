"""Accounts and account links.

Every state change is one conditional statement, so two processes racing on the same account
or link get one winner: registering (unique (client, reference digest)), binding (only an account
the binding intermediary registered, only while unbound or already bound to the same holder),
creating a link (partial unique index on the active
pair), removing a link (only while active), releasing a binding (only while still bound by that link
and no active link uses the account).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, case, or_, select, update

from trustanchor.domain.accounts import Account, AccountKyc, AccountLink
from trustanchor.storage.database import insert_once
from trustanchor.storage.tables import account_links, accounts


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        client_id=row.client_id,
        kind=row.kind,
        label=row.label,
        holder_id=row.holder_id,
        binding_identity_id=row.binding_identity_id,
        bound_at=row.bound_at,
        status=row.status,
        flagged_reason=row.flagged_reason,
        created_at=row.created_at,
        kyc=None if row.kyc is None else AccountKyc.from_json(row.kyc),
        kyc_matched_identity_id=row.kyc_matched_identity_id,
        bound_by_link_id=row.bound_by_link_id,
    )


def _link(row: Row[Any]) -> AccountLink:
    return AccountLink(
        id=row.id,
        holder_id=row.holder_id,
        deposit_account_id=row.deposit_account_id,
        wallet_account_id=row.wallet_account_id,
        created_at=row.created_at,
        removed_at=row.removed_at,
        removed_reason=row.removed_reason,
        flagged_at=row.flagged_at,
        removed_by=row.removed_by,
    )


# --- accounts -------------------------------------------------------------------------------


def register(
    conn: Connection,
    *,
    account_id: str,
    client_id: str,
    kind: str,
    label: str,
    reference_digest: str,
    now: int,
    kyc: AccountKyc | None = None,
) -> tuple[Account, bool]:
    """The account for (client, reference digest): created now (True) or existing (False).

    A second registration of the same reference returns the first account unchanged, whatever
    kind, label or KYC attributes it names; the caller compares and reports a conflict."""
    inserted = insert_once(
        conn,
        accounts,
        {
            "id": account_id,
            "client_id": client_id,
            "kind": kind,
            "label": label,
            "reference_digest": reference_digest,
            "kyc": None if kyc is None else kyc.to_json(),
            "status": "active",
            "created_at": now,
            "updated_at": now,
        },
    )
    row = conn.execute(
        select(accounts).where(
            accounts.c.client_id == client_id, accounts.c.reference_digest == reference_digest
        )
    ).one()
    return _account(row), inserted and row.id == account_id


def get(conn: Connection, account_id: str) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    return None if row is None else _account(row)


def get_many(conn: Connection, account_ids: Sequence[str]) -> dict[str, Account]:
    if not account_ids:
        return {}
    rows = conn.execute(select(accounts).where(accounts.c.id.in_(list(account_ids)))).all()
    return {row.id: _account(row) for row in rows}


def list_for_client(conn: Connection, client_id: str, *, limit: int = 1000) -> list[Account]:
    rows = conn.execute(
        select(accounts)
        .where(accounts.c.client_id == client_id)
        .order_by(accounts.c.created_at, accounts.c.id)
        .limit(limit)
    ).all()
    return [_account(row) for row in rows]


def list_for_holder(conn: Connection, holder_id: str) -> list[Account]:
    rows = conn.execute(
        select(accounts).where(accounts.c.holder_id == holder_id).order_by(accounts.c.id)
    ).all()
    return [_account(row) for row in rows]


def bind(
    conn: Connection,
    account_id: str,
    *,
    registered_by: str,
    holder_id: str,
    identity_id: str,
    now: int,
    kyc_matched: bool = False,
    link_id: str | None = None,
) -> bool:
    """Bind the account to ``holder_id`` through ``identity_id``, for the intermediary
    ``registered_by`` — only if that intermediary registered it and it is unbound or already
    bound to that holder (a re-verification refreshes the binding and clears a flag). False when
    another intermediary registered it, it belongs to someone else or is closed: the caller
    must not go on. ``kyc_matched``: the registered KYC attributes matched ``identity_id``'s
    verified claims (recorded with the binding; a binding without it records no match).
    ``link_id``: the link whose creation binds it now (``bound_by_link_id``), so that the
    intermediary removing that link can release the binding (:func:`release`)."""
    result = conn.execute(
        update(accounts)
        .where(
            accounts.c.id == account_id,
            accounts.c.client_id == registered_by,
            accounts.c.status != "closed",
            or_(accounts.c.holder_id.is_(None), accounts.c.holder_id == holder_id),
        )
        .values(
            holder_id=holder_id,
            binding_identity_id=identity_id,
            kyc_matched_identity_id=identity_id if kyc_matched else None,
            bound_at=now,
            bound_by_link_id=link_id,
            status="active",
            flagged_reason=None,
            updated_at=now,
        )
    )
    return result.rowcount == 1


def release(conn: Connection, account_id: str, *, holder_id: str, link_id: str, now: int) -> bool:
    """Undo the binding that ``link_id``'s creation made: the account becomes unbound (holder,
    binding identity, KYC match, bound time and binding link cleared; a flag, which was about
    that binding, goes with it). One conditional update: only while the account is still
    bound to ``holder_id`` by ``link_id`` and no active link uses it, so a concurrent new link
    or a rebinding wins over the release. False when nothing was released.

    The row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite's single writer serialises
    without it) and the active links are read by the next statement, under a snapshot taken
    after the lock: a consent relying on the account (:func:`rely_on`) either committed its new
    link before, which keeps the binding, or finds the account released and fails."""
    conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())
    in_use = (
        select(account_links.c.id)
        .where(
            account_links.c.removed_at.is_(None),
            or_(
                account_links.c.deposit_account_id == account_id,
                account_links.c.wallet_account_id == account_id,
            ),
        )
        .exists()
    )
    result = conn.execute(
        update(accounts)
        .where(
            accounts.c.id == account_id,
            accounts.c.holder_id == holder_id,
            accounts.c.bound_by_link_id == link_id,
            ~in_use,
        )
        .values(
            holder_id=None,
            binding_identity_id=None,
            kyc_matched_identity_id=None,
            bound_at=None,
            bound_by_link_id=None,
            status=case((accounts.c.status == "flagged", "active"), else_=accounts.c.status),
            flagged_reason=None,
            updated_at=now,
        )
    )
    return result.rowcount == 1


def rely_on(conn: Connection, account_id: str, *, holder_id: str) -> bool:
    """Hold an account already bound to ``holder_id`` that a new link relies on, until the
    caller's transaction ends (a row lock taken by a no-op update, so that :func:`release`
    waits for this consent); False when it is no longer bound to that holder or is closed."""
    result = conn.execute(
        update(accounts)
        .where(
            accounts.c.id == account_id,
            accounts.c.holder_id == holder_id,
            accounts.c.status != "closed",
        )
        .values(updated_at=accounts.c.updated_at)
    )
    return result.rowcount == 1


def close(conn: Connection, account_id: str, *, client_id: str, now: int) -> bool:
    """Close an account of ``client_id``; False when unknown, someone else's or already closed."""
    result = conn.execute(
        update(accounts)
        .where(
            accounts.c.id == account_id,
            accounts.c.client_id == client_id,
            accounts.c.status != "closed",
        )
        .values(status="closed", updated_at=now)
    )
    return result.rowcount == 1


def flag_bound_by_identities(
    conn: Connection, identity_ids: Sequence[str], *, reason: str, now: int
) -> list[str]:
    """Flag active accounts whose binding relies on one of ``identity_ids``; their ids."""
    if not identity_ids:
        return []
    rows = conn.execute(
        update(accounts)
        .where(
            accounts.c.binding_identity_id.in_(list(identity_ids)),
            accounts.c.status == "active",
        )
        .values(status="flagged", flagged_reason=reason, updated_at=now)
        .returning(accounts.c.id)
    ).all()
    return [row.id for row in rows]


# --- links ----------------------------------------------------------------------------------


def create_link(
    conn: Connection,
    *,
    link_id: str,
    holder_id: str,
    deposit_account_id: str,
    wallet_account_id: str,
    now: int,
) -> AccountLink:
    """The active link of the pair: created now, or the one that already exists (a repeated
    link request is not an error; it gets the existing link). One statement decides: the
    partial unique index on the active pair makes a racing second insert a no-op."""
    insert_once(
        conn,
        account_links,
        {
            "id": link_id,
            "holder_id": holder_id,
            "deposit_account_id": deposit_account_id,
            "wallet_account_id": wallet_account_id,
            "created_at": now,
        },
    )
    link = active_link(conn, deposit_account_id, wallet_account_id)
    if link is None:  # pragma: no cover - removed between the two statements of one transaction
        raise RuntimeError("account link vanished")
    return link


def lock_active_link(conn: Connection, link_id: str) -> bool:
    """Whether ``link_id`` is active, holding its row until the caller's transaction ends
    (``FOR UPDATE`` on PostgreSQL; SQLite's single writer serialises without it): a grant that
    relies on the link is then recorded either before a removal, which revokes it, or not at
    all."""
    row = conn.execute(
        select(account_links.c.removed_at).where(account_links.c.id == link_id).with_for_update()
    ).first()
    return row is not None and row.removed_at is None


def get_link(conn: Connection, link_id: str) -> AccountLink | None:
    row = conn.execute(select(account_links).where(account_links.c.id == link_id)).first()
    return None if row is None else _link(row)


def active_link(
    conn: Connection, deposit_account_id: str, wallet_account_id: str
) -> AccountLink | None:
    row = conn.execute(
        select(account_links).where(
            account_links.c.deposit_account_id == deposit_account_id,
            account_links.c.wallet_account_id == wallet_account_id,
            account_links.c.removed_at.is_(None),
        )
    ).first()
    return None if row is None else _link(row)


def links_for_holder(
    conn: Connection, holder_id: str, *, active_only: bool = True
) -> list[AccountLink]:
    query = select(account_links).where(account_links.c.holder_id == holder_id)
    if active_only:
        query = query.where(account_links.c.removed_at.is_(None))
    rows = conn.execute(query.order_by(account_links.c.created_at, account_links.c.id)).all()
    return [_link(row) for row in rows]


def links_for_client(
    conn: Connection, client_id: str, *, active_only: bool = True
) -> list[AccountLink]:
    """Links with at least one account registered by ``client_id``."""
    own = select(accounts.c.id).where(accounts.c.client_id == client_id)
    query = select(account_links).where(
        or_(
            account_links.c.deposit_account_id.in_(own),
            account_links.c.wallet_account_id.in_(own),
        )
    )
    if active_only:
        query = query.where(account_links.c.removed_at.is_(None))
    rows = conn.execute(query.order_by(account_links.c.created_at, account_links.c.id)).all()
    return [_link(row) for row in rows]


def remove_link(
    conn: Connection, link_id: str, *, reason: str, now: int, removed_by: str | None = None
) -> AccountLink | None:
    """Mark an active link removed (by the intermediary ``removed_by``, when it was one); None
    when unknown or already removed (one winner)."""
    result = conn.execute(
        update(account_links)
        .where(account_links.c.id == link_id, account_links.c.removed_at.is_(None))
        .values(removed_at=now, removed_reason=reason, removed_by=removed_by)
    )
    if result.rowcount != 1:
        return None
    return get_link(conn, link_id)


def flag_links_of_accounts(conn: Connection, account_ids: Sequence[str], *, now: int) -> list[str]:
    """Flag active links touching ``account_ids`` for re-verification; their ids."""
    if not account_ids:
        return []
    ids = list(account_ids)
    rows = conn.execute(
        update(account_links)
        .where(
            account_links.c.removed_at.is_(None),
            account_links.c.flagged_at.is_(None),
            or_(
                account_links.c.deposit_account_id.in_(ids),
                account_links.c.wallet_account_id.in_(ids),
            ),
        )
        .values(flagged_at=now)
        .returning(account_links.c.id)
    ).all()
    return [row.id for row in rows]


def clear_link_flag(conn: Connection, link_id: str) -> None:
    conn.execute(
        update(account_links)
        .where(and_(account_links.c.id == link_id, account_links.c.removed_at.is_(None)))
        .values(flagged_at=None)
    )


def links_of_account(conn: Connection, account_id: str) -> list[AccountLink]:
    """Active links touching ``account_id``."""
    rows = conn.execute(
        select(account_links).where(
            account_links.c.removed_at.is_(None),
            or_(
                account_links.c.deposit_account_id == account_id,
                account_links.c.wallet_account_id == account_id,
            ),
        )
    ).all()
    return [_link(row) for row in rows]
