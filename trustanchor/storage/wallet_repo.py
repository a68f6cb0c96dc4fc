"""Login transactions: one per attempt of a login method at one anchor (an OpenID4VP QR code /
same-device link, a certificate challenge, an authorization request to an upstream OpenID
Provider). The transaction (and so its nonce) is consumed by the first response that names it,
whatever its outcome. The table keeps its first name, ``wallet_transactions``; ``method`` tells the
methods apart and ``data`` holds what a method needs to finish (migration 0007)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select, update

from trustanchor.storage.tables import wallet_transactions

LoginMethod = Literal["wallet", "certificate", "upstream"]
LOGIN_METHODS: tuple[LoginMethod, ...] = ("wallet", "certificate", "upstream")


@dataclass(frozen=True, slots=True)
class WalletTransaction:
    id: str
    interaction_id: str
    anchor_id: str
    nonce: str
    expires_at: int
    consumed_at: int | None
    outcome: dict[str, Any] | None
    method: LoginMethod = "wallet"
    data: dict[str, Any] = field(default_factory=dict)


def create(
    conn: Connection,
    transaction_id: str,
    interaction_id: str,
    anchor_id: str,
    nonce: str,
    *,
    now: int,
    expires_at: int,
    method: LoginMethod = "wallet",
    data: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(wallet_transactions).values(
            id=transaction_id,
            interaction_id=interaction_id,
            anchor_id=anchor_id,
            nonce=nonce,
            created_at=now,
            expires_at=expires_at,
            method=method,
            data=data,
        )
    )


def get(
    conn: Connection, transaction_id: str, *, method: LoginMethod = "wallet"
) -> WalletTransaction | None:
    """The transaction of ``method`` with this id (another method's transaction is not found: a
    certificate challenge's id opens nothing at the wallet's endpoints, and the reverse)."""
    row = conn.execute(
        select(wallet_transactions).where(
            wallet_transactions.c.id == transaction_id, wallet_transactions.c.method == method
        )
    ).first()
    return None if row is None else _row(row)


def latest_for_interaction(conn: Connection, interaction_id: str) -> WalletTransaction | None:
    row = conn.execute(
        select(wallet_transactions)
        .where(wallet_transactions.c.interaction_id == interaction_id)
        .order_by(wallet_transactions.c.created_at.desc(), wallet_transactions.c.id)
        .limit(1)
    ).first()
    return None if row is None else _row(row)


def count_for_interaction(conn: Connection, interaction_id: str) -> int:
    """How many login transactions (of any method) the interaction has opened."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(wallet_transactions)
            .where(wallet_transactions.c.interaction_id == interaction_id)
        ).scalar_one()
    )


def mark_request_fetched(conn: Connection, transaction_id: str, *, now: int) -> None:
    conn.execute(
        update(wallet_transactions)
        .where(wallet_transactions.c.id == transaction_id)
        .values(request_fetched_at=now)
    )


def consume(
    conn: Connection, transaction_id: str, *, now: int, method: LoginMethod = "wallet"
) -> WalletTransaction | None:
    """Claim the transaction for the response being processed; None if used, unknown or expired."""
    row = conn.execute(
        update(wallet_transactions)
        .where(
            wallet_transactions.c.id == transaction_id,
            wallet_transactions.c.method == method,
            wallet_transactions.c.consumed_at.is_(None),
            wallet_transactions.c.expires_at > now,
        )
        .values(consumed_at=now)
        .returning(*wallet_transactions.c)
    ).first()
    return None if row is None else _row(row)


def set_outcome(conn: Connection, transaction_id: str, outcome: dict[str, Any]) -> None:
    conn.execute(
        update(wallet_transactions)
        .where(wallet_transactions.c.id == transaction_id)
        .values(outcome=outcome)
    )


def _row(row: Any) -> WalletTransaction:
    return WalletTransaction(
        id=row.id,
        interaction_id=row.interaction_id,
        anchor_id=row.anchor_id,
        nonce=row.nonce,
        expires_at=row.expires_at,
        consumed_at=row.consumed_at,
        outcome=dict(row.outcome) if row.outcome is not None else None,
        method=row.method,
        data=dict(row.data) if row.data is not None else {},
    )
