"""The ledger module against the real service, over HTTP, on SQLite and PostgreSQL: two people of
one anchor set link their accounts, Taro approves a transfer to Hanako, the bank redeems the code
with DPoP, and the ledger (trustanchor.ledger with its own SQLite database) fetches the service's
/jwks, verifies token and proof, asks /introspect, checks the instruction and spends the token.
The same for a funding movement between Taro's own deposit account and wallet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine
from support.payments import JP_HIGH, JP_SET, JP_SUBSTANTIAL, Bank, Holder, Payments, link, transfer
from support.rp import DpopKey, Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.clock import SystemClock
from trustanchor.ledger import (
    FundingInstruction,
    LedgerRefusal,
    LedgerTokenVerifier,
    SqlReplayStore,
    TransferInstruction,
    authorize_funding,
    authorize_transfer,
)

LEDGER_ENDPOINT = "https://ledger.example.com/transfers"
FUNDING_ENDPOINT = "https://ledger.example.com/fundings"


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


def linked_wallet(
    server: RunningServer, payments: Payments, bank: Bank, subject: str, anchor: str
) -> tuple[Holder, str]:
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
    pkce = Pkce.generate()
    consent = person.log_in(
        person.open(bank.authorization_url([link(deposit, wallet)], pkce)), anchor
    )
    bank.redeem(person.decide(consent, "approve")["code"], pkce)
    return person, wallet


class Ledger:
    """The ledger: its own database, the service's keys fetched over HTTP, introspection as the
    registered ledger client."""

    def __init__(self, server: RunningServer, payments: Payments, tmp_path: Path) -> None:
        self.engine = create_engine(
            f"sqlite:///{tmp_path / 'ledger.db'}", connect_args={"timeout": 10}
        )
        self.replay = SqlReplayStore(self.engine)
        self.replay.create_table()
        self.jwks_fetches = 0

        def fetch_jwks() -> bytes:
            self.jwks_fetches += 1
            response = requests.get(server.url("/jwks"), timeout=10)
            response.raise_for_status()
            return response.content

        self.client = RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")
        self.verifier = LedgerTokenVerifier(
            server.issuer,
            server.services.default_audience,
            fetch_jwks,
            replay=self.replay,
            clock=SystemClock(),
        )

    def authorize(self, token: str, key: DpopKey, instruction: TransferInstruction) -> Any:
        proof = key.proof("POST", LEDGER_ENDPOINT, iat=SystemClock().now(), access_token=token)
        return authorize_transfer(
            self.verifier,
            self.replay,
            authorization=f"DPoP {token}",
            dpop=proof,
            method="POST",
            url=LEDGER_ENDPOINT,
            instruction=instruction,
            introspect=self.client.introspect,
        )

    def fund(self, token: str, key: DpopKey, instruction: FundingInstruction) -> Any:
        proof = key.proof("POST", FUNDING_ENDPOINT, iat=SystemClock().now(), access_token=token)
        return authorize_funding(
            self.verifier,
            self.replay,
            authorization=f"DPoP {token}",
            dpop=proof,
            method="POST",
            url=FUNDING_ENDPOINT,
            instruction=instruction,
            introspect=self.client.introspect,
        )


@pytest.fixture
def ledger(server: RunningServer, payments: Payments, tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(server, payments, tmp_path)
    yield ledger
    ledger.engine.dispose()


def test_ledger_executes_a_service_approved_transfer_exactly_once(
    server: RunningServer, payments: Payments, bank: Bank, ledger: Ledger
) -> None:
    taro, taro_wallet = linked_wallet(server, payments, bank, "taro", JP_HIGH)
    _, hanako_wallet = linked_wallet(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, hanako_wallet, "5000")], pkce)
    )
    code = taro.decide(consent, "approve")["code"]
    key = DpopKey()
    tokens = bank.rp.redeem(code, pkce.verifier, dpop=bank.rp.proof(key, "/token")).json()
    assert tokens["token_type"] == "DPoP"
    token = tokens["access_token"]

    instruction = TransferInstruction(
        amount="5000", currency="JPY", debtor_account=taro_wallet, creditor_account=hanako_wallet
    )

    with pytest.raises(LedgerRefusal) as caught:
        ledger.authorize(
            token,
            key,
            TransferInstruction(
                amount="50000",
                currency="JPY",
                debtor_account=taro_wallet,
                creditor_account=hanako_wallet,
            ),
        )
    assert caught.value.reason == "amount_mismatch"
    with pytest.raises(LedgerRefusal) as caught:
        ledger.authorize(token, DpopKey(), instruction)  # a thief without the bank's key
    assert caught.value.reason == "dpop_key_mismatch"

    approved = ledger.authorize(token, key, instruction)
    assert approved.anchor_set == JP_SET
    assert str(approved.amount) == "5000"
    assert (approved.debtor_account, approved.creditor_account) == (taro_wallet, hanako_wallet)
    assert approved.client_id == payments.bank.client_id

    with pytest.raises(LedgerRefusal) as caught:
        ledger.authorize(token, key, instruction)
    assert caught.value.reason == "token_used"
    assert ledger.jwks_fetches == 1


def test_ledger_refuses_a_token_the_service_revoked(
    server: RunningServer, payments: Payments, bank: Bank, ledger: Ledger
) -> None:
    taro, taro_wallet = linked_wallet(server, payments, bank, "taro", JP_HIGH)
    _, hanako_wallet = linked_wallet(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    pkce = Pkce.generate()
    consent = taro.open(bank.authorization_url([transfer(taro_wallet, hanako_wallet, "700")], pkce))
    key = DpopKey()
    code = taro.decide(consent, "approve")["code"]
    token = bank.rp.redeem(code, pkce.verifier, dpop=bank.rp.proof(key, "/token")).json()[
        "access_token"
    ]
    revoked = bank.rp.post("/revoke", {"token": token})
    assert revoked.status_code == 200, revoked.text

    with pytest.raises(LedgerRefusal) as caught:
        ledger.authorize(
            token,
            key,
            TransferInstruction(
                amount="700",
                currency="JPY",
                debtor_account=taro_wallet,
                creditor_account=hanako_wallet,
            ),
        )
    assert caught.value.reason == "token_revoked", caught.value.log_detail


def linked_accounts(
    server: RunningServer, payments: Payments, bank: Bank
) -> tuple[Holder, str, str, str]:
    """Taro's deposit account and wallet at ``bank``, linked: (Taro, deposit, wallet, link id)."""
    taro = Holder(server, payments, "taro")
    deposit = bank.register("taro-deposit", "bank_deposit", "taro savings")
    wallet = bank.register("taro-wallet", "cbdc_wallet", "taro wallet")
    pkce = Pkce.generate()
    consent = taro.log_in(taro.open(bank.authorization_url([link(deposit, wallet)], pkce)), JP_HIGH)
    bank.redeem(taro.decide(consent, "approve")["code"], pkce)
    [row] = [x for x in bank.api("GET", "/links").json()["links"] if x["wallet_account"] == wallet]
    return taro, deposit, wallet, str(row["link_id"])


def top_up(deposit: str, wallet: str, amount: str) -> FundingInstruction:
    return FundingInstruction(
        direction="deposit_to_wallet",
        amount=amount,
        currency="JPY",
        deposit_account=deposit,
        wallet_account=wallet,
    )


def funding_token(
    bank: Bank, person: Holder, deposit: str, wallet: str, amount: str, key: DpopKey
) -> str:
    """``person`` approves a top-up of their wallet; ``bank`` redeems the code with DPoP."""
    entry = {
        "type": "funding",
        "direction": "deposit_to_wallet",
        "instructed_amount": {"currency": "JPY", "amount": amount},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }
    pkce = Pkce.generate()
    code = person.decide(person.open(bank.authorization_url([entry], pkce)), "approve")["code"]
    token: str = bank.rp.redeem(code, pkce.verifier, dpop=bank.rp.proof(key, "/token")).json()[
        "access_token"
    ]
    return token


def test_ledger_executes_a_service_approved_funding_exactly_once(
    server: RunningServer, payments: Payments, bank: Bank, ledger: Ledger
) -> None:
    taro, deposit, wallet, link_id = linked_accounts(server, payments, bank)
    key = DpopKey()
    token = funding_token(bank, taro, deposit, wallet, "20000", key)
    instruction = top_up(deposit, wallet, "20000")
    with pytest.raises(LedgerRefusal) as caught:
        ledger.fund(token, key, top_up(deposit, wallet, "200000"))
    assert caught.value.reason == "amount_mismatch"
    with pytest.raises(LedgerRefusal) as caught:  # the transfer endpoint: not a transfer token
        ledger.authorize(
            token,
            key,
            TransferInstruction(
                amount="20000", currency="JPY", debtor_account=deposit, creditor_account=wallet
            ),
        )
    assert caught.value.reason == "not_a_transfer_token"

    approved = ledger.fund(token, key, instruction)
    assert (approved.debtor_account, approved.creditor_account) == (deposit, wallet)
    assert approved.link_id == link_id
    assert approved.anchor_set == JP_SET
    assert approved.client_id == payments.bank.client_id
    with pytest.raises(LedgerRefusal) as caught:
        ledger.fund(token, key, instruction)
    assert caught.value.reason == "token_used"


def test_ledger_refuses_a_funding_token_whose_link_was_removed(
    server: RunningServer, payments: Payments, bank: Bank, ledger: Ledger
) -> None:
    taro, deposit, wallet, link_id = linked_accounts(server, payments, bank)
    key = DpopKey()
    token = funding_token(bank, taro, deposit, wallet, "20000", key)
    assert bank.api("DELETE", f"/links/{link_id}").status_code == 204
    with pytest.raises(LedgerRefusal) as caught:
        ledger.fund(token, key, top_up(deposit, wallet, "20000"))
    assert caught.value.reason == "token_revoked", caught.value.log_detail
