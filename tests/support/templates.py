"""The expensive part of a test's database, done once per test session: the migrations.

Running the Alembic migrations is most of what starting a flow-test server costs. Here they run
once per session (per pytest process) and every test gets its own copy of the result:

- SQLite: the migrations run into a template file, which is copied to the test's path;
- PostgreSQL: the migrations run once into a scratch schema while every statement sent to the
  server is recorded (a SQLAlchemy ``before_cursor_execute`` hook); the scratch schema is dropped
  and the recorded statements are replayed, in one transaction, into each test's own empty
  schema. The replay is the migrations' own SQL in their own order, so foreign keys, check
  constraints, server defaults and any rows a migration inserts come out exactly as migrating
  would make them (unlike ``CREATE TABLE ... (LIKE ...)`` or ``metadata.create_all``).

Either way the copy is what the real migrations built in this session, so
``tests/storage/test_migrations_match_tables.py`` still compares the migrations with tables.py.

:func:`migrated` only fills a database that is empty (an SQLite file that does not exist yet, a
PostgreSQL schema without tables); anything else is left as it is, and ``initialise`` or
``upgrade`` migrates it the usual way. A flow-test server's ``initialise`` still runs ``upgrade``
on the copy (at head it changes nothing); the ``database`` fixture does not.

The per-test keys (signing key, audit key, secrets) are not shared: generating them costs a few
milliseconds (measured, see docs/DEVELOPING.md), and each test keeps keys of its own.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import make_url

from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade

_lock = threading.Lock()
_sqlite_template: Path | None = None
_postgres_scripts: dict[str, PostgresScript] = {}


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any
    many: bool


@dataclass(frozen=True)
class PostgresScript:
    """The statements the migrations sent to an empty PostgreSQL schema, in order."""

    statements: tuple[Statement, ...]


def migrated(url: str) -> bool:
    """Make the empty database at ``url`` a copy of the session's migrated template.

    True when it was filled; False when ``url`` is not empty (or not a file/PostgreSQL URL), in
    which case nothing was touched."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _copy_sqlite(parsed.database or "")
    if backend == "postgresql":
        return _replay_postgres(url)
    return False


# --- SQLite: a template file ---------------------------------------------------------------------


def _copy_sqlite(database: str) -> bool:
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    target = Path(database)
    if any(Path(f"{target}{suffix}").exists() for suffix in ("", "-wal", "-journal")):
        return False
    template = _sqlite_template_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never overwrite a database someone created meanwhile; 0600 as secrets deserve.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, template.open("rb") as src:
        shutil.copyfileobj(src, out)
    return True


def _sqlite_template_file() -> Path:
    global _sqlite_template
    with _lock:
        if _sqlite_template is None:
            directory = Path(tempfile.mkdtemp(prefix="trustanchor-template-"))
            atexit.register(shutil.rmtree, directory, True)
            path = directory / "migrated.db"
            db = Database(f"sqlite:///{path}")
            try:
                upgrade(db)
            finally:
                db.dispose()
            with sqlite3.connect(path) as conn:  # fold the WAL into the file: one file to copy
                busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            conn.close()
            wal = Path(f"{path}-wal")
            if busy or (wal.exists() and wal.stat().st_size):
                raise AssertionError(f"the template's WAL could not be folded into {path}")
            _sqlite_template = path
        return _sqlite_template


# --- PostgreSQL: the migrations' statements, replayed ------------------------------------------


def _schema_is_empty(conn: Connection) -> bool:
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    if schema is None:  # the search_path names no existing schema: not ours to fill
        return False
    tables = conn.execute(
        text(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = :schema"
        ),
        {"schema": schema},
    ).scalar()
    return bool(tables == 0)


def _replay_postgres(url: str) -> bool:
    """The recorded statements, exactly as the migrations sent them, in one transaction (the
    migrations run in one too: PostgreSQL has transactional DDL)."""
    script = _postgres_script(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if not _schema_is_empty(conn):
                return False
            cursor = conn.connection.cursor()
            for statement in script.statements:
                if statement.many:
                    cursor.executemany(statement.sql, statement.parameters)
                else:
                    cursor.execute(statement.sql, statement.parameters)
            cursor.close()
        return True
    finally:
        engine.dispose()


def _postgres_script(url: str) -> PostgresScript:
    """The recorded migrations for the PostgreSQL server of ``url`` (one recording per server)."""
    parsed = make_url(url)
    server = parsed.set(query={}).render_as_string(hide_password=False)
    with _lock:
        if server not in _postgres_scripts:
            _postgres_scripts[server] = _record_postgres(server)
        return _postgres_scripts[server]


def _record_postgres(server_url: str) -> PostgresScript:
    schema = "ta_template_" + secrets.token_hex(6)
    admin = create_engine(server_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in server_url else "?"
    db = Database(f"{server_url}{sep}options=-csearch_path%3D{schema}")
    recorded: list[Statement] = []
    try:
        with db.engine.connect():  # the dialect's first-connect queries are not the migrations'
            pass

        @event.listens_for(db.engine, "before_cursor_execute")
        def _record(
            _conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool
        ) -> None:
            recorded.append(Statement(sql, parameters, many))

        upgrade(db)
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    named = [s.sql for s in recorded if schema in s.sql or schema in repr(s.parameters)]
    if named:  # a statement tied to the scratch schema cannot be replayed elsewhere
        raise AssertionError(f"a migration statement names its schema; cannot replay: {named[0]}")
    return PostgresScript(tuple(recorded))
