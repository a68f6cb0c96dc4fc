"""PreparedInsert (storage/prepared.py) on SQLite and PostgreSQL: the same row as SQLAlchemy's
INSERT, inside the caller's transaction, and SQLAlchemy's exception classes for driver errors."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from trustanchor.storage.database import Database
from trustanchor.storage.prepared import PreparedInsert
from trustanchor.storage.tables import access_tokens, clients

COLUMNS = ("jti", "grant_id", "client_id", "created_at", "expires_at")
ROW = {"jti": "j-1", "grant_id": None, "client_id": "bank", "created_at": 1, "expires_at": 61}


def test_it_inserts_the_row_sqlalchemy_would(database: Database) -> None:
    prepared = PreparedInsert(access_tokens, COLUMNS)
    with database.transaction() as conn:
        prepared.run(conn, ROW)
        prepared.run(conn, {**ROW, "jti": "j-2", "grant_id": "g-1"})
    with database.reader() as conn:
        rows = conn.execute(select(access_tokens).order_by(access_tokens.c.jti)).mappings().all()
    assert [dict(r) for r in rows] == [
        {**ROW, "revoked_at": None},
        {**ROW, "jti": "j-2", "grant_id": "g-1", "revoked_at": None},
    ]


def test_a_duplicate_key_is_sqlalchemys_integrity_error_and_rolls_back(
    database: Database,
) -> None:
    prepared = PreparedInsert(access_tokens, COLUMNS)
    with database.transaction() as conn:
        prepared.run(conn, ROW)
    with pytest.raises(IntegrityError), database.transaction() as conn:
        prepared.run(conn, {**ROW, "jti": "j-3"})
        prepared.run(conn, ROW)
    with database.reader() as conn:
        jtis = list(conn.execute(select(access_tokens.c.jti)).scalars())
    assert jtis == ["j-1"]  # j-3 went with the failed transaction


def test_only_plain_column_types_are_prepared() -> None:
    with pytest.raises(TypeError, match=r"clients\.metadata"):
        PreparedInsert(clients, ("client_id", "metadata"))
