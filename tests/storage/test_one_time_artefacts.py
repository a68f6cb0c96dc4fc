"""One-time artefacts under races, at the repository level (SQLite and PostgreSQL).

Each racer runs its own transaction; the winner keeps its transaction open for a moment after
its conditional UPDATE, so that the others really meet an *uncommitted* consumption (on
PostgreSQL they block on the row lock and re-check the WHERE clause; on SQLite they wait for
BEGIN IMMEDIATE). Exactly one racer may win; a loser of a code or refresh-token race must learn
that the artefact was *reused* (not "unknown"), because reuse is what revokes the token family.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, select

from trustanchor.storage import grants_repo, interactions_repo, par_repo, wallet_repo
from trustanchor.storage.database import Database, StorageUnavailable
from trustanchor.storage.tables import authorization_codes, grants, refresh_tokens

T = TypeVar("T")
NOW = 1_800_000_000
RACERS = 16
HOLD = 0.05  # seconds the winner keeps its transaction open after winning
REUSED = "reused"


def race(database: Database, attempt: Callable[[Connection], T]) -> list[T | str]:
    """Run ``attempt`` in RACERS threads at once, each inside a transaction of its own."""
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            with database.transaction() as conn:
                result: T | str = attempt(conn)
                if result is not None and result != REUSED:
                    time.sleep(HOLD)
        except grants_repo.Reused:
            result = REUSED
        except BaseException as exc:  # surfaced by the assertion below
            result = f"error: {exc!r}"
        results[i] = result

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [r for r in results if isinstance(r, str) and r.startswith("error")]
    assert not errors, errors
    return results


def winners(results: list[Any]) -> list[Any]:
    return [r for r in results if r is not None and r != REUSED]


def new_grant(database: Database, grant_id: str = "g1") -> None:
    with database.transaction() as conn:
        grants_repo.create_grant(conn, grant_id, "bank", None, {}, now=NOW, expires_at=NOW + 3600)


def test_parallel_code_consumption_has_one_winner_and_every_loser_sees_reuse(
    database: Database,
) -> None:
    new_grant(database)
    with database.transaction() as conn:
        grants_repo.store_code(
            conn, "the-code", "g1", "bank", {"redirect_uri": "x"}, now=NOW, expires_at=NOW + 60
        )

    results = race(
        database, lambda conn: grants_repo.consume_code(conn, "the-code", "bank", now=NOW)
    )

    won = winners(results)
    assert len(won) == 1 and isinstance(won[0], grants_repo.ConsumedCode)
    assert won[0].grant_id == "g1"
    assert results.count(REUSED) == RACERS - 1


def test_parallel_refresh_rotation_has_one_winner_and_every_loser_sees_reuse(
    database: Database,
) -> None:
    new_grant(database)
    with database.transaction() as conn:
        grants_repo.store_refresh_token(
            conn, "the-refresh", "g1", "bank", bound_jkt=None, now=NOW, expires_at=NOW + 3600
        )

    results = race(
        database,
        lambda conn: grants_repo.rotate_refresh_token(conn, "the-refresh", "bank", now=NOW),
    )

    won = winners(results)
    assert len(won) == 1 and isinstance(won[0], grants_repo.RotatedRefreshToken)
    assert results.count(REUSED) == RACERS - 1


def test_reuse_racing_the_winners_issuance_revokes_what_the_winner_issued(
    database: Database,
) -> None:
    """The token service's pattern: the winner records an access token and a new refresh token
    in its transaction, every loser revokes the grant in its own. Whatever the interleaving,
    the family ends revoked with nothing left usable."""
    new_grant(database)
    with database.transaction() as conn:
        grants_repo.store_code(
            conn, "the-code", "g1", "bank", {"redirect_uri": "x"}, now=NOW, expires_at=NOW + 60
        )
    issued = iter(range(RACERS))

    def redeem(conn: Connection) -> str | None:
        try:
            consumed = grants_repo.consume_code(conn, "the-code", "bank", now=NOW)
        except grants_repo.Reused as reused:
            grants_repo.revoke_grant(conn, reused.grant_id, now=NOW, reason="code_reuse")
            return REUSED  # and commit the revocation
        assert consumed is not None
        n = next(issued)
        grants_repo.record_access_token(
            conn, f"jti-{n}", consumed.grant_id, "bank", now=NOW, expires_at=NOW + 300
        )
        grants_repo.store_refresh_token(
            conn, f"rt-{n}", consumed.grant_id, "bank", bound_jkt=None, now=NOW, expires_at=NOW + 9
        )
        return f"jti-{n}"

    results = race(database, redeem)

    won = winners(results)
    assert len(won) == 1
    with database.reader() as conn:
        assert grants_repo.access_token_active(conn, won[0], now=NOW) is False
        assert conn.execute(select(grants.c.revoked_reason)).scalar_one() == "code_reuse"
        assert conn.execute(select(refresh_tokens.c.consumed_at)).scalar_one() == NOW
    with database.transaction() as conn, pytest.raises(grants_repo.Reused):
        grants_repo.rotate_refresh_token(conn, won[0].replace("jti", "rt"), "bank", now=NOW)


def test_a_consumption_rolled_back_leaves_the_code_redeemable_once(database: Database) -> None:
    """What a crash between consume and commit amounts to: the UPDATE is undone with the
    transaction, and the code can still be redeemed — once."""
    new_grant(database)
    with database.transaction() as conn:
        grants_repo.store_code(
            conn, "the-code", "g1", "bank", {"redirect_uri": "x"}, now=NOW, expires_at=NOW + 60
        )

    class Crash(Exception):
        pass

    with pytest.raises(Crash), database.transaction() as conn:
        assert grants_repo.consume_code(conn, "the-code", "bank", now=NOW) is not None
        raise Crash

    with database.reader() as conn:
        assert conn.execute(select(authorization_codes.c.consumed_at)).scalar_one() is None
    with database.transaction() as conn:
        assert grants_repo.consume_code(conn, "the-code", "bank", now=NOW) is not None
    with database.transaction() as conn, pytest.raises(grants_repo.Reused):
        grants_repo.consume_code(conn, "the-code", "bank", now=NOW)


def test_parallel_request_uri_consumption_has_one_winner(database: Database) -> None:
    with database.transaction() as conn:
        par_repo.store(conn, "urn:x", "bank", {"scope": "openid"}, now=NOW, expires_at=NOW + 60)

    results = race(database, lambda conn: par_repo.consume(conn, "urn:x", "bank", now=NOW))

    assert winners(results) == [{"scope": "openid"}]
    assert results.count(None) == RACERS - 1


def _interaction(database: Database) -> None:
    with database.transaction() as conn:
        interactions_repo.create(
            conn, "i1", "bank", {}, browser_digest="d" * 64, now=NOW, expires_at=NOW + 600
        )


def test_parallel_wallet_response_consumption_has_one_winner(database: Database) -> None:
    _interaction(database)
    with database.transaction() as conn:
        wallet_repo.create(conn, "tx1", "i1", "anchor", "nonce-1", now=NOW, expires_at=NOW + 60)

    results = race(database, lambda conn: wallet_repo.consume(conn, "tx1", now=NOW))

    won = winners(results)
    assert len(won) == 1 and won[0].id == "tx1" and won[0].consumed_at == NOW
    assert results.count(None) == RACERS - 1


def test_parallel_login_and_consent_transitions_happen_once(database: Database) -> None:
    _interaction(database)

    logged_in = race(
        database,
        lambda conn: (
            interactions_repo.authenticated(conn, "i1", {"who": "x"}, login_via="anchor", now=NOW)
            or None
        ),
    )
    assert winners(logged_in) == [True]

    finished = race(database, lambda conn: interactions_repo.finish(conn, "i1", "done", now=NOW))
    won = winners(finished)
    assert len(won) == 1 and won[0].state == "done"
    assert finished.count(None) == RACERS - 1


def test_not_me_racing_an_approval_has_one_outcome(database: Database) -> None:
    """Issue 10: "not you?" (abandon from consent) and an approval (finish) of one interaction
    racing each other: exactly one of them happens."""
    _interaction(database)
    with database.transaction() as conn:
        interactions_repo.authenticated(conn, "i1", {"who": "x"}, login_via="anchor", now=NOW)

    turns = itertools.count()  # half the racers say "not me", half approve

    def either(conn: Connection) -> object:
        if next(turns) % 2:
            return interactions_repo.abandon(conn, "i1", now=NOW)
        return interactions_repo.finish(conn, "i1", "done", now=NOW)

    outcomes = race(database, either)
    won = winners(outcomes)
    assert len(won) == 1 and won[0].state in ("denied", "done")
    assert outcomes.count(None) == RACERS - 1


def test_an_exhausted_connection_pool_is_storage_unavailable_not_a_crash(
    database_url: str,
) -> None:
    """Every pooled connection busy (load, or transactions stuck behind a lock) and the wait
    for one runs out: that is the database being unavailable (503), not a programming error
    (500)."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite's pool is not sized by pool_size")
    db = Database(database_url, pool_size=1, pool_timeout=0.2)
    try:
        # pool_size + max_overflow connections held, and a third one asked for:
        with db.transaction(), db.reader(), pytest.raises(StorageUnavailable), db.reader():
            pass
        with db.reader() as conn:  # and once they are released, all is well again
            assert conn.execute(select(1)).scalar_one() == 1
    finally:
        db.dispose()
