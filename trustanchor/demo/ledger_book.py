"""The demo ledger's book (no Flask): CBDC wallet accounts with balances in integer minor units,
and the journal of transfers it executed or refused. SQLAlchemy Core, tables prefixed
``ledger_`` in the parties' database.

A transfer is booked in one transaction together with spending its token (``consume`` is the
replay store's ``consume_in``): both happen, or neither. The debit is one conditional UPDATE
(``balance >= amount``) and a CHECK constraint backs it, so a balance never goes negative, even
with concurrent transfers from one account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    select,
    update,
)

from trustanchor.clock import Clock
from trustanchor.domain.money import MINOR_UNITS, Amount

metadata = MetaData()

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("account_id", String(64), primary_key=True),  # the service's acc_… id
    Column("owner", String(64), nullable=False),  # the demo person's id
    Column("label", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    CheckConstraint("balance_minor >= 0", name="ledger_balance_not_negative"),
)

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),  # executed | refused
    Column("reason", String(64)),  # refused: the reason code
    Column("amount", String(40)),
    Column("currency", String(3)),
    Column("debtor_account", String(64)),
    Column("creditor_account", String(64)),
    Column("remittance_reference", String(64)),
    Column("anchor_set", String(128)),
    Column("token_jti", String(256)),
    Column("client_id", String(128)),
)

# Refusals of the book itself, after the token checks passed (trustanchor.ledger has its own).
BOOK_REASONS = ("unknown_account", "account_currency_mismatch", "insufficient_funds", "token_used")


class BookingRefused(Exception):
    """The book cannot execute the transfer; ``reason`` is one of :data:`BOOK_REASONS`."""

    def __init__(self, reason: str) -> None:
        if reason not in BOOK_REASONS:
            raise ValueError(f"unknown booking refusal {reason!r}")
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WalletAccount:
    account_id: str
    owner: str
    label: str
    currency: str
    balance_minor: int

    @property
    def balance(self) -> str:
        return format_minor(self.balance_minor, self.currency)


@dataclass(frozen=True, slots=True)
class Booking:
    """What is booked: one executed transfer."""

    amount: Amount
    debtor_account: str
    creditor_account: str
    remittance_reference: str | None = None
    anchor_set: str | None = None
    token_jti: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    at: int
    outcome: str
    reason: str | None
    amount: str | None
    currency: str | None
    debtor_account: str | None
    creditor_account: str | None
    remittance_reference: str | None
    anchor_set: str | None
    token_jti: str | None
    client_id: str | None


def format_minor(minor: int, currency: str) -> str:
    """Minor units as decimal text in the currency's precision (zero included)."""
    decimals = MINOR_UNITS[currency]
    if decimals == 0:
        return str(minor)
    units, fraction = divmod(minor, 10**decimals)
    return f"{units}.{fraction:0{decimals}d}"


class LedgerBook:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    def open_account(
        self, account_id: str, *, owner: str, label: str, opening_balance: Amount
    ) -> bool:
        """Open a wallet account with its opening balance; an account already open keeps its
        balance (True when it was opened now)."""
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(ledger_accounts.c.account_id).where(
                    ledger_accounts.c.account_id == account_id
                )
            ).first()
            if existing is not None:
                return False
            conn.execute(
                ledger_accounts.insert().values(
                    account_id=account_id,
                    owner=owner,
                    label=label,
                    currency=opening_balance.currency,
                    balance_minor=opening_balance.minor,
                    opened_at=self.clock.now(),
                )
            )
            return True

    def accounts(self) -> list[WalletAccount]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ledger_accounts).order_by(ledger_accounts.c.owner, ledger_accounts.c.label)
            ).all()
        return [
            WalletAccount(r.account_id, r.owner, r.label, r.currency, r.balance_minor) for r in rows
        ]

    def account(self, account_id: str) -> WalletAccount | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ledger_accounts).where(ledger_accounts.c.account_id == account_id)
            ).first()
        if row is None:
            return None
        return WalletAccount(row.account_id, row.owner, row.label, row.currency, row.balance_minor)

    def book(self, booking: Booking, *, consume: Callable[[Connection], bool] | None = None) -> int:
        """Execute ``booking`` atomically: spend the token (``consume`` returns False when it
        was spent already), debit, credit, journal. Raises :class:`BookingRefused` with
        nothing changed."""
        amount = booking.amount
        with self.engine.begin() as conn:
            if booking.creditor_account == booking.debtor_account:
                raise BookingRefused("unknown_account")
            if consume is not None and not consume(conn):
                raise BookingRefused("token_used")
            debited = conn.execute(
                update(ledger_accounts)
                .where(
                    ledger_accounts.c.account_id == booking.debtor_account,
                    ledger_accounts.c.currency == amount.currency,
                    ledger_accounts.c.balance_minor >= amount.minor,
                )
                .values(balance_minor=ledger_accounts.c.balance_minor - amount.minor)
            )
            if debited.rowcount != 1:
                raise BookingRefused(_why_not(conn, booking.debtor_account, amount.currency))
            credited = conn.execute(
                update(ledger_accounts)
                .where(
                    ledger_accounts.c.account_id == booking.creditor_account,
                    ledger_accounts.c.currency == amount.currency,
                )
                .values(balance_minor=ledger_accounts.c.balance_minor + amount.minor)
            )
            if credited.rowcount != 1:
                raise BookingRefused(_why_not(conn, booking.creditor_account, amount.currency))
            result = conn.execute(
                ledger_transfers.insert().values(
                    at=self.clock.now(),
                    outcome="executed",
                    reason=None,
                    amount=str(amount),
                    currency=amount.currency,
                    debtor_account=booking.debtor_account,
                    creditor_account=booking.creditor_account,
                    remittance_reference=booking.remittance_reference,
                    anchor_set=booking.anchor_set,
                    token_jti=booking.token_jti,
                    client_id=booking.client_id,
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key is not None else 0

    def record_refusal(
        self,
        reason: str,
        *,
        amount: str | None = None,
        currency: str | None = None,
        debtor_account: str | None = None,
        creditor_account: str | None = None,
        client_id: str | None = None,
    ) -> None:
        """Journal a refused request (text members cut to their column sizes)."""
        with self.engine.begin() as conn:
            conn.execute(
                ledger_transfers.insert().values(
                    at=self.clock.now(),
                    outcome="refused",
                    reason=reason[:64],
                    amount=_cut(amount, 40),
                    currency=_cut(currency, 3),
                    debtor_account=_cut(debtor_account, 64),
                    creditor_account=_cut(creditor_account, 64),
                    client_id=_cut(client_id, 128),
                )
            )

    def journal(self, limit: int = 50) -> list[JournalEntry]:
        """The latest entries, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ledger_transfers).order_by(ledger_transfers.c.id.desc()).limit(limit)
            ).all()
        return [
            JournalEntry(
                id=r.id,
                at=r.at,
                outcome=r.outcome,
                reason=r.reason,
                amount=r.amount,
                currency=r.currency,
                debtor_account=r.debtor_account,
                creditor_account=r.creditor_account,
                remittance_reference=r.remittance_reference,
                anchor_set=r.anchor_set,
                token_jti=r.token_jti,
                client_id=r.client_id,
            )
            for r in rows
        ]


def _why_not(conn: Connection, account_id: str, currency: str) -> str:
    """Why a conditional UPDATE of ``account_id`` matched no row."""
    row = conn.execute(
        select(ledger_accounts.c.currency).where(ledger_accounts.c.account_id == account_id)
    ).first()
    if row is None:
        return "unknown_account"
    if row.currency != currency:
        return "account_currency_mismatch"
    return "insufficient_funds"


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if isinstance(value, str) else None


__all__ = [
    "BOOK_REASONS",
    "Booking",
    "BookingRefused",
    "JournalEntry",
    "LedgerBook",
    "WalletAccount",
    "format_minor",
]
