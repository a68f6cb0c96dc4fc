"""Shared fixtures. Storage tests run on SQLite and, when reachable, PostgreSQL.

PostgreSQL: $TRUSTANCHOR_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test.
Each test works in a schema of its own, dropped at the end. SQLite files live on /dev/shm when
it is writable (see `_sqlite_directory`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from support import templates

from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "TRUSTANCHOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_pg_reason: str | None = None


def _postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    global _pg_reason
    if _pg_reason is not None:
        return _pg_reason or None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _pg_reason = "psycopg is not installed"
        return _pg_reason
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        _pg_reason = ""
        return None
    except Exception as exc:  # any failure means "not reachable here"
        _pg_reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}"
        return _pg_reason


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skip (or, under TRUSTANCHOR_REQUIRE_POSTGRES, fail) when PostgreSQL does not answer."""
    reason = _postgres_available()
    if reason:
        if os.environ.get("TRUSTANCHOR_REQUIRE_POSTGRES"):
            pytest.fail(f"TRUSTANCHOR_REQUIRE_POSTGRES is set but {reason}")
        pytest.skip(reason)


_admin_engine: Engine | None = None


def _admin() -> Engine:
    """One engine per session for creating and dropping the per-test schemas."""
    global _admin_engine
    if _admin_engine is None:
        _admin_engine = create_engine(POSTGRES_URL)
    return _admin_engine


# Every schema created and dropped leaves ~100 dead rows in each of PostgreSQL's catalogs; with
# autovacuum off (as on the shared test server) they pile up and every CREATE TABLE gets slower
# (measured: replaying the migrations took ~340 ms with 780k dead pg_attribute rows, ~130 ms
# after a VACUUM). A session that made schemas vacuums the catalogs it dirtied when it ends.
_CATALOGS = (
    "pg_class",
    "pg_attribute",
    "pg_attrdef",
    "pg_constraint",
    "pg_depend",
    "pg_type",
    "pg_index",
    "pg_trigger",
    "pg_sequence",
    "pg_namespace",
    "pg_statistic",
)
_made_schemas = False


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _made_schemas:
        return
    tables = ", ".join(f"pg_catalog.{name}" for name in _CATALOGS)
    try:
        engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:  # SKIP_LOCKED: never wait for another session's
                conn.execute(text(f"VACUUM (SKIP_LOCKED, ANALYZE) {tables}"))
        finally:
            engine.dispose()
    except Exception as exc:  # upkeep only: the run's outcome does not depend on it
        warnings.warn(f"could not vacuum the test database's catalogs: {exc}", stacklevel=1)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose search_path is a fresh schema of its own, dropped afterwards."""
    global _made_schemas
    _made_schemas = True
    schema = "ta_t_" + secrets.token_hex(6)
    admin = _admin()
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _sqlite_directory(tmp_path: Path) -> Path:
    """Where a test's SQLite file lives: ``$TRUSTANCHOR_TEST_SQLITE_DIR``, else /dev/shm when
    it is a writable tmpfs, else the test's tmp_path. On tmpfs an fsync costs nothing: the
    service commits with ``synchronous=FULL``, and on this disk every commit of every request
    cost 3+ ms. Nothing a test can observe depends on the fsync (a killed process loses no
    committed transaction either way)."""
    configured = os.environ.get("TRUSTANCHOR_TEST_SQLITE_DIR")
    if configured is not None:
        return Path(configured) if configured else tmp_path
    shm = Path("/dev/shm")  # noqa: S108 - only as mkdtemp's parent (0700, random name)
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tmp_path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL: once on SQLite, once on PostgreSQL (if reachable). Nothing exists
    at the URL yet; the `database` fixture and the flow-test servers fill it from the session's
    migrated template (support/templates.py)."""
    if request.param == "sqlite":
        base = _sqlite_directory(tmp_path)
        if base == tmp_path:
            yield f"sqlite:///{tmp_path / 'trustanchor.db'}"
            return
        directory = Path(tempfile.mkdtemp(prefix="trustanchor-test-", dir=base))
        try:
            yield f"sqlite:///{directory / 'trustanchor.db'}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    request.getfixturevalue("postgres_available")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database: a copy of the session's migrated template (support/templates.py),
    which is the migrations' own result at head; migrated here only if it was not empty."""
    filled = templates.migrated(database_url)
    db = Database(database_url, group_commit=True)  # as the service runs it
    if not filled:
        upgrade(db)
    yield db
    db.dispose()
