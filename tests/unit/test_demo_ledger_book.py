"""The demo ledger's book: a transfer moves money atomically together with spending its token,
a balance never goes below zero (also under concurrent transfers), and a refused booking changes
nothing — not even the token, which stays usable for the transfer it approved."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, update
from sqlalchemy.exc import IntegrityError

from trustanchor.clock import FixedClock
from trustanchor.demo.ledger_book import (
    Booking,
    BookingRefused,
    LedgerBook,
    format_minor,
    ledger_accounts,
)
from trustanchor.demo.parties_state import parties_engine
from trustanchor.domain.money import Amount, parse_amount
from trustanchor.ledger import SqlReplayStore

AT = 1_800_000_000
HANAKO = "acc_HanakoWallet0000000001"
TARO = "acc_TaroWallet00000000002"
ERIKA = "acc_ErikaWalletEUR0000003"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = parties_engine(tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def book(engine: Engine) -> LedgerBook:
    book = LedgerBook(engine, FixedClock(AT))
    book.create_tables()
    book.open_account(HANAKO, owner="hanako", label="wallet", opening_balance=jpy("50000"))
    book.open_account(TARO, owner="taro", label="wallet", opening_balance=jpy("20000"))
    book.open_account(
        ERIKA, owner="erika", label="wallet", opening_balance=parse_amount("100.00", "EUR")
    )
    return book


@pytest.fixture
def replay(engine: Engine) -> SqlReplayStore:
    store = SqlReplayStore(engine)
    store.create_table()
    return store


def jpy(amount: str) -> Amount:
    return parse_amount(amount, "JPY")


def balances(book: LedgerBook) -> dict[str, int]:
    return {a.account_id: a.balance_minor for a in book.accounts()}


def transfer(amount: str, debtor: str = HANAKO, creditor: str = TARO, jti: str = "t1") -> Booking:
    return Booking(
        amount=parse_amount(amount, "JPY"),
        debtor_account=debtor,
        creditor_account=creditor,
        anchor_set="jp-cbdc",
        token_jti=jti,
        client_id="demo-bank",
    )


def spend(replay: SqlReplayStore, jti: str) -> Callable[[Connection], bool]:
    return lambda conn: replay.consume_in(conn, jti, AT + 60)


def test_opening_an_account_twice_keeps_its_balance(book: LedgerBook) -> None:
    assert not book.open_account(HANAKO, owner="hanako", label="w", opening_balance=jpy("1"))
    assert balances(book)[HANAKO] == 50000
    erika = book.account(ERIKA)
    assert erika is not None and erika.balance == "100.00"
    assert format_minor(0, "EUR") == "0.00" and format_minor(0, "JPY") == "0"


def test_a_transfer_moves_the_amount_spends_the_token_and_is_journalled(
    book: LedgerBook, replay: SqlReplayStore
) -> None:
    booking_id = book.book(transfer("5000"), consume=spend(replay, "t1"))
    assert balances(book)[HANAKO] == 45000 and balances(book)[TARO] == 25000
    [entry] = book.journal()
    assert (entry.id, entry.outcome, entry.amount, entry.anchor_set) == (
        booking_id,
        "executed",
        "5000",
        "jp-cbdc",
    )
    with pytest.raises(BookingRefused) as caught:
        book.book(transfer("5000"), consume=spend(replay, "t1"))
    assert caught.value.reason == "token_used"
    assert balances(book)[HANAKO] == 45000


@pytest.mark.parametrize(
    ("booking", "reason"),
    [
        (transfer("50001"), "insufficient_funds"),
        (transfer("10", creditor="acc_NobodyKnowsThisOne00"), "unknown_account"),
        (transfer("10", debtor="acc_NobodyKnowsThisOne00"), "unknown_account"),
        (transfer("10", creditor=ERIKA), "account_currency_mismatch"),
        (transfer("10", creditor=HANAKO), "unknown_account"),
    ],
)
def test_a_refused_booking_changes_nothing_and_leaves_the_token_usable(
    book: LedgerBook, replay: SqlReplayStore, booking: Booking, reason: str
) -> None:
    before = balances(book)
    with pytest.raises(BookingRefused) as caught:
        book.book(booking, consume=spend(replay, "t1"))
    assert caught.value.reason == reason
    assert balances(book) == before
    assert book.journal() == []
    assert replay.consume("t1", AT + 60)  # the token was not spent by the refused booking


def test_the_database_itself_refuses_a_negative_balance(book: LedgerBook) -> None:
    with pytest.raises(IntegrityError), book.engine.begin() as conn:
        conn.execute(
            update(ledger_accounts)
            .where(ledger_accounts.c.account_id == HANAKO)
            .values(balance_minor=-1)
        )
    assert balances(book)[HANAKO] == 50000


def test_concurrent_transfers_never_overdraw(book: LedgerBook, replay: SqlReplayStore) -> None:
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def send(index: int) -> None:
        barrier.wait()
        try:
            book.book(transfer("7000", jti=f"t{index}"), consume=spend(replay, f"t{index}"))
            outcomes.append("executed")
        except BookingRefused as refused:
            outcomes.append(refused.reason)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["executed"] * 7 + ["insufficient_funds"] * 3
    assert balances(book)[HANAKO] == 50000 - 7 * 7000
    assert balances(book)[TARO] == 20000 + 7 * 7000


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 30000)), max_size=12))
def test_any_sequence_of_transfers_keeps_balances_non_negative_and_the_total(
    tmp_path_factory: pytest.TempPathFactory, moves: list[tuple[bool, int]]
) -> None:
    engine = parties_engine(tmp_path_factory.mktemp("ledger"))
    try:
        book = LedgerBook(engine, FixedClock(AT))
        book.create_tables()
        book.open_account(HANAKO, owner="hanako", label="w", opening_balance=jpy("50000"))
        book.open_account(TARO, owner="taro", label="w", opening_balance=jpy("20000"))
        expected = {HANAKO: 50000, TARO: 20000}
        for index, (forward, amount) in enumerate(moves):
            debtor, creditor = (HANAKO, TARO) if forward else (TARO, HANAKO)
            try:
                book.book(transfer(str(amount), debtor, creditor, jti=f"t{index}"))
            except BookingRefused as refused:
                assert refused.reason == "insufficient_funds"
                assert expected[debtor] < amount
            else:
                expected[debtor] -= amount
                expected[creditor] += amount
            assert balances(book) == expected
            assert min(expected.values()) >= 0
    finally:
        engine.dispose()


def test_refusals_are_journalled_with_their_reason(book: LedgerBook) -> None:
    book.record_refusal("amount_mismatch", amount="7000", currency="JPY", debtor_account=HANAKO)
    [entry] = book.journal()
    assert (entry.outcome, entry.reason, entry.amount, entry.creditor_account) == (
        "refused",
        "amount_mismatch",
        "7000",
        None,
    )
