"""Issue 12, funding over HTTP, on SQLite and PostgreSQL: a holder moves money between their own
deposit account and CBDC wallet over their active link (払出・受入), in either direction, under
the anchor set's funding rules (docs/POLICY.md "Funding"); the token carries the concrete
movement with the link it goes over; a movement debiting an account another intermediary holds
needs that intermediary's approval of the link (``PUT /links/{id}/approval``); removing the link
or withdrawing the approval ends the grants that rely on it.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from support.ecosystem import Party
from support.html import parse
from support.payments import (
    JP_HIGH,
    JP_SET,
    JP_SUBSTANTIAL,
    Bank,
    Holder,
    Payments,
    decision_entries,
    link,
    transfer,
)
from support.rp import Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.clock import SystemClock


def funding(
    direction: str, deposit: str, wallet: str, amount: str, currency: str = "JPY"
) -> dict[str, Any]:
    return {
        "type": "funding",
        "direction": direction,
        "instructed_amount": {"currency": currency, "amount": amount},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }


@pytest.fixture
def bank_b_party() -> Party:
    return Party("wallet-provider")


@pytest.fixture
def payments(bank_b_party: Party) -> Payments:
    """The issue 4 ecosystem with a wallet provider as a second intermediary."""
    return Payments().add_intermediary(
        bank_b_party, {"en": "Wallet Provider", "ja": "ウォレット事業者"}
    )


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


@pytest.fixture
def provider(server: RunningServer, payments: Payments, bank_b_party: Party) -> Bank:
    return Bank(server, payments, bank_b_party)


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def at_consent(person: Holder, url: str, anchor_id: str = JP_HIGH) -> Any:
    page = person.open(url)
    if any(form.action.endswith("/consent") for form in parse(page.text).forms):
        return page
    return person.log_in(page, anchor_id)


def approve(bank: Bank, person: Holder, details: list[dict[str, Any]]) -> dict[str, Any]:
    """``person`` approves ``bank``'s request for ``details``: the token response."""
    pkce = Pkce.generate()
    consent = at_consent(person, bank.authorization_url(details, pkce))
    answer = person.decide(consent, "approve")
    assert "code" in answer, answer
    return bank.redeem(answer["code"], pkce)


def refused(bank: Bank, person: Holder, details: list[dict[str, Any]]) -> str:
    """``person`` tries to approve ``bank``'s request for ``details``: the policy's reason."""
    consent = at_consent(person, bank.authorization_url(details, Pkce.generate()))
    page = parse(consent.text)
    assert not any(("decision", "approve") in f.buttons for f in page.forms), page.text
    answer = person.decide(consent, "deny")
    description = answer["error_description"]
    assert description.startswith("denied by policy: "), description
    return str(description.removeprefix("denied by policy: "))


def linked(bank: Bank, person: Holder, name: str) -> tuple[str, str, str]:
    """``bank`` registers a deposit account and a wallet of ``person`` and they link them."""
    deposit = bank.register(f"{name}-deposit", "bank_deposit", f"{name} savings")
    wallet = bank.register(f"{name}-wallet", "cbdc_wallet", f"{name} wallet")
    approve(bank, person, [link(deposit, wallet)])
    [row] = [
        x for x in bank.api("GET", "/links").json()["links"] if x["deposit_account"] == deposit
    ]
    return deposit, wallet, str(row["link_id"])


def ledger_view(server: RunningServer, payments: Payments, token: str) -> dict[str, Any]:
    ledger = RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")
    response = ledger.post("/introspect", {"token": token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_holder_tops_up_their_wallet_from_their_deposit_account(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, link_id = linked(bank, taro, "taro")

    tokens = approve(bank, taro, [funding("deposit_to_wallet", deposit, wallet, "20000")])
    granted = funding("deposit_to_wallet", deposit, wallet, "20000") | {"link_id": link_id}
    access = claims(tokens["access_token"])
    assert access["authorization_details"] == [granted]  # the concrete movement and its link
    assert tokens["authorization_details"] == [granted]
    assert access["anchor_set"] == JP_SET
    assert access["exp"] - access["iat"] <= 60  # one movement, now: short-lived
    assert "refresh_token" not in tokens
    assert [(e.result, e.reason) for e in decision_entries(server)][-1] == ("allowed", "allowed")

    # And back: the sweep from the wallet to the deposit account.
    tokens = approve(bank, taro, [funding("wallet_to_deposit", deposit, wallet, "5000")])
    assert claims(tokens["access_token"])["authorization_details"][0]["direction"] == (
        "wallet_to_deposit"
    )


def test_funding_names_an_active_link_of_the_holders_own_accounts(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    hanako = Holder(server, payments, "hanako")
    deposit, wallet, _ = linked(bank, taro, "taro")
    h_deposit, h_wallet, _ = linked(bank, hanako, "hanako")
    # Not linked to each other: Taro's deposit and Taro's second wallet.
    lone_wallet = bank.register("taro-wallet-2", "cbdc_wallet", "taro second wallet")
    approve(bank, taro, [link(deposit, lone_wallet)])
    # Taro unlinks them himself: both stay bound to him (the bank's DELETE would also release
    # the wallet that link bound, and the refusal would be account_not_bound).
    approve(bank, taro, [link(deposit, lone_wallet, action="unlink")])
    assert not any(
        x["wallet_account"] == lone_wallet for x in bank.api("GET", "/links").json()["links"]
    )

    assert refused(bank, taro, [funding("deposit_to_wallet", deposit, lone_wallet, "100")]) == (
        "link_not_found"
    )
    # Hanako's accounts are not Taro's to move, whichever way.
    assert refused(bank, taro, [funding("deposit_to_wallet", h_deposit, h_wallet, "100")]) == (
        "holder_mismatch"
    )
    # A link id that is not the active link of the pair is refused as no link.
    stale = funding("deposit_to_wallet", deposit, wallet, "100") | {"link_id": "lnk_" + "x" * 22}
    assert refused(bank, taro, [stale]) == "link_not_found"


def _link_of(bank: Bank, deposit: str, wallet: str) -> str:
    rows = bank.api("GET", "/links").json()["links"]
    [row] = [x for x in rows if (x["deposit_account"], x["wallet_account"]) == (deposit, wallet)]
    return str(row["link_id"])


def test_funding_follows_its_own_limits_and_step_up_not_the_transfer_ones(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """jp-cbdc (support/payments.py): funding up to 500,000 JPY a movement, a fresh high login
    above 200,000; transfers up to 1,000,000 with a step-up above 100,000."""
    taro = Holder(server, payments, "taro")
    deposit, wallet, _ = linked(bank, taro, "taro-s")
    # Logged in through the substantial anchor: 150,000 is fine for funding (it would need a
    # step-up as a transfer).
    taro_sub = Holder(server, payments, "taro-sub")
    s_deposit = bank.register("sub-deposit", "bank_deposit", "sub savings")
    s_wallet = bank.register("sub-wallet", "cbdc_wallet", "sub wallet")
    pkce = Pkce.generate()
    consent = taro_sub.log_in(
        taro_sub.open(bank.authorization_url([link(s_deposit, s_wallet)], pkce)), JP_SUBSTANTIAL
    )
    bank.redeem(taro_sub.decide(consent, "approve")["code"], pkce)
    tokens = approve(bank, taro_sub, [funding("deposit_to_wallet", s_deposit, s_wallet, "150000")])
    assert tokens["access_token"]
    consent = at_consent(
        taro_sub,
        bank.authorization_url(
            [funding("deposit_to_wallet", s_deposit, s_wallet, "250000")], Pkce.generate()
        ),
    )
    # Above 200,000 the substantial login is not enough: the page offers a step-up, and a
    # fresh high login through the same browser allows it.
    page = parse(consent.text)
    assert any(form.action.endswith("/step-up") for form in page.forms), page.text
    assert not any(("decision", "approve") in f.buttons for f in page.forms)
    stepped = taro_sub.log_in(taro_sub.step_up(consent), JP_HIGH)
    assert any(("decision", "approve") in f.buttons for f in parse(stepped.text).forms), parse(
        stepped.text
    ).text
    assert refused(bank, taro, [funding("deposit_to_wallet", deposit, wallet, "600000")]) == (
        "limit_exceeded"
    )
    assert refused(bank, taro, [funding("deposit_to_wallet", deposit, wallet, "10", "EUR")]) == (
        "currency_not_allowed"
    )


def test_removing_the_link_ends_the_funding_grant(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, link_id = linked(bank, taro, "taro")
    tokens = approve(bank, taro, [funding("deposit_to_wallet", deposit, wallet, "1000")])
    seen = ledger_view(server, payments, tokens["access_token"])
    assert seen["active"] and seen["authorization_details"][0]["link_id"] == link_id
    assert bank.api("DELETE", f"/links/{link_id}").status_code == 204
    assert not ledger_view(server, payments, tokens["access_token"])["active"]


def test_debiting_an_account_another_intermediary_holds_needs_its_approval_of_the_link(
    server: RunningServer, payments: Payments, bank: Bank, provider: Bank
) -> None:
    """Bank A holds Taro's deposit account, the wallet provider his wallet; the provider's
    request linked them, so the provider approved the link and bank A has not."""
    taro = Holder(server, payments, "taro")
    a_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    a_wallet = bank.register("taro-a-wallet", "cbdc_wallet", "Taro A wallet")
    approve(bank, taro, [link(a_deposit, a_wallet)])  # binds bank A's deposit account to Taro
    p_wallet = provider.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    approve(provider, taro, [link(a_deposit, p_wallet)])
    link_id = _link_of(provider, a_deposit, p_wallet)
    [row] = [x for x in provider.api("GET", "/links").json()["links"] if x["link_id"] == link_id]
    assert row["approved_by_you"] is True
    [row] = [x for x in bank.api("GET", "/links").json()["links"] if x["link_id"] == link_id]
    assert row["approved_by_you"] is False

    # The provider sweeps the wallet into the deposit account: it debits its own account.
    approve(provider, taro, [funding("wallet_to_deposit", a_deposit, p_wallet, "1000")])
    # Reverse waterfall, asked by the provider: it debits bank A's account, not approved.
    reverse = [funding("deposit_to_wallet", a_deposit, p_wallet, "3000")]
    assert refused(provider, taro, reverse) == "debit_not_approved"
    # Bank A approves the link through its links API; now it is allowed.
    assert bank.api("PUT", f"/links/{link_id}/approval").status_code == 204
    assert bank.api("PUT", f"/links/{link_id}/approval").status_code == 204  # idempotent
    tokens = approve(provider, taro, reverse)
    assert ledger_view(server, payments, tokens["access_token"])["active"]
    # Bank A withdraws it: refused again, and the provider's live grant over the link ends.
    assert bank.api("DELETE", f"/links/{link_id}/approval").status_code == 204
    assert not ledger_view(server, payments, tokens["access_token"])["active"]
    assert refused(provider, taro, reverse) == "debit_not_approved"
    assert bank.api("DELETE", f"/links/{link_id}/approval").status_code == 404
    # Nobody approves a link that does not touch their accounts.
    hanako_bank = bank.api("PUT", "/links/lnk_nonexistent000000000000/approval")
    assert hanako_bank.status_code == 404


def test_funding_and_transfers_in_one_request_rely_on_one_set(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """A top-up and a transfer paid from it in one request (reverse waterfall): both are
    decided, one token carries both."""
    taro = Holder(server, payments, "taro")
    hanako = Holder(server, payments, "hanako")
    deposit, wallet, link_id = linked(bank, taro, "taro")
    _, h_wallet, _ = linked(bank, hanako, "hanako")
    tokens = approve(
        bank,
        taro,
        [
            funding("deposit_to_wallet", deposit, wallet, "3000"),
            transfer(wallet, h_wallet, "3000"),
        ],
    )
    details = claims(tokens["access_token"])["authorization_details"]
    assert [d["type"] for d in details] == ["funding", "value_transfer"]
    assert details[0]["link_id"] == link_id
