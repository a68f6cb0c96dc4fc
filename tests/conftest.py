"""Shared fixtures. Storage tests run on SQLite and, when reachable, PostgreSQL.

PostgreSQL: $TRUSTANCHOR_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test.
Each test session works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
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


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose search_path is a fresh schema of its own, dropped afterwards."""
    schema = "ta_t_" + secrets.token_hex(6)
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL: once on SQLite, once on PostgreSQL (if reachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'trustanchor.db'}"
        return
    request.getfixturevalue("postgres_available")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database: a copy of the session's migrated template (support/templates.py);
    ``upgrade`` then finds it at head, as the service's start does."""
    templates.migrated(database_url)
    db = Database(database_url)
    upgrade(db)
    yield db
    db.dispose()
