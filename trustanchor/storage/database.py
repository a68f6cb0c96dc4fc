"""The database handle: engines for SQLite (WAL) and PostgreSQL, transactions, and the two atomic
primitives every one-time artefact relies on.

SQLite write transactions start with ``BEGIN IMMEDIATE`` so that two writers never deadlock on a
lock upgrade; reads run in autocommit mode and see a consistent WAL snapshot per statement.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from trustanchor.storage.group_commit import GroupCommit
from trustanchor.storage.unavailable import StorageUnavailable

__all__ = ["Database", "Row", "StorageUnavailable", "insert_once"]

Row = Mapping[str, Any]

CONNECT_TIMEOUT = 10  # seconds for a new PostgreSQL connection (libpq connect_timeout)


class Database:
    """``pool_size`` and ``pool_timeout`` (seconds to wait for a free connection) size the
    PostgreSQL pool; SQLite keeps SQLAlchemy's default pool. ``group_commit``: on a SQLite file,
    the write transactions of this process's threads share commits
    (:mod:`trustanchor.storage.group_commit`); elsewhere it changes nothing."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 10,
        pool_timeout: float = 30.0,
        group_commit: bool = False,
        group_commit_linger: float = 0.0,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database or ""
            private_file = None
            if database and database != ":memory:" and not database.startswith("file:"):
                private_file = Path(database)
                _create_private_directories(private_file.parent)
            self.engine = _sqlite_engine(url, echo=echo, private_file=private_file)
        elif self.dialect == "postgresql":
            if parsed.drivername == "postgresql":
                url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(False))
            # A server that drops packets would otherwise hold a connection attempt (and
            # /readyz, and every request waiting for the pool) for the kernel's TCP timeout:
            # libpq gives up after CONNECT_TIMEOUT seconds unless the URL says otherwise.
            connect_args = (
                {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
            )
            self.engine = create_engine(
                url,
                echo=echo,
                connect_args=connect_args,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=pool_timeout,
                pool_pre_ping=True,
                pool_recycle=1800,
                hide_parameters=True,  # no values in error messages (tracebacks are logged)
            )
        else:
            raise ValueError(f"unsupported database: {self.dialect}")
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.group: GroupCommit | None = None
        if group_commit and self.dialect == "sqlite" and _is_file(parsed.database):
            self.group = GroupCommit(self.engine, linger=group_commit_linger)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A read-write transaction: committed on success, rolled back on any exception. Under
        group commit, the commit may be shared with other threads' transactions; either way
        this returns only once the work is durably committed."""
        if self.group is not None:
            with _unavailable_on_infrastructure_errors(), self.group.transaction() as conn:
                yield conn
            return
        with _unavailable_on_infrastructure_errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction."""
        with _unavailable_on_infrastructure_errors(), self._reader.connect() as conn:
            yield conn

    def dispose(self) -> None:
        if self.group is not None:
            self.group.close()
        self.engine.dispose()


def _is_file(database: str | None) -> bool:
    return bool(database) and database != ":memory:" and "mode=memory" not in (database or "")


@contextmanager
def _unavailable_on_infrastructure_errors() -> Iterator[None]:
    """Turn "the database cannot serve us right now" into StorageUnavailable (a 503 at the edge).

    That is: a lost or refused connection (OperationalError, or any DBAPI error after which the
    connection was invalidated) and a checkout that waited ``pool_timeout`` for a free pooled
    connection (sqlalchemy's TimeoutError, which is not a DBAPIError). The pool invalidates
    broken connections itself and ``pool_pre_ping`` replaces stale ones on checkout, so the next
    request recovers without restarting the app. Anything else (a constraint violation, a
    programming error) is re-raised unchanged.
    """
    try:
        yield
    except PoolTimeout as exc:
        raise StorageUnavailable("connection pool exhausted") from exc
    except DBAPIError as exc:
        if _is_infrastructure_error(exc):
            raise StorageUnavailable(str(exc.__class__.__name__)) from exc
        raise


def _is_infrastructure_error(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        return True
    return bool(getattr(exc, "connection_invalidated", False))


def _create_private_directories(directory: Path) -> None:
    """Create the directories the SQLite file needs, 0700; existing ones are left as they are."""
    missing = [parent for parent in (directory, *directory.parents) if not parent.exists()]
    for each in reversed(missing):
        with suppress(FileExistsError):  # created meanwhile by another process
            each.mkdir(mode=0o700)


def _create_private_file(path: Path) -> None:
    """Create the SQLite file 0600 just before SQLite first opens it (not before: a start that is
    refused leaves no database file behind).

    The database holds personal data and the digests of every live secret; SQLite would create
    it with the process's umask (typically 0644, world-readable), and its ``-wal`` and ``-shm``
    files take the main file's permissions. An existing file is left as it is.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _sqlite_engine(url: str, *, echo: bool, private_file: Path | None) -> Engine:
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False},
        hide_parameters=True,  # no values in error messages (tracebacks are logged)
    )

    if private_file is not None:
        path = private_file

        @event.listens_for(engine, "do_connect")
        def _before_connect(*_args: Any) -> None:
            _create_private_file(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # The execution option, not get_isolation_level(): that one asks the database each time.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def insert_once(conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
    """Insert ``values`` unless a row with the same key exists. True when this call inserted it.

    One statement (``INSERT ... ON CONFLICT DO NOTHING``): two racing callers get one True.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover
        raise ValueError(dialect)
    key = next(iter(table.primary_key.columns))
    return conn.execute(stmt.returning(key)).first() is not None
