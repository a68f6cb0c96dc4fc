from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from trustanchor.storage.database import Database
from trustanchor.storage.replay import DatabaseJtiRegistry


def test_jti_is_accepted_once_per_namespace(database: Database) -> None:
    registry = DatabaseJtiRegistry(database)
    assert registry.first_use("dpop", "abc", 100) is True
    assert registry.first_use("dpop", "abc", 100) is False
    assert registry.first_use("client_assertion", "abc", 100) is True


def test_purge_forgets_expired_jtis(database: Database) -> None:
    registry = DatabaseJtiRegistry(database)
    registry.first_use("dpop", "old", 10)
    registry.first_use("dpop", "new", 1000)
    assert registry.purge(now=500) == 1
    assert registry.first_use("dpop", "old", 2000) is True
    assert registry.first_use("dpop", "new", 2000) is False


def test_parallel_first_use_has_exactly_one_winner(database: Database) -> None:
    registry = DatabaseJtiRegistry(database)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: registry.first_use("dpop", "race", 100), range(50)))
    assert results.count(True) == 1
