"""Single use, on the ledger's side: a transfer token's ``jti`` and every DPoP proof's ``jti``
are recorded once, and a second presentation is refused.

The record is one unique insert (``INSERT … ON CONFLICT DO NOTHING``): of any number of racing
requests exactly one inserts the row and wins, without a read-check-write window. Entries carry
the instant after which the artefact would be refused anyway (token ``exp`` + leeway, proof
``iat`` window), so :meth:`purge` can forget them without reopening a replay window. Purge with
the clock of the ledger worker that runs it; ledger workers whose clocks differ by more than the
leeway should purge with a margin (``purge(now - 300)``).

:class:`SqlReplayStore` keeps the records in a table of the ledger's own database (SQLAlchemy
Core; SQLite and PostgreSQL use ``ON CONFLICT``, other databases a plain insert whose unique
violation means "already used"). :class:`InMemoryReplayStore` is for tests and demos only: it
forgets everything on restart and is not shared between processes, so with it a token can be
spent once *per process*.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

TOKEN_NAMESPACE = "access_token"  # noqa: S105 - a namespace name, not a secret
"""Namespace of spent access tokens (DPoP proofs use ``oauth.dpop.REPLAY_NAMESPACE``)."""
DEFAULT_TABLE = "ledger_consumed_jtis"
MAX_NAMESPACE_LENGTH = 32


class ReplayStore(Protocol):
    def consume(self, jti: str, expires_at: int, *, namespace: str = TOKEN_NAMESPACE) -> bool:
        """Record ``jti`` in ``namespace``. True for the first caller only, until ``expires_at``
        has passed and :meth:`purge` forgot it; False for everyone else."""
        ...

    def purge(self, now: int) -> int:
        """Forget records that expired before ``now``; returns how many."""
        ...


def _digest(jti: str) -> str:
    """jtis are stored hashed: bounded column size, and nothing a client chose lands verbatim."""
    return hashlib.sha256(jti.encode("utf-8")).hexdigest()


def _check_namespace(namespace: str) -> None:
    if not namespace or len(namespace) > MAX_NAMESPACE_LENGTH:
        raise ValueError("namespace must be 1 to 32 characters")


class InMemoryReplayStore:
    """Test and demo only (see the module docstring). Thread-safe within one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], int] = {}

    def consume(self, jti: str, expires_at: int, *, namespace: str = TOKEN_NAMESPACE) -> bool:
        _check_namespace(namespace)
        key = (namespace, _digest(jti))
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = expires_at
            return True

    def purge(self, now: int) -> int:
        with self._lock:
            expired = [key for key, expires_at in self._seen.items() if expires_at < now]
            for key in expired:
                del self._seen[key]
            return len(expired)


def replay_table(metadata: MetaData, name: str = DEFAULT_TABLE) -> Table:
    """The table definition, for ledgers that manage their schema with their own migrations."""
    table = Table(
        name,
        metadata,
        Column("namespace", String(MAX_NAMESPACE_LENGTH), nullable=False),
        Column("jti_digest", String(64), nullable=False),
        Column("expires_at", BigInteger, nullable=False),
        PrimaryKeyConstraint("namespace", "jti_digest", name=f"pk_{name}"),
    )
    Index(f"ix_{name}_expires_at", table.c.expires_at)
    return table


class SqlReplayStore:
    """The replay store in the ledger's database. ``engine`` is the ledger's SQLAlchemy engine
    (on SQLite give it a ``busy_timeout`` so concurrent writers wait instead of failing).
    Database errors propagate: the caller refuses the request (fail closed)."""

    def __init__(self, engine: Engine, *, table_name: str = DEFAULT_TABLE) -> None:
        self._engine = engine
        self.metadata = MetaData()
        self.table = replay_table(self.metadata, table_name)

    def create_table(self) -> None:
        """Create the table if it does not exist (ledgers with migrations use replay_table)."""
        self.metadata.create_all(self._engine, checkfirst=True)

    def consume(self, jti: str, expires_at: int, *, namespace: str = TOKEN_NAMESPACE) -> bool:
        with self._engine.begin() as conn:
            return self.consume_in(conn, jti, expires_at, namespace=namespace)

    def consume_in(
        self, conn: Connection, jti: str, expires_at: int, *, namespace: str = TOKEN_NAMESPACE
    ) -> bool:
        """:meth:`consume` inside the caller's transaction, so that the ledger can record the
        token's use and book the transfer atomically (both or neither). A concurrent
        transaction that records the same jti waits for this one and then gets False."""
        _check_namespace(namespace)
        values = {"namespace": namespace, "jti_digest": _digest(jti), "expires_at": expires_at}
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            module: Any = postgresql if dialect == "postgresql" else sqlite
            stmt = (
                module.insert(self.table)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(self.table.c.jti_digest)
            )
            return conn.execute(stmt).first() is not None
        try:
            with conn.begin_nested():
                conn.execute(insert(self.table).values(**values))
        except IntegrityError:
            return False
        return True

    def purge(self, now: int) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(delete(self.table).where(self.table.c.expires_at < now))
            return int(result.rowcount)


__all__ = [
    "DEFAULT_TABLE",
    "TOKEN_NAMESPACE",
    "InMemoryReplayStore",
    "ReplayStore",
    "SqlReplayStore",
    "replay_table",
]
