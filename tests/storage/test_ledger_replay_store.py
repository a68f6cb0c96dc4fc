"""trustanchor.ledger.SqlReplayStore on the ledger's own database (SQLite and PostgreSQL): one
unique insert per jti, purge, the caller's transaction, and the same transfer token (or funding
token) presented by 20 threads at once — exactly one approved."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select
from support.ledger import (
    FUNDING_URL,
    LEDGER_URL,
    Intermediary,
    ServiceIssuer,
    funding_entry,
    make_verifier,
    matching_funding,
    matching_instruction,
)

from trustanchor.ledger import (
    ApprovedFunding,
    ApprovedTransfer,
    LedgerRefusal,
    SqlReplayStore,
    authorize_funding,
    authorize_transfer,
)

THREADS = 20


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The ledger's own engine on an empty database (none of the service's tables)."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30})
    else:
        engine = create_engine(database_url, pool_size=THREADS, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> SqlReplayStore:
    store = SqlReplayStore(engine)
    store.create_table()
    return store


def test_create_table_makes_only_the_ledger_table_and_is_idempotent(
    engine: Engine, store: SqlReplayStore
) -> None:
    store.create_table()
    assert inspect(engine).get_table_names() == ["ledger_consumed_jtis"]


def test_jti_is_consumed_once_per_namespace(store: SqlReplayStore) -> None:
    assert store.consume("t-1", 100) is True
    assert store.consume("t-1", 100) is False
    assert store.consume("t-1", 100, namespace="dpop") is True


def test_jti_is_stored_as_a_digest(engine: Engine, store: SqlReplayStore) -> None:
    store.consume("visible-jti", 100)
    with engine.connect() as conn:
        (digest,) = conn.execute(select(store.table.c.jti_digest)).one()
    assert "visible-jti" not in digest
    assert len(digest) == 64


def test_purge_forgets_only_expired_entries(engine: Engine, store: SqlReplayStore) -> None:
    store.consume("old", 10)
    store.consume("new", 1000)
    assert store.purge(500) == 1
    assert store.consume("new", 1000) is False
    assert store.consume("old", 2000) is True
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.table)).scalar_one() == 2


def test_consume_in_a_rolled_back_transaction_spends_nothing(
    engine: Engine, store: SqlReplayStore
) -> None:
    class BookingFailed(Exception):
        pass

    with pytest.raises(BookingFailed), engine.begin() as conn:
        assert store.consume_in(conn, "t-2", 100) is True
        raise BookingFailed
    assert store.consume("t-2", 100) is True


def test_consume_in_a_committed_transaction_spends_the_token(
    engine: Engine, store: SqlReplayStore
) -> None:
    with engine.begin() as conn:
        assert store.consume_in(conn, "t-3", 100) is True
        assert store.consume_in(conn, "t-3", 100) is False
    assert store.consume("t-3", 100) is False


def test_custom_table_name(engine: Engine) -> None:
    store = SqlReplayStore(engine, table_name="spent_tokens")
    store.create_table()
    assert store.consume("t", 1) is True
    assert "spent_tokens" in inspect(engine).get_table_names()


def test_same_transfer_token_presented_by_20_threads_is_accepted_once(
    store: SqlReplayStore, tmp_path: Path
) -> None:
    issuer = ServiceIssuer(tmp_path / "keys")
    client = Intermediary()
    verifier = make_verifier(issuer, store)
    token = issuer.transfer_token(jkt=client.jkt)
    proofs = [client.proof(token) for _ in range(THREADS)]  # a fresh proof each, as a client
    start = threading.Barrier(THREADS)

    def present(proof: str) -> ApprovedTransfer | str:
        start.wait()
        try:
            return authorize_transfer(
                verifier,
                store,
                authorization=f"DPoP {token}",
                dpop=proof,
                method="POST",
                url=LEDGER_URL,
                instruction=matching_instruction(),
            )
        except LedgerRefusal as refusal:
            return refusal.reason

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(present, proofs))
    approved = [r for r in results if isinstance(r, ApprovedTransfer)]
    assert len(approved) == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["token_used"] * (THREADS - 1)


def test_same_funding_token_presented_by_20_threads_is_accepted_once(
    store: SqlReplayStore, tmp_path: Path
) -> None:
    issuer = ServiceIssuer(tmp_path / "keys")
    client = Intermediary()
    verifier = make_verifier(issuer, store)
    token = issuer.transfer_token(jkt=client.jkt, authorization_details=[funding_entry()])
    proofs = [client.proof(token, url=FUNDING_URL) for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def present(proof: str) -> ApprovedFunding | str:
        start.wait()
        try:
            return authorize_funding(
                verifier,
                store,
                authorization=f"DPoP {token}",
                dpop=proof,
                method="POST",
                url=FUNDING_URL,
                instruction=matching_funding(),
            )
        except LedgerRefusal as refusal:
            return refusal.reason

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(present, proofs))
    approved = [r for r in results if isinstance(r, ApprovedFunding)]
    assert len(approved) == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["token_used"] * (THREADS - 1)


def test_same_dpop_proof_presented_by_20_threads_is_accepted_once(
    store: SqlReplayStore, tmp_path: Path
) -> None:
    issuer = ServiceIssuer(tmp_path / "keys")
    client = Intermediary()
    verifier = make_verifier(issuer, store)
    token = issuer.transfer_token(jkt=client.jkt)
    proof = client.proof(token)
    start = threading.Barrier(THREADS)

    def present(_: int) -> str:
        start.wait()
        try:
            verifier.verify(f"DPoP {token}", proof, method="POST", url=LEDGER_URL)
        except LedgerRefusal as refusal:
            return refusal.reason
        return "accepted"

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = sorted(pool.map(present, range(THREADS)))
    assert results == ["accepted"] + ["dpop_jti_replay"] * (THREADS - 1)
