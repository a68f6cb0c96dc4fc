"""Counters of what the service authorized, for cumulative limits (docs/POLICY.md).

A counter is keyed by a :class:`Meter` (anchor set, operation, window kind, subject, currency)
and a bucket start; its amount (minor units) only grows. :func:`add_within` adds an amount only
if the window's new total stays within the limit, in ONE conditional statement::

    INSERT INTO cumulative_counters (...) SELECT ..., :x WHERE :x + <earlier> <= :limit
    ON CONFLICT (key) DO UPDATE SET amount = amount + :x
        WHERE amount + :x + <earlier> <= :limit
    RETURNING amount

(``<earlier>``: the window's other buckets, 0 for a calendar window). Why this is race-free:

- a calendar window is one row. On PostgreSQL two approvals that meet on it serialise on the
  row lock of ``ON CONFLICT DO UPDATE``: the second waits for the first to commit and then
  re-evaluates the ``WHERE`` against the committed amount (READ COMMITTED re-checks the locked
  row), so both cannot squeeze under the limit; two first inserts of a bucket meet on the
  primary key and the loser takes the update path with the same re-check. SQLite runs one
  writing transaction at a time (``BEGIN IMMEDIATE``, storage/database.py).
- a rolling window is 24 rows, and the statement's ``<earlier>`` sum reads rows it does not
  lock: at an hour boundary, an approval still writing the previous hour's bucket would be
  missed by one already writing the new hour's. So a rolling window first takes the subject's
  lock row (bucket 0, amount 0; an upsert, which locks it until commit) and then runs the
  statement, whose fresh READ COMMITTED snapshot sees every earlier holder's committed
  buckets. One lock per (set, operation, window, subject, currency): approvals for other people
  never wait for each other.

Counters are never given back (an approved transfer whose token is never used still counts):
the limit is on what the service authorized, which is what it can answer for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from trustanchor.storage.tables import cumulative_counters as counters

LOCK_BUCKET = 0
KEY = (
    "anchor_set_id",
    "operation",
    "time_window",
    "subject_kind",
    "subject_id",
    "currency",
    "bucket_start",
)


@dataclass(frozen=True, slots=True)
class Meter:
    """A counter's key without its bucket: whose total, of what, in which set's window."""

    anchor_set_id: str
    operation: str  # value_transfer or funding, each counted apart (services/cumulative.py)
    time_window: str  # calendar_day / calendar_month / rolling_24h
    subject_kind: str  # holder / debtor_account
    subject_id: str
    currency: str

    def values(self) -> dict[str, Any]:
        return {
            "anchor_set_id": self.anchor_set_id,
            "operation": self.operation,
            "time_window": self.time_window,
            "subject_kind": self.subject_kind,
            "subject_id": self.subject_id,
            "currency": self.currency,
        }


def _of(table: Any, meter: Meter) -> ColumnElement[bool]:
    return and_(*(table.c[name] == value for name, value in meter.values().items()))


def total(conn: Connection, meter: Meter, *, since: int) -> int:
    """The window's total: the buckets starting at or after ``since``."""
    value = conn.execute(
        select(func.coalesce(func.sum(counters.c.amount), 0)).where(
            _of(counters, meter),
            counters.c.bucket_start >= since,
            counters.c.bucket_start != LOCK_BUCKET,
        )
    ).scalar_one()
    return int(value)


def _insert(conn: Connection) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(counters)
    if dialect == "sqlite":
        return sqlite.insert(counters)
    raise ValueError(dialect)  # pragma: no cover


def _lock(conn: Connection, meter: Meter) -> None:
    """Take the subject's lock row for this meter until the transaction ends."""
    stmt = _insert(conn).values(**meter.values(), bucket_start=LOCK_BUCKET, amount=0)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=list(KEY), set_={"amount": counters.c.amount})
    )


def add_within(
    conn: Connection,
    meter: Meter,
    *,
    bucket: int,
    since: int,
    amount: int,
    limit: int | None,
) -> bool:
    """Add ``amount`` to the bucket starting at ``bucket`` if the window (buckets from ``since``
    to ``bucket``) stays within ``limit`` (``None``: no limit, always added). True when added.
    Must run inside the transaction that records the approval."""
    if amount <= 0 or bucket <= LOCK_BUCKET or since > bucket:
        raise ValueError("amount must be positive and the bucket inside the window")
    if limit is None:
        stmt = _insert(conn).values(**meter.values(), bucket_start=bucket, amount=amount)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=list(KEY), set_={"amount": counters.c.amount + amount}
            )
        )
        return True
    x = literal(amount, BigInteger)
    earlier: Any = literal(0, BigInteger)
    if since < bucket:
        _lock(conn, meter)
        other = counters.alias("earlier")
        earlier = (
            select(func.coalesce(func.sum(other.c.amount), 0))
            .where(
                _of(other, meter),
                other.c.bucket_start >= since,
                other.c.bucket_start < bucket,
                other.c.bucket_start != LOCK_BUCKET,
            )
            .scalar_subquery()
        )
    row = select(
        *(literal(v, counters.c[k].type) for k, v in meter.values().items()),
        literal(bucket, BigInteger),
        x,
    ).where(x + earlier <= limit)
    stmt = _insert(conn).from_select([*meter.values(), "bucket_start", "amount"], row)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(KEY),
        set_={"amount": counters.c.amount + x},
        where=counters.c.amount + x + earlier <= limit,
    )
    return conn.execute(stmt.returning(counters.c.amount)).first() is not None
