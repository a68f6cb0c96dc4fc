"""Issue 10 item 8a / SECURITY-CASES "code redeemed twice → invalid_grant, and the tokens from the
first redemption are revoked; … redeemed by another client → invalid_grant": only the client the
code was issued to can consume it, and only that client's second presentation counts as reuse
(which revokes the grant). Another client presenting the code, fresh or already redeemed,
consumes nothing and revokes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from trustanchor.storage import grants_repo
from trustanchor.storage.database import Database
from trustanchor.storage.tables import authorization_codes, grants

NOW = 1_800_000_000


def a_code(database: Database) -> None:
    with database.transaction() as conn:
        grants_repo.create_grant(conn, "g1", "bank", None, {}, now=NOW, expires_at=NOW + 3600)
        grants_repo.store_code(
            conn, "the-code", "g1", "bank", {"redirect_uri": "x"}, now=NOW, expires_at=NOW + 60
        )


def grant_revoked(database: Database) -> bool:
    with database.reader() as conn:
        return conn.execute(select(grants.c.revoked_at)).scalar_one() is not None


def test_a_redeemed_code_presented_by_another_client_revokes_nothing(database: Database) -> None:
    a_code(database)
    with database.transaction() as conn:
        assert grants_repo.consume_code(conn, "the-code", "bank", now=NOW) is not None

    with database.transaction() as conn, pytest.raises(grants_repo.IssuedToAnotherClient):
        grants_repo.consume_code(conn, "the-code", "shop", now=NOW + 1)
    assert not grant_revoked(database)

    with database.transaction() as conn, pytest.raises(grants_repo.Reused) as reused:
        grants_repo.consume_code(conn, "the-code", "bank", now=NOW + 2)
    assert reused.value.grant_id == "g1"


def test_a_fresh_code_presented_by_another_client_stays_the_owners(database: Database) -> None:
    a_code(database)
    with database.transaction() as conn, pytest.raises(grants_repo.IssuedToAnotherClient):
        grants_repo.consume_code(conn, "the-code", "shop", now=NOW)
    with database.reader() as conn:
        assert conn.execute(select(authorization_codes.c.consumed_at)).scalar_one() is None

    with database.transaction() as conn:
        consumed = grants_repo.consume_code(conn, "the-code", "bank", now=NOW + 1)
    assert consumed is not None and consumed.grant_id == "g1" and consumed.client_id == "bank"
    assert not grant_revoked(database)


def test_an_unknown_code_is_unknown_to_every_client(database: Database) -> None:
    a_code(database)
    with database.transaction() as conn:
        assert grants_repo.consume_code(conn, "another-code", "bank", now=NOW) is None
        assert grants_repo.consume_code(conn, "another-code", "shop", now=NOW) is None
