"""The demo ledger's book (no Flask): CBDC wallet accounts with balances in integer minor units,
the demo bank's deposit balances, and the journals of the transfers and funding movements it
executed or refused. SQLAlchemy Core, tables prefixed ``ledger_`` in the parties' database.

A transfer (wallet → wallet) is booked in one transaction together with spending its token
(``consume`` is the replay store's ``consume_in``): both happen, or neither. The debit is one
conditional UPDATE (``balance >= amount``) and a CHECK constraint backs it, so a balance never
goes negative, even with concurrent transfers from one account.

A funding movement (deposit ↔ wallet of one holder) is booked the same way on both sides. In a
real two-tier system the bank books the deposit side and the CBDC ledger the wallet side; the
demo keeps the deposit balances beside the wallets (``ledger_deposits``) so one transaction
books both. Tables added later than the first demo release are tables of their own, so a parties
database from an earlier start keeps working (``create_all`` adds missing tables only).
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

# The demo bank's deposit accounts with their balances (see the module docstring).
ledger_deposits = Table(
    "ledger_deposits",
    metadata,
    Column("account_id", String(64), primary_key=True),  # the service's acc_… id
    Column("owner", String(64), nullable=False),
    Column("label", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    CheckConstraint("balance_minor >= 0", name="ledger_deposit_not_negative"),
)

ledger_fundings = Table(
    "ledger_fundings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),  # executed | refused
    Column("reason", String(64)),
    Column("direction", String(32)),  # deposit_to_wallet | wallet_to_deposit
    Column("amount", String(40)),
    Column("currency", String(3)),
    Column("deposit_account", String(64)),
    Column("wallet_account", String(64)),
    Column("link_id", String(80)),
    Column("anchor_set", String(128)),
    Column("token_jti", String(256)),
    Column("client_id", String(128)),
)

DIRECTIONS = ("deposit_to_wallet", "wallet_to_deposit")
# Refusals of the book itself, after the token checks passed (trustanchor.ledger has its own).
BOOK_REASONS = (
    "unknown_account",
    "account_currency_mismatch",
    "insufficient_funds",
    "token_used",
    "holder_mismatch",  # a funding movement between two people's accounts
)


class BookingRefused(Exception):
    """The book cannot execute the transfer; ``reason`` is one of :data:`BOOK_REASONS`."""

    def __init__(self, reason: str) -> None:
        if reason not in BOOK_REASONS:
            raise ValueError(f"unknown booking refusal {reason!r}")
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WalletAccount:
    """An account of the book: a CBDC wallet, or (:meth:`LedgerBook.deposit`) a deposit."""

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


@dataclass(frozen=True, slots=True)
class FundingBooking:
    """What is booked: one executed movement between a holder's deposit and wallet."""

    direction: str
    amount: Amount
    deposit_account: str
    wallet_account: str
    link_id: str | None = None
    anchor_set: str | None = None
    token_jti: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class FundingEntry:
    id: int
    at: int
    outcome: str
    reason: str | None
    direction: str | None
    amount: str | None
    currency: str | None
    deposit_account: str | None
    wallet_account: str | None
    link_id: str | None
    anchor_set: str | None


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

    def open_deposit(
        self, account_id: str, *, owner: str, label: str, opening_balance: Amount
    ) -> bool:
        """Open the demo bank's deposit account with its opening balance; one already open
        keeps its balance (True when it was opened now)."""
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(ledger_deposits.c.account_id).where(
                    ledger_deposits.c.account_id == account_id
                )
            ).first()
            if existing is not None:
                return False
            conn.execute(
                ledger_deposits.insert().values(
                    account_id=account_id,
                    owner=owner,
                    label=label,
                    currency=opening_balance.currency,
                    balance_minor=opening_balance.minor,
                    opened_at=self.clock.now(),
                )
            )
            return True

    def deposit(self, account_id: str) -> WalletAccount | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ledger_deposits).where(ledger_deposits.c.account_id == account_id)
            ).first()
        if row is None:
            return None
        return WalletAccount(row.account_id, row.owner, row.label, row.currency, row.balance_minor)

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
                raise BookingRefused(
                    _why_not(conn, ledger_accounts, booking.debtor_account, amount.currency)
                )
            credited = conn.execute(
                update(ledger_accounts)
                .where(
                    ledger_accounts.c.account_id == booking.creditor_account,
                    ledger_accounts.c.currency == amount.currency,
                )
                .values(balance_minor=ledger_accounts.c.balance_minor + amount.minor)
            )
            if credited.rowcount != 1:
                raise BookingRefused(
                    _why_not(conn, ledger_accounts, booking.creditor_account, amount.currency)
                )
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

    def book_funding(
        self, booking: FundingBooking, *, consume: Callable[[Connection], bool] | None = None
    ) -> int:
        """Execute a funding movement atomically: spend the token, debit the account the value
        leaves (the deposit for ``deposit_to_wallet``, the wallet otherwise), credit the other,
        journal. Both accounts must be the same holder's. Raises :class:`BookingRefused` with
        nothing changed."""
        if booking.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {booking.direction!r}")
        amount = booking.amount
        sides = (
            (ledger_deposits, booking.deposit_account),
            (ledger_accounts, booking.wallet_account),
        )
        (debtor_table, debtor), (creditor_table, creditor) = (
            sides if booking.direction == "deposit_to_wallet" else sides[::-1]
        )
        with self.engine.begin() as conn:
            owners = [
                conn.execute(select(table.c.owner).where(table.c.account_id == account)).first()
                for table, account in sides
            ]
            if any(owner is None for owner in owners):
                raise BookingRefused("unknown_account")
            if owners[0] != owners[1]:
                raise BookingRefused("holder_mismatch")
            if consume is not None and not consume(conn):
                raise BookingRefused("token_used")
            debited = conn.execute(
                update(debtor_table)
                .where(
                    debtor_table.c.account_id == debtor,
                    debtor_table.c.currency == amount.currency,
                    debtor_table.c.balance_minor >= amount.minor,
                )
                .values(balance_minor=debtor_table.c.balance_minor - amount.minor)
            )
            if debited.rowcount != 1:
                raise BookingRefused(_why_not(conn, debtor_table, debtor, amount.currency))
            credited = conn.execute(
                update(creditor_table)
                .where(
                    creditor_table.c.account_id == creditor,
                    creditor_table.c.currency == amount.currency,
                )
                .values(balance_minor=creditor_table.c.balance_minor + amount.minor)
            )
            if credited.rowcount != 1:
                raise BookingRefused(_why_not(conn, creditor_table, creditor, amount.currency))
            result = conn.execute(
                ledger_fundings.insert().values(
                    at=self.clock.now(),
                    outcome="executed",
                    reason=None,
                    direction=booking.direction,
                    amount=str(amount),
                    currency=amount.currency,
                    deposit_account=booking.deposit_account,
                    wallet_account=booking.wallet_account,
                    link_id=booking.link_id,
                    anchor_set=booking.anchor_set,
                    token_jti=booking.token_jti,
                    client_id=booking.client_id,
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key is not None else 0

    def record_funding_refusal(
        self,
        reason: str,
        *,
        direction: str | None = None,
        amount: str | None = None,
        currency: str | None = None,
        deposit_account: str | None = None,
        wallet_account: str | None = None,
        client_id: str | None = None,
        anchor_set: str | None = None,
    ) -> None:
        """Journal a refused funding request (text members cut to their column sizes;
        ``anchor_set``: the set the service's decision relied on, when the token was read)."""
        with self.engine.begin() as conn:
            conn.execute(
                ledger_fundings.insert().values(
                    at=self.clock.now(),
                    outcome="refused",
                    reason=reason[:64],
                    direction=_cut(direction, 32),
                    amount=_cut(amount, 40),
                    currency=_cut(currency, 3),
                    deposit_account=_cut(deposit_account, 64),
                    wallet_account=_cut(wallet_account, 64),
                    client_id=_cut(client_id, 128),
                    anchor_set=_cut(anchor_set, 128),
                )
            )

    def fundings(self, limit: int = 50) -> list[FundingEntry]:
        """The latest funding entries, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ledger_fundings).order_by(ledger_fundings.c.id.desc()).limit(limit)
            ).all()
        return [
            FundingEntry(
                id=r.id,
                at=r.at,
                outcome=r.outcome,
                reason=r.reason,
                direction=r.direction,
                amount=r.amount,
                currency=r.currency,
                deposit_account=r.deposit_account,
                wallet_account=r.wallet_account,
                link_id=r.link_id,
                anchor_set=r.anchor_set,
            )
            for r in rows
        ]

    def record_refusal(
        self,
        reason: str,
        *,
        amount: str | None = None,
        currency: str | None = None,
        debtor_account: str | None = None,
        creditor_account: str | None = None,
        client_id: str | None = None,
        anchor_set: str | None = None,
    ) -> None:
        """Journal a refused request (text members cut to their column sizes; ``anchor_set``:
        the set the service's decision relied on, when the token was read)."""
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
                    anchor_set=_cut(anchor_set, 128),
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


def _why_not(conn: Connection, table: Table, account_id: str, currency: str) -> str:
    """Why a conditional UPDATE of ``account_id`` in ``table`` matched no row."""
    row = conn.execute(select(table.c.currency).where(table.c.account_id == account_id)).first()
    if row is None:
        return "unknown_account"
    if row.currency != currency:
        return "account_currency_mismatch"
    return "insufficient_funds"


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if isinstance(value, str) else None


__all__ = [
    "BOOK_REASONS",
    "DIRECTIONS",
    "Booking",
    "BookingRefused",
    "FundingBooking",
    "FundingEntry",
    "JournalEntry",
    "LedgerBook",
    "WalletAccount",
    "format_minor",
]
