"""Sessions of the holders' self-service page in storage (SQLite and PostgreSQL): the id is
stored only as a digest, and every lookup sees expiry, logout and a revoked grant at once."""

from __future__ import annotations

from sqlalchemy import insert, select

from trustanchor.digests import secret_digest
from trustanchor.storage import grants_repo, holder_sessions_repo
from trustanchor.storage.database import Database
from trustanchor.storage.tables import holder_sessions, holders

NOW = 1_800_000_000
SESSION = "s" * 43


def start(database: Database, session_id: str = SESSION, *, grant: str = "g1") -> None:
    with database.transaction() as conn:
        if conn.execute(select(holders.c.id).where(holders.c.id == "h1")).first() is None:
            conn.execute(insert(holders).values(id="h1", created_at=NOW))
        grants_repo.create_grant(conn, grant, "my", "h1", {}, now=NOW, expires_at=NOW + 10**6)
        holder_sessions_repo.create_session(
            conn, session_id, "h1", grant, now=NOW, expires_at=NOW + 100
        )


def live(database: Database, session_id: str = SESSION, now: int = NOW) -> str | None:
    with database.reader() as conn:
        found = holder_sessions_repo.live_session(conn, session_id, now=now)
    return None if found is None else found.holder_id


def test_the_session_id_is_stored_only_as_a_digest(database: Database) -> None:
    start(database)
    with database.reader() as conn:
        [row] = conn.execute(select(holder_sessions)).all()
    assert row.id_digest == secret_digest(SESSION)
    assert SESSION not in [str(value) for value in row]
    assert (row.holder_id, row.grant_id) == ("h1", "g1")
    assert live(database) == "h1"
    assert live(database, "t" * 43) is None


def test_expiry_logout_and_a_revoked_grant_end_the_session_at_once(database: Database) -> None:
    start(database)
    assert live(database, now=NOW + 99) == "h1"
    assert live(database, now=NOW + 100) is None  # expired

    start(database, "u" * 43, grant="g2")
    with database.transaction() as conn:
        assert holder_sessions_repo.end_session(conn, "u" * 43, now=NOW + 1)
        assert not holder_sessions_repo.end_session(conn, "u" * 43, now=NOW + 2)
    assert live(database, "u" * 43) is None

    start(database, "v" * 43, grant="g3")
    with database.transaction() as conn:
        assert grants_repo.revoke_grant(conn, "g3", now=NOW + 1, reason="test")
    assert live(database, "v" * 43) is None
    assert live(database) == "h1"  # the others' sessions are untouched
