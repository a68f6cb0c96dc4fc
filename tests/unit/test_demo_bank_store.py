"""The demo bank's store: a pending authorization is consumed once, only by the browser session
that started it, and not after it expired; sessions are digests, rotated at sign-in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from trustanchor.clock import FixedClock
from trustanchor.demo.bank.store import BankStore, Session, bank_sessions
from trustanchor.demo.parties_state import parties_engine
from trustanchor.randomness import SystemRandomness

AT = 1_800_000_000


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(AT)


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> Iterator[BankStore]:
    engine = parties_engine(tmp_path)
    store = BankStore(engine, clock, SystemRandomness(), session_lifetime=600, pending_lifetime=60)
    store.create_tables()
    yield store
    engine.dispose()


def pending(store: BankStore, session: Session, state: str = "state-1") -> None:
    store.save_pending(
        session,
        purpose="transfer",
        state=state,
        nonce="nonce-1",
        code_verifier="v" * 43,
        scope="openid",
        payload={"instruction": {"amount": "5000"}},
    )


def test_a_pending_authorization_is_consumed_once(store: BankStore) -> None:
    _, session = store.new_session()
    pending(store, session)
    first = store.consume_pending("state-1", session)
    assert first is not None
    assert (first.purpose, first.nonce, first.code_verifier) == ("transfer", "nonce-1", "v" * 43)
    assert first.payload == {"instruction": {"amount": "5000"}}
    assert store.consume_pending("state-1", session) is None


def test_only_the_session_that_started_it_can_consume_it(store: BankStore) -> None:
    _, mine = store.new_session()
    _, other = store.new_session()
    pending(store, mine)
    assert store.consume_pending("state-1", other) is None
    assert store.consume_pending("state-1", mine) is not None  # the failed try spent nothing


def test_an_expired_or_unknown_state_finds_nothing(store: BankStore, clock: FixedClock) -> None:
    _, session = store.new_session()
    pending(store, session)
    assert store.consume_pending("state-2", session) is None
    assert store.consume_pending(None, session) is None
    assert store.consume_pending("x" * 500, session) is None
    clock.advance(60)
    assert store.consume_pending("state-1", session) is None


def test_of_many_concurrent_callbacks_with_one_state_exactly_one_wins(store: BankStore) -> None:
    _, session = store.new_session()
    pending(store, session)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def consume() -> None:
        barrier.wait()
        results.append(store.consume_pending("state-1", session) is not None)

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_sessions_are_stored_as_digests_and_rotated_at_sign_in(
    store: BankStore, clock: FixedClock
) -> None:
    cookie, session = store.new_session()
    with store.engine.connect() as conn:
        stored = [row.id_digest for row in conn.execute(select(bank_sessions)).all()]
    assert cookie not in stored and session.id_digest in stored
    assert store.session(cookie) == session
    assert (
        session.csrf_ok(session.csrf)
        and not session.csrf_ok("forged")
        and not session.csrf_ok(None)
    )

    new_cookie, signed_in = store.sign_in(session, "hanako", "pairwise-sub")
    assert new_cookie != cookie
    assert store.session(cookie) is None  # the pre-login cookie is worth nothing now
    found = store.session(new_cookie)
    assert found is not None and found.signed_in and found.person_id == "hanako"
    assert signed_in.csrf != session.csrf
    clock.advance(600)
    assert store.session(new_cookie) is None


def test_a_subject_belongs_to_one_customer(store: BankStore) -> None:
    assert store.remember_subject("sub-1", "hanako")
    assert store.remember_subject("sub-1", "hanako")
    assert not store.remember_subject("sub-1", "taro")
    assert store.person_for("sub-1") == "hanako"
    assert store.person_for("sub-2") is None


def test_the_service_answer_for_an_account_reference_wins(store: BankStore) -> None:
    first, second = "acc_" + "a" * 20, "acc_" + "b" * 20
    assert store.record_account("REF-1", owner="hanako", kind="cbdc_wallet", account_id=first)
    assert not store.record_account("REF-1", owner="hanako", kind="cbdc_wallet", account_id=first)
    assert store.accounts()["REF-1"].account_id == first
    # The service's database was made anew: it answers another id for the same reference.
    assert store.record_account("REF-1", owner="hanako", kind="cbdc_wallet", account_id=second)
    assert store.accounts()["REF-1"].account_id == second


def test_operations_are_visible_to_their_customer_only(store: BankStore) -> None:
    operation_id = store.record_operation(
        person_id="hanako",
        purpose="transfer",
        outcome="denied",
        reason="no_common_anchor_set",
        requested={"payee": "erika"},
    )
    store.record_ledger_answer(operation_id, 201, {"status": "executed"})
    found = store.operation(operation_id, "hanako")
    assert found is not None and found.reason == "no_common_anchor_set"
    assert found.ledger_answer == {"status": "executed"}
    assert store.operation(operation_id, "taro") is None
    assert [o.id for o in store.operations("hanako")] == [operation_id]


def test_the_logout_hint_lives_and_ends_with_its_session(
    store: BankStore, clock: FixedClock
) -> None:
    _, anonymous = store.new_session()
    _, signed_in = store.sign_in(anonymous, "hanako", "sub-1", id_token="id-token-at-sign-in")
    store.remember_id_token(signed_in, "id-token-after-step-up")
    assert store.end_session(signed_in) == "id-token-after-step-up"
    assert store.end_session(signed_in) is None  # ended: nothing left to hint with
    _, other = store.new_session()
    _, without = store.sign_in(other, "taro", "sub-2")
    assert store.end_session(without) is None
    # A hint whose session expired is purged with it.
    _, third = store.new_session()
    _, expiring = store.sign_in(third, "erika", "sub-3", id_token="old")
    clock.advance(601)
    store.new_session()
    assert store.end_session(expiring) is None


def _operation(store: BankStore, purpose: str, outcome: str) -> int:
    return store.record_operation(
        person_id="hanako", purpose=purpose, outcome=outcome, requested={"x": "y"}
    )


@pytest.mark.parametrize(
    ("purpose", "outcome", "ledger", "state", "reason"),
    [
        ("link", "allowed", None, "allowed", None),
        ("transfer", "denied", None, "denied", None),
        ("transfer", "allowed", None, "ledger_not_asked", None),
        ("transfer", "allowed", (201, {"status": "executed"}), "executed", None),
        ("funding", "allowed", (201, {"status": "executed"}), "executed", None),
        (
            "transfer",
            "allowed",
            (409, {"reason": "insufficient_funds"}),
            "ledger_refused",
            "insufficient_funds",
        ),
        ("transfer", "allowed", (401, {"error": "token_used"}), "ledger_refused", "token_used"),
        ("transfer", "allowed", (403, {"reason": "<b>x</b>"}), "ledger_refused", None),
        ("funding", "allowed", (0, {"error": "the ledger does not answer"}), "ledger_silent", None),
    ],
)
def test_an_allowed_payment_is_done_only_when_the_ledger_says_so(
    store: BankStore,
    purpose: str,
    outcome: str,
    ledger: tuple[int, dict[str, str]] | None,
    state: str,
    reason: str | None,
) -> None:
    operation_id = _operation(store, purpose, outcome)
    if ledger is not None:
        store.record_ledger_answer(operation_id, *ledger)
    found = store.operation(operation_id, "hanako")
    assert found is not None
    assert (found.state, found.ledger_reason) == (state, reason)
