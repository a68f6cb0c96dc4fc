"""Issue 10 item 8d: the SQLite database holds personal data and the digests of live secrets, so
the service creates its file (and SQLite's -wal and -shm beside it) readable by its own user
only (0600), and the directories it has to create 0700 — whatever the process umask lets
through. SQLite only: PostgreSQL's files are the server's business."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual umask (0022): without care, new files are world-readable (0644)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_sqlite_file_wal_and_shm_are_created_0600_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "state" / "trustanchor.db"
    database = Database(f"sqlite:///{path}")
    try:
        upgrade(database)  # what init does: the schema, written through SQLite itself
        with database.transaction() as conn:
            conn.execute(text("CREATE TABLE written (x INTEGER)"))
            conn.execute(text("INSERT INTO written VALUES (1)"))
        with database.reader() as conn:  # the WAL and its shared-memory index exist while open
            assert conn.execute(text("SELECT x FROM written")).scalar_one() == 1
            wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
            assert wal.exists() and shm.exists()
            assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        assert mode(path.parent) == 0o700
        assert mode(path.parent.parent) == 0o700
    finally:
        database.dispose()


@pytest.mark.usefixtures("permissive_umask")
def test_an_existing_database_file_and_directory_are_left_as_they_are(tmp_path: Path) -> None:
    """The operator's own choice (a group-readable file for a backup user) is not overridden;
    only what the service creates is made private."""
    path = tmp_path / "trustanchor.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    database = Database(f"sqlite:///{path}")
    try:
        with database.transaction() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert mode(path) == 0o640
    finally:
        database.dispose()
