"""Issue 10, item 4 over HTTP, on SQLite and PostgreSQL: accounts are bound to the right person.
Two intermediaries (the test bank A and bank B) register accounts; only the intermediary that
registered an account binds it, through its own authorization request; a cross-intermediary
link needs the other intermediary's account already bound to the person; a transfer debits
another intermediary's account only over a link to the requester's own; and KYC attributes
registered with an account (one keyed digest) must match the identity that binds it where the
anchor set's ``account_kyc`` asks for it.

SECURITY-CASES.md ("Holders, sessions and cross-device logins"):
- "an account registered by intermediary A named in intermediary B's request → never bound by B"
  (:func:`test_bank_b_naming_bank_a_unbound_accounts_binds_nothing`,
  :func:`test_a_cross_intermediary_link_with_an_unbound_account_is_refused`);
- "an account whose registered KYC attributes do not match the binding identity (where the
  policy asks) → refused" (:func:`test_kyc_that_does_not_match_the_binding_identity_is_refused`,
  :func:`test_an_account_without_kyc_is_not_bound_where_the_policy_requires_it`).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from support.ecosystem import Party, WalletApp
from support.html import parse
from support.payments import (
    ANCHOR_SETS,
    JP_HIGH,
    JP_SET,
    Bank,
    Holder,
    Payments,
    decision_entries,
    link,
    transfer,
)
from support.rp import Pkce
from support.server import RunningServer

from trustanchor.services import anchor_set_admin
from trustanchor.storage.tables import accounts

# The claims a bank that registered KYC attributes asks the login to disclose.
KYC_CLAIMS = {"id_token": {"family_name": None, "given_name": None, "birthdate": None}}


@pytest.fixture
def bank_b_party() -> Party:
    return Party("bank-b")


@pytest.fixture
def payments(bank_b_party: Party) -> Payments:
    """The issue 4 ecosystem with a second intermediary, bank B, declared like bank A."""
    return Payments().add_intermediary(bank_b_party, {"en": "Bank B", "ja": "B 銀行"})


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


@pytest.fixture
def bank_b(server: RunningServer, payments: Payments, bank_b_party: Party) -> Bank:
    return Bank(server, payments, bank_b_party)


def require_kyc(server: RunningServer, account_kyc: str = "required") -> None:
    """The operator sets jp-cbdc's ``account_kyc`` (the admin API's path)."""
    policy = dict(ANCHOR_SETS[0]["policy"]) | {"account_kyc": account_kyc}
    anchor_set_admin.replace_policy(
        server.services.anchors, JP_SET, policy, at=server.services.clock.now()
    )


def accounts_of(bank: Bank) -> dict[str, dict[str, Any]]:
    return {a["account_id"]: a for a in bank.api("GET", "/accounts").json()["accounts"]}


def refused_at_consent(page: Any, text: str) -> None:
    parsed = parse(page.text)
    assert text in parsed.text, parsed.text
    assert not any(("decision", "approve") in f.buttons for f in parsed.forms)


def at_consent(person: Holder, url: str) -> Any:
    """``person`` opens ``url`` and logs in through JP_HIGH unless their SSO session takes them
    to the consent page directly: the consent page."""
    page = person.open(url)
    if any(form.action.endswith("/consent") for form in parse(page.text).forms):
        return page
    return person.log_in(page, JP_HIGH)


def link_at(bank: Bank, person: Holder, deposit: str, wallet: str, **options: Any) -> Any:
    """The consent page of ``bank``'s request to link ``deposit`` and ``wallet``."""
    return at_consent(
        person, bank.authorization_url([link(deposit, wallet)], Pkce.generate(), **options)
    )


# -- who binds ---------------------------------------------------------------------------------


def test_bank_b_naming_bank_a_unbound_accounts_binds_nothing(
    server: RunningServer, payments: Payments, bank: Bank, bank_b: Bank
) -> None:
    deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    mallory = Holder(server, payments, "mallory")

    consent = link_at(bank_b, mallory, deposit, wallet)
    refused_at_consent(consent, "held with another bank or wallet provider")
    # Bank A's labels for accounts that are not Mallory's are not shown to her: ids only.
    text = parse(consent.text).text
    assert "Taro savings" not in text and "Taro wallet" not in text
    assert "…" + deposit[-4:] in text  # the masked reference (services/payee.py)
    answer = mallory.decide(consent, "approve")  # a forged approval changes nothing
    assert (answer["error"], answer["error_description"]) == (
        "access_denied",
        "denied by policy: account_registered_elsewhere",
    )
    seen = accounts_of(bank)
    assert not seen[deposit]["bound"] and not seen[wallet]["bound"]
    assert seen[deposit]["holder"] is None and seen[wallet]["holder"] is None
    assert bank.api("GET", "/links").json()["links"] == []
    assert [(e.result, e.reason) for e in decision_entries(server)] == [
        ("denied", "account_registered_elsewhere")
    ]

    # The accounts are still free for their own bank and their own holder.
    taro = Holder(server, payments, "taro")
    pkce = Pkce.generate()
    consent = at_consent(taro, bank.authorization_url([link(deposit, wallet)], pkce))
    bank.redeem(taro.decide(consent, "approve")["code"], pkce)
    seen = accounts_of(bank)
    assert seen[deposit]["bound"] and seen[wallet]["bound"]


def test_a_cross_intermediary_link_with_an_unbound_account_is_refused(
    server: RunningServer, payments: Payments, bank: Bank, bank_b: Bank
) -> None:
    a_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    b_wallet = bank_b.register("taro-b-wallet", "cbdc_wallet", "Taro B wallet")
    taro = Holder(server, payments, "taro")

    consent = link_at(bank_b, taro, a_deposit, b_wallet)
    refused_at_consent(consent, "held with another bank or wallet provider")
    answer = taro.decide(consent, "deny")
    assert answer["error_description"] == "denied by policy: account_registered_elsewhere"
    assert not accounts_of(bank)[a_deposit]["bound"]
    assert not accounts_of(bank_b)[b_wallet]["bound"]

    # Once bank A bound its deposit account to Taro, bank B may link its wallet to it.
    a_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    pkce = Pkce.generate()
    consent = at_consent(taro, bank.authorization_url([link(a_deposit, a_wallet)], pkce))
    bank.redeem(taro.decide(consent, "approve")["code"], pkce)
    pkce = Pkce.generate()
    consent = at_consent(taro, bank_b.authorization_url([link(a_deposit, b_wallet)], pkce))
    tokens = bank_b.redeem(taro.decide(consent, "approve")["code"], pkce)
    assert tokens["authorization_details"] == [link(a_deposit, b_wallet)]
    assert accounts_of(bank_b)[b_wallet]["bound"]


# -- who debits --------------------------------------------------------------------------------


def test_a_transfer_debiting_another_intermediarys_account_is_refused(
    server: RunningServer, payments: Payments, bank: Bank, bank_b: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    a_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    a_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    taro.decide(link_at(bank, taro, a_deposit, a_wallet), "approve")
    hanako = Holder(server, payments, "hanako")
    h_deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    h_wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    hanako.decide(link_at(bank, hanako, h_deposit, h_wallet), "approve")
    decided_before = len(decision_entries(server))

    consent = at_consent(
        taro, bank_b.authorization_url([transfer(a_wallet, h_wallet, "5000")], Pkce.generate())
    )
    refused_at_consent(consent, "is not linked with one of your accounts here")
    answer = taro.decide(consent, "approve")
    assert (answer["error"], answer["error_description"]) == (
        "access_denied",
        "denied by policy: debtor_account_elsewhere",
    )
    assert "code" not in answer
    assert [(e.result, e.reason) for e in decision_entries(server)[decided_before:]] == [
        ("denied", "debtor_account_elsewhere")
    ]

    # Linked to a wallet of bank B (by bank B's request), Taro's bank A deposit account becomes
    # debitable by bank B only once bank A approves debits over that link; his bank A wallet,
    # linked to nothing of bank B's, still is not.
    b_wallet = bank_b.register("taro-b-wallet", "cbdc_wallet", "Taro B wallet")
    taro.decide(link_at(bank_b, taro, a_deposit, b_wallet), "approve")
    [link_row] = [
        x for x in bank.api("GET", "/links").json()["links"] if x["wallet_account"] == b_wallet
    ]
    debit_a = [transfer(a_deposit, h_wallet, "5000")]
    answer = taro.decide(
        at_consent(taro, bank_b.authorization_url(debit_a, Pkce.generate())), "approve"
    )
    assert answer["error_description"] == "denied by policy: debtor_account_elsewhere"
    assert bank.api("PUT", f"/links/{link_row['link_id']}/approval").status_code == 204
    pkce = Pkce.generate()
    consent = at_consent(taro, bank_b.authorization_url(debit_a, pkce))
    tokens = bank_b.redeem(taro.decide(consent, "approve")["code"], pkce)
    assert tokens["authorization_details"] == debit_a
    # Bank A withdraws its approval: bank B's transfers from it are refused again.
    assert bank.api("DELETE", f"/links/{link_row['link_id']}/approval").status_code == 204
    answer = taro.decide(
        at_consent(taro, bank_b.authorization_url(debit_a, Pkce.generate())), "approve"
    )
    assert answer["error_description"] == "denied by policy: debtor_account_elsewhere"
    consent = at_consent(
        taro, bank_b.authorization_url([transfer(a_wallet, h_wallet, "5000")], Pkce.generate())
    )
    answer = taro.decide(consent, "approve")
    assert answer["error_description"] == "denied by policy: debtor_account_elsewhere"


# -- KYC ---------------------------------------------------------------------------------------


def test_kyc_registered_and_matching_despite_width_and_case_binds(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    require_kyc(server)
    kyc = {"family_name": "ＹＡＭＡＤＡ", "given_name": "ｔｅｓｔ", "birthdate": "1990-04-01"}
    deposit = bank.register("yamada-deposit", "bank_deposit", "Yamada savings", kyc)
    wallet = bank.register("yamada-wallet", "cbdc_wallet", "Yamada wallet", kyc)
    yamada = Holder(server, payments, "yamada")  # family_name "yamada", given_name "Test"

    consent = link_at(bank, yamada, deposit, wallet, claims=KYC_CLAIMS)
    assert "Link your deposit account “Yamada savings”" in parse(consent.text).text
    answer = yamada.decide(consent, "approve")
    assert "code" in answer, answer
    seen = accounts_of(bank)
    assert seen[deposit]["bound"] and seen[wallet]["bound"]
    assert seen[deposit]["kyc_claims"] == ["birthdate", "family_name", "given_name"]
    with server.services.db.reader() as conn:
        stored = conn.execute(select(accounts.c.kyc).where(accounts.c.id == deposit)).one()
    assert "YAMADA" not in str(stored.kyc) and "yamada" not in str(stored.kyc).lower()
    assert "1990" not in str(stored.kyc)

    # Bound with a match, the accounts move value under the policy that requires KYC.
    pkce = Pkce.generate()
    consent = at_consent(yamada, bank.authorization_url([transfer(deposit, wallet, "5000")], pkce))
    assert "code" in yamada.decide(consent, "approve")


def test_the_wallet_is_asked_for_the_claims_the_registered_kyc_needs(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """The bank registered KYC attributes but asks for no profile claims: the service's request
    to the wallet still asks for the names and birth date, so the comparison can be made."""
    require_kyc(server)
    kyc = {"family_name": "Yamada", "given_name": "Test", "birthdate": "1990-04-01"}
    deposit = bank.register("yamada-deposit", "bank_deposit", "Yamada savings", kyc)
    wallet = bank.register("yamada-wallet", "cbdc_wallet", "Yamada wallet", kyc)
    yamada = Holder(server, payments, "yamada")
    # scope "openid", no claims requested by the bank
    login = yamada.open(bank.authorization_url([link(deposit, wallet)], Pkce.generate()))
    page = yamada.browser.follow(yamada.browser.submit(login.text, "/wallet", anchor=JP_HIGH))
    links = parse(page.text).links
    phone = WalletApp(server, yamada.wallet, yamada.credential(JP_HIGH))
    request = phone.request_object(links["same-device"].replace("&amp;", "&"))
    [query] = request["dcql_query"]["credentials"]
    asked = {path[-1] for claim in query["claims"] for path in [claim["path"]]}
    assert {"family_name", "given_name", "birthdate"} <= asked
    assert phone.respond(request).status_code == 200
    consent = yamada.open(server.url(links["continue"]))
    assert "code" in yamada.decide(consent, "approve")
    seen = accounts_of(bank)
    assert seen[deposit]["bound"] and seen[wallet]["bound"]


def test_kyc_that_does_not_match_the_binding_identity_is_refused(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    require_kyc(server)
    kyc = {"family_name": "Suzuki", "given_name": "Test"}  # the holder is "yamada"
    deposit = bank.register("yamada-deposit", "bank_deposit", "Yamada savings", kyc)
    wallet = bank.register("yamada-wallet", "cbdc_wallet", "Yamada wallet", kyc)
    yamada = Holder(server, payments, "yamada")

    consent = link_at(bank, yamada, deposit, wallet, claims=KYC_CLAIMS)
    refused_at_consent(consent, "does not match the identity you logged in with")
    answer = yamada.decide(consent, "approve")
    assert answer["error_description"] == "denied by policy: kyc_mismatch"
    seen = accounts_of(bank)
    assert not seen[deposit]["bound"] and not seen[wallet]["bound"]
    assert [(e.result, e.reason, e.anchor_set_id) for e in decision_entries(server)] == [
        ("denied", "kyc_mismatch", JP_SET)
    ]

    # Registered attributes must match under the default (if_registered) too.
    require_kyc(server, "if_registered")
    consent = link_at(bank, yamada, deposit, wallet, claims=KYC_CLAIMS)
    assert yamada.decide(consent, "approve")["error_description"] == (
        "denied by policy: kyc_mismatch"
    )


def test_an_account_without_kyc_is_not_bound_where_the_policy_requires_it(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    require_kyc(server)
    deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    taro = Holder(server, payments, "taro")

    consent = link_at(bank, taro, deposit, wallet, claims=KYC_CLAIMS)
    refused_at_consent(consent, "has not registered the identity details this account needs")
    answer = taro.decide(consent, "approve")
    assert answer["error_description"] == "denied by policy: kyc_not_registered"
    seen = accounts_of(bank)
    assert not seen[deposit]["bound"] and not seen[wallet]["bound"]


# -- registering KYC attributes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kyc", "message"),
    [
        ("Yamada", "kyc must be a JSON object"),
        ({"family_name": "Yamada"}, "kyc: given_name is required"),
        ({"family_name": "Yamada", "given_name": "Taro", "nickname": "T"}, "unknown claim"),
        ({"family_name": "Yamada", "given_name": 7}, "given_name must be a string"),
        ({"family_name": "Y" * 101, "given_name": "Taro"}, "family_name must be a string"),
        ({"family_name": "   ", "given_name": "Taro"}, "family_name must be a string"),
        ({"family_name": "Ya\u0000mada", "given_name": "Taro"}, "family_name must be a string"),
        ({"family_name": "Yamada", "given_name": "Taro", "birthdate": "1990-02-30"}, "birthdate"),
        ({"family_name": "Yamada", "given_name": "Taro", "birthdate": "19900401"}, "birthdate"),
    ],
)
def test_kyc_attributes_are_strict(bank: Bank, kyc: Any, message: str) -> None:
    response = bank.post_account(
        {"reference": "r-1", "kind": "cbdc_wallet", "label": "w", "kyc": kyc}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert message in response.json()["error_description"]
    assert bank.api("GET", "/accounts").json()["accounts"] == []


def test_registering_again_with_other_kyc_attributes_is_a_conflict(bank: Bank) -> None:
    kyc = {"family_name": "Yamada", "given_name": "Taro"}
    first = bank.register("r-1", "cbdc_wallet", "w", kyc)
    same = bank.post_account(
        {
            "reference": "r-1",
            "kind": "cbdc_wallet",
            "label": "w",
            "kyc": {"family_name": "ｙａｍａｄａ", "given_name": "TARO"},  # the same, normalised
        }
    )
    assert (same.status_code, same.json()["account_id"]) == (200, first)
    for other in (
        {"family_name": "Suzuki", "given_name": "Taro"},
        kyc | {"birthdate": "1990-04-01"},
    ):
        response = bank.post_account(
            {"reference": "r-1", "kind": "cbdc_wallet", "label": "w", "kyc": other}
        )
        assert response.status_code == 409, response.text
    without = bank.post_account({"reference": "r-2", "kind": "cbdc_wallet", "label": "w"})
    assert without.json()["kyc_claims"] is None
    response = bank.post_account(
        {"reference": "r-2", "kind": "cbdc_wallet", "label": "w", "kyc": kyc}
    )
    assert response.status_code == 409, response.text
