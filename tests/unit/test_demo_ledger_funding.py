"""The demo ledger's funding movements: a holder's deposit and wallet move together with spending
the token, in either direction, never below zero, never between two people's accounts; the
ledger's counter checks a funding token (signed through the service's own signing path, see
tests/support/ledger.py) member by member, executes it once and journals every refusal."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine
from support.ledger import (
    ANCHOR_SET,
    AT,
    CREDITOR,
    DEBTOR,
    DEPOSIT,
    LINK_ID,
    Intermediary,
    ServiceIssuer,
    funding_entry,
    make_verifier,
    transfer_entry,
)

from trustanchor.clock import FixedClock
from trustanchor.demo.ledger_book import (
    BookingRefused,
    FundingBooking,
    LedgerBook,
)
from trustanchor.demo.ledger_desk import DemoLedger
from trustanchor.demo.parties_state import parties_engine
from trustanchor.demo.site import DemoSite
from trustanchor.domain.money import Amount, parse_amount
from trustanchor.ledger import SqlReplayStore

WALLET = DEBTOR  # the support module's wallet of the holder whose deposit is DEPOSIT
OTHER_DEPOSIT = "acc_SomeoneElsesDeposit0009"


def jpy(amount: str) -> Amount:
    return parse_amount(amount, "JPY")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = parties_engine(tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def book(engine: Engine) -> LedgerBook:
    book = LedgerBook(engine, FixedClock(AT))
    book.create_tables()
    book.open_account(WALLET, owner="taro", label="wallet", opening_balance=jpy("20000"))
    book.open_deposit(DEPOSIT, owner="taro", label="deposit", opening_balance=jpy("300000"))
    book.open_deposit(OTHER_DEPOSIT, owner="hanako", label="deposit", opening_balance=jpy("5"))
    return book


def balances(book: LedgerBook) -> tuple[int, int]:
    wallet, deposit = book.account(WALLET), book.deposit(DEPOSIT)
    assert wallet is not None and deposit is not None
    return deposit.balance_minor, wallet.balance_minor


def movement(direction: str, amount: str | Amount, **overrides: Any) -> FundingBooking:
    values: dict[str, Any] = {
        "direction": direction,
        "amount": amount if isinstance(amount, Amount) else jpy(amount),
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
        "link_id": LINK_ID,
    }
    values.update(overrides)
    return FundingBooking(**values)


def test_a_top_up_and_a_move_back_change_both_sides(book: LedgerBook) -> None:
    book.book_funding(movement("deposit_to_wallet", "100000"))
    assert balances(book) == (200000, 120000)
    book.book_funding(movement("wallet_to_deposit", "120000"))
    assert balances(book) == (320000, 0)
    journal = [(e.outcome, e.direction, e.amount, e.link_id) for e in book.fundings()]
    assert journal == [
        ("executed", "wallet_to_deposit", "120000", LINK_ID),
        ("executed", "deposit_to_wallet", "100000", LINK_ID),
    ]
    assert book.open_deposit(DEPOSIT, owner="taro", label="x", opening_balance=jpy("1")) is False
    assert balances(book) == (320000, 0)  # opening again keeps the balance


@pytest.mark.parametrize(
    ("booking", "reason"),
    [
        (movement("deposit_to_wallet", "300001"), "insufficient_funds"),
        (movement("wallet_to_deposit", "20001"), "insufficient_funds"),
        (movement("deposit_to_wallet", "1", deposit_account=OTHER_DEPOSIT), "holder_mismatch"),
        (
            movement("deposit_to_wallet", "1", deposit_account="acc_Nobody00000000000000"),
            "unknown_account",
        ),
        (movement("wallet_to_deposit", "1", wallet_account=DEPOSIT), "unknown_account"),
        (
            movement("deposit_to_wallet", parse_amount("1.00", "EUR")),
            "account_currency_mismatch",
        ),
    ],
)
def test_a_refused_movement_changes_nothing_and_spends_nothing(
    book: LedgerBook, engine: Engine, booking: FundingBooking, reason: str
) -> None:
    replay = SqlReplayStore(engine)
    replay.create_table()

    def consume(conn: Connection) -> bool:
        return replay.consume_in(conn, "jti-1", AT + 60)

    with pytest.raises(BookingRefused) as refused:
        book.book_funding(booking, consume=consume)
    assert refused.value.reason == reason
    assert balances(book) == (300000, 20000)
    assert book.fundings() == []
    # The token was not spent: the same jti books the movement it approved.
    book.book_funding(movement("deposit_to_wallet", "1"), consume=consume)
    assert balances(book) == (299999, 20001)


def test_a_spent_token_moves_nothing(book: LedgerBook) -> None:
    with pytest.raises(BookingRefused) as refused:
        book.book_funding(movement("deposit_to_wallet", "10"), consume=lambda _conn: False)
    assert refused.value.reason == "token_used"
    assert balances(book) == (300000, 20000)


# -- the ledger's counter: POST /ledger/fundings -------------------------------------------------


class ServiceAnswers:
    """The service's introspection endpoint as the ledger's injected callable sees it: every
    token active (with its ``jti``, as the service answers) unless its ``jti`` was revoked, or
    ``failure`` raised when set (the service unreachable). Records the tokens it was asked about.
    Used by tests/unit/test_demo_ledger_revocation.py; the real endpoint, over HTTP:
    tests/flows/test_demo_ledger_introspection.py."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.failure: Exception | None = None
        self.asked: list[str] = []

    def __call__(self, token: str) -> Mapping[str, Any]:
        jti = jti_of(token)
        self.asked.append(jti)
        if self.failure is not None:
            raise self.failure
        return {"active": False} if jti in self.revoked else {"active": True, "jti": jti}


def jti_of(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


class Counter:
    def __init__(self, tmp_path: Path, engine: Engine, book: LedgerBook) -> None:
        site = DemoSite(
            service_url="https://as.example.com",
            parties_url="https://parties.example",
            keys_dir=tmp_path / "unused",
            state_dir=tmp_path,
            clock=FixedClock(AT),
        )
        self.service = ServiceAnswers()
        self.ledger = DemoLedger(site, engine, book, introspect=self.service)
        self.ledger.create_tables()
        # The service's signing side, whose keys the ledger's verifier trusts (instead of
        # fetching the service's JWKS over HTTP).
        self.issuer = ServiceIssuer(tmp_path / "issuer-keys")
        self.ledger.verifier = make_verifier(self.issuer, self.ledger.replay)
        self.client = Intermediary()

    def token(self, **entry: Any) -> str:
        return self.issuer.transfer_token(
            jkt=self.client.jkt, authorization_details=[funding_entry(**entry)]
        )

    def post(self, token: str, **body: str) -> Any:
        instruction = {
            "direction": "deposit_to_wallet",
            "amount": "10000",
            "currency": "JPY",
            "deposit_account": DEPOSIT,
            "wallet_account": WALLET,
        }
        instruction.update(body)
        return self.ledger.execute_funding(
            authorization=f"DPoP {token}",
            dpop=self.client.proof(token, url=self.ledger.fundings_url),
            body=json.dumps(instruction).encode(),
        )


@pytest.fixture
def counter(tmp_path: Path, engine: Engine, book: LedgerBook) -> Counter:
    return Counter(tmp_path, engine, book)


def test_the_counter_executes_a_funding_token_once(counter: Counter, book: LedgerBook) -> None:
    token = counter.token()
    first = counter.post(token)
    assert first.status == 201, first.body
    assert first.body["link_id"] == LINK_ID and first.body["anchor_set"] == ANCHOR_SET
    assert balances(book) == (290000, 30000)
    again = counter.post(token)
    assert (again.status, again.body.get("reason")) == (401, "token_used")
    assert balances(book) == (290000, 30000)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"direction": "wallet_to_deposit"}, "direction_mismatch"),
        ({"amount": "10001"}, "amount_mismatch"),
        ({"deposit_account": OTHER_DEPOSIT}, "deposit_account_mismatch"),
        ({"memo": "extra"}, "invalid_instruction"),
    ],
)
def test_the_counter_refuses_what_the_token_does_not_say(
    counter: Counter, book: LedgerBook, body: dict[str, str], reason: str
) -> None:
    token = counter.token()
    refused = counter.post(token, **body)
    assert refused.body.get("reason") == reason, refused.body
    assert balances(book) == (300000, 20000)
    assert [(e.outcome, e.reason) for e in book.fundings()] == [("refused", reason)]
    # The anchor set the service relied on, once the token was read (an instruction that is
    # not one is refused before).
    [entry] = book.fundings()
    assert entry.anchor_set == (None if reason == "invalid_instruction" else ANCHOR_SET)
    assert counter.post(token).status == 201  # a refusal did not spend the token


def test_a_transfer_token_is_not_a_funding_token(counter: Counter, book: LedgerBook) -> None:
    token = counter.issuer.transfer_token(jkt=counter.client.jkt)
    refused = counter.post(token)
    assert refused.body.get("reason") == "not_a_funding_token"
    assert balances(book) == (300000, 20000)


def test_the_book_refusing_is_a_409_with_its_reason(counter: Counter, book: LedgerBook) -> None:
    token = counter.token(instructed_amount={"currency": "JPY", "amount": "300001"})
    refused = counter.post(token, amount="300001")
    assert (refused.status, refused.body["reason"]) == (409, "insufficient_funds")
    assert [(e.outcome, e.reason, e.anchor_set) for e in book.fundings()] == [
        ("refused", "insufficient_funds", ANCHOR_SET)
    ]


def test_an_instruction_cannot_name_the_anchor_set_it_is_journalled_under(
    counter: Counter, book: LedgerBook
) -> None:
    refused = counter.post(counter.token(), anchor_set="someone-elses-set")
    assert refused.body.get("reason") == "invalid_instruction"
    assert [(e.reason, e.anchor_set) for e in book.fundings()] == [("invalid_instruction", None)]


def post_transfer(counter: Counter, token: str, **body: str) -> Any:
    instruction = {
        "amount": "5000",
        "currency": "JPY",
        "debtor_account": WALLET,
        "creditor_account": CREDITOR,
        "remittance_reference": "INV-2026-0001",
    }
    instruction.update(body)
    return counter.ledger.execute(
        authorization=f"DPoP {token}",
        dpop=counter.client.proof(token, url=counter.ledger.url),
        body=json.dumps(instruction).encode(),
    )


def test_a_refused_transfer_is_journalled_with_the_anchor_set_of_its_token(
    counter: Counter, book: LedgerBook
) -> None:
    book.open_account(CREDITOR, owner="hanako", label="wallet", opening_balance=jpy("1"))
    # Above the wallet's 20,000 JPY: the ledger refuses what the service approved.
    amount = {"currency": "JPY", "amount": "30000"}
    token = counter.issuer.transfer_token(
        jkt=counter.client.jkt, authorization_details=[transfer_entry(instructed_amount=amount)]
    )
    refused = post_transfer(counter, token, amount="30000")
    assert (refused.status, refused.body["reason"]) == (409, "insufficient_funds")
    # Not what the token says: refused by the token check, the anchor set known all the same.
    assert post_transfer(counter, token, amount="29999").body["reason"] == "amount_mismatch"
    assert post_transfer(counter, token, anchor_set="x").body["reason"] == "invalid_instruction"
    assert [(e.reason, e.anchor_set) for e in book.journal()] == [
        ("invalid_instruction", None),
        ("amount_mismatch", ANCHOR_SET),
        ("insufficient_funds", ANCHOR_SET),
    ]
