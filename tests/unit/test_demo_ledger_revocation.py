"""The demo ledger asks the service whether a token is still active before it executes it
(RFC 7662 introspection through ``trustanchor.ledger.require_active``): a token the service
reports inactive is ``token_revoked``, a question the service cannot answer is
``revocation_check_failed``; neither moves money nor spends the token, and every refusal is
journalled. The ledger's own introspection client (:class:`ServiceIntrospection`) fails closed
when its key is missing or the service does not answer. The real endpoint, over HTTP, with a link
removed and a standing authorization stopped: tests/flows/test_demo_ledger_introspection.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from support.ledger import ANCHOR_SET, AT, CREDITOR, transfer_entry
from support.server import free_port
from test_demo_ledger_funding import (
    WALLET,
    Counter,
    balances,
    book,  # noqa: F401 (fixture)
    engine,  # noqa: F401 (fixture)
    jpy,
    jti_of,
    post_transfer,
)

from trustanchor.clock import FixedClock
from trustanchor.demo.ledger_book import LedgerBook
from trustanchor.demo.ledger_desk import LEDGER_CLIENT_ID, DemoLedger, ServiceIntrospection
from trustanchor.demo.prepare import ensure_key
from trustanchor.demo.site import DemoSite
from trustanchor.ledger.replay_store import TOKEN_NAMESPACE


@pytest.fixture
def counter(tmp_path: Path, engine: Engine, book: LedgerBook) -> Counter:  # noqa: F811
    return Counter(tmp_path, engine, book)


def not_spent(counter: Counter, token: str) -> bool:
    """Whether the ledger's replay store has no record of the token (this records it)."""
    return counter.ledger.replay.consume(jti_of(token), AT + 60, namespace=TOKEN_NAMESPACE)


def test_every_executed_token_was_asked_about_first(
    counter: Counter,
    book: LedgerBook,  # noqa: F811
) -> None:
    token = counter.token()
    assert counter.post(token).status == 201
    assert counter.service.asked == [jti_of(token)]
    # A token refused by the ledger's own checks is not asked about (nothing to ask then).
    other = counter.token()
    assert counter.post(other, amount="10001").body["reason"] == "amount_mismatch"
    assert counter.service.asked == [jti_of(token)]
    assert balances(book) == (290000, 30000)


def test_a_revoked_funding_token_moves_nothing_and_is_not_spent(
    counter: Counter,
    book: LedgerBook,  # noqa: F811
) -> None:
    token = counter.token()
    counter.service.revoked.add(jti_of(token))
    refused = counter.post(token)
    assert (refused.status, refused.body["reason"]) == (401, "token_revoked")
    assert refused.body["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert balances(book) == (300000, 20000)
    assert [(e.outcome, e.reason, e.anchor_set) for e in book.fundings()] == [
        ("refused", "token_revoked", ANCHOR_SET)
    ]
    assert not_spent(counter, token)


def test_a_revoked_transfer_token_moves_nothing(
    counter: Counter,
    book: LedgerBook,  # noqa: F811
) -> None:
    book.open_account(CREDITOR, owner="hanako", label="wallet", opening_balance=jpy("1"))
    token = counter.issuer.transfer_token(
        jkt=counter.client.jkt, authorization_details=[transfer_entry()]
    )
    counter.service.revoked.add(jti_of(token))
    refused = post_transfer(counter, token)
    assert (refused.status, refused.body["reason"]) == (401, "token_revoked")
    debtor, creditor = book.account(WALLET), book.account(CREDITOR)
    assert debtor is not None and creditor is not None
    assert (debtor.balance_minor, creditor.balance_minor) == (20000, 1)
    assert [(e.outcome, e.reason) for e in book.journal()] == [("refused", "token_revoked")]
    assert not_spent(counter, token)


def test_no_answer_from_the_service_is_no_booking(
    counter: Counter,
    book: LedgerBook,  # noqa: F811
) -> None:
    token = counter.token()
    counter.service.failure = ConnectionError("the service does not answer")
    refused = counter.post(token)
    assert (refused.status, refused.body["reason"]) == (503, "revocation_check_failed")
    assert refused.body["error"] == "temporarily_unavailable"
    assert balances(book) == (300000, 20000)
    assert [(e.outcome, e.reason) for e in book.fundings()] == [
        ("refused", "revocation_check_failed")
    ]
    # Nothing was spent: once the service answers, the token executes the movement it approved.
    counter.service.failure = None
    assert counter.post(token).status == 201
    assert balances(book) == (290000, 30000)


def test_an_answer_about_another_token_is_no_answer(
    counter: Counter,
    book: LedgerBook,  # noqa: F811
) -> None:
    token = counter.token()
    counter.ledger.introspect = lambda _token: {"active": True, "jti": "at-someone-else"}
    refused = counter.post(token)
    assert (refused.status, refused.body["reason"]) == (503, "revocation_check_failed")
    assert balances(book) == (300000, 20000)


# -- the ledger's own introspection client ------------------------------------------------------


def site(tmp_path: Path, service_url: str, keys_dir: Path) -> DemoSite:
    return DemoSite(
        service_url=service_url,
        parties_url="https://parties.example",
        keys_dir=keys_dir,
        state_dir=tmp_path,
        clock=FixedClock(AT),
    )


def test_the_default_ledger_introspects_with_its_own_client(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
    book: LedgerBook,  # noqa: F811
) -> None:
    ledger = DemoLedger(site(tmp_path, "https://as.example.com", tmp_path / "keys"), engine, book)
    assert isinstance(ledger.introspect, ServiceIntrospection)
    assert ledger.introspect.client_id == LEDGER_CLIENT_ID == "demo-ledger"


@pytest.mark.parametrize("problem", ["no_key", "no_service"])
def test_the_ledger_fails_closed_when_it_cannot_introspect(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
    book: LedgerBook,  # noqa: F811
    problem: str,
) -> None:
    keys_dir = tmp_path / "keys"
    if problem == "no_service":
        ensure_key(keys_dir / "clients", LEDGER_CLIENT_ID)  # as prepare makes it
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    counter = Counter(tmp_path, engine, book)
    counter.ledger.introspect = ServiceIntrospection(site(tmp_path, nothing_listens, keys_dir))
    token = counter.token()
    refused = counter.post(token)
    assert (refused.status, refused.body["reason"]) == (503, "revocation_check_failed")
    assert balances(book) == (300000, 20000)
    assert not_spent(counter, token)
