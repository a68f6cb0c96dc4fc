"""Dynamic linking over HTTP, on SQLite and PostgreSQL (issue 12, docs/DYNAMIC-LINKING.md).

In ``jp-cbdc`` (support/payments.py) the policy lists ``value_transfer`` and ``funding`` in
``dynamic_linking`` (``funding`` covers standing authorizations of funding too):
a wallet login for a transfer request gets the transfer as OpenID4VP ``transaction_data`` in the
signed request object, and the wallet's Key Binding JWT signs its hash. The wallet side here is
the independent ``sd-jwt`` package and jwcrypto (tests/support/credentials.py); the hashes are
computed with the standard library, never with trustanchor's code."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from support.ecosystem import CREDENTIAL_ID, WalletApp
from support.html import parse
from support.payments import (
    ANCHOR_SETS,
    EU_HIGH,
    JP_HIGH,
    JP_SET,
    JP_SUBSTANTIAL,
    Bank,
    Holder,
    Payments,
    link,
    transfer,
)
from support.rp import DpopKey, Pkce
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.domain.identity import Authentication
from trustanchor.storage.tables import audit_leaves, interactions
from trustanchor.web.i18n import catalog

SETS = tuple(
    {**s, "policy": {**s["policy"], "dynamic_linking": ["value_transfer", "funding"]}}
    if s["id"] == JP_SET
    else s
    for s in ANCHOR_SETS
)
VALUE_TRANSFER = "urn:trustanchor:transaction:value_transfer:1"
FUNDING = "urn:trustanchor:transaction:funding:1"
STANDING_FUNDING = "urn:trustanchor:transaction:standing_funding:1"


@pytest.fixture
def server(tmp_path: Path, database_url: str, payments: Payments) -> Iterator[RunningServer]:
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[a.declaration() for a in payments.anchors.values()],
        clients=payments.clients(),
    )
    with running_server(dataclasses.replace(settings, anchor_sets=SETS)) as running:
        yield running


@pytest.fixture
def bank(server: RunningServer, payments: Payments) -> Bank:
    return Bank(server, payments)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sha256(item: str) -> str:
    """OpenID4VP 1.0 appendix B.3.3.1: over the string as received, not decoded."""
    return b64url(hashlib.sha256(item.encode("ascii")).digest())


def decoded(item: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(item + "=" * (-len(item) % 4)))


def digest(entry: dict[str, Any]) -> str:
    """The operation digest: sha-256 of the entry's canonical JSON (contract, section 3)."""
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url(hashlib.sha256(text.encode("utf-8")).digest())


@dataclasses.dataclass
class WalletLogin:
    request: dict[str, Any]  # the request object's claims, as the phone read them
    answer: requests.Response  # our response endpoint's answer to the phone
    page: requests.Response  # where the browser's "continue" leads


def log_in(
    person: Holder,
    page: requests.Response,
    anchor_id: str,
    *,
    kb_claims: Any = None,
    error: str | None = None,
) -> WalletLogin:
    """Like Holder.log_in, but the phone signs what ``kb_claims(request)`` returns into its Key
    Binding JWT (default: the hashes of every transaction data element, with sha-256), or
    answers ``error``."""
    server = person.server
    wallet_page = person.browser.follow(
        person.browser.submit(page.text, "/wallet", anchor=anchor_id)
    )
    assert wallet_page.status_code == 200, wallet_page.text
    links = parse(wallet_page.text).links
    sd_jwt = person.wallet.select(person.credential(anchor_id))
    phone = WalletApp(server, person.wallet, sd_jwt)
    request = phone.request_object(links["same-device"].replace("&amp;", "&"))
    if error is not None:
        form = {"error": error, "state": request["state"]}
    else:
        if kb_claims is None:
            items = request.get("transaction_data", [])
            claims = (
                {
                    "transaction_data_hashes": [sha256(i) for i in items],
                    "transaction_data_hashes_alg": "sha-256",
                }
                if items
                else {}
            )
        else:
            claims = kb_claims(request)
        presentation = person.wallet.bind(
            sd_jwt,
            nonce=request["nonce"],
            aud=request["client_id"],
            iat=int(time.time()),
            claims=claims,
        )
        form = {"vp_token": json.dumps({CREDENTIAL_ID: [presentation]}), "state": request["state"]}
    answer = requests.post(request["response_uri"], data=form, timeout=10)
    # The wallet on this browser's phone sends the person back (same-device return) when it
    # took the answer; otherwise the browser continues by the status poll's link.
    back = answer.json().get("redirect_uri") if answer.status_code == 200 else None
    return WalletLogin(request, answer, person.open(back or server.url(links["continue"])))


def linked(
    server: RunningServer, payments: Payments, bank: Bank, subject: str
) -> tuple[Holder, str]:
    """A person with a linked deposit account and wallet (a link needs no transaction data)."""
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    login = log_in(person, page, JP_HIGH)
    assert "transaction_data" not in login.request  # not a transfer: nothing to sign
    bank.redeem(person.decide(login.page, "approve")["code"], pkce)
    return person, wallet, deposit


def words(page: requests.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def authentications(server: RunningServer) -> list[Authentication]:
    with server.services.db.reader() as conn:
        rows = conn.execute(
            select(interactions.c.authentication).where(interactions.c.state == "consent")
        ).all()
    return [Authentication.from_json(row.authentication) for row in rows]


def failed_logins(server: RunningServer) -> list[str]:
    services = server.services
    services.audit.integrate_pending()
    with services.db.reader() as conn:
        rows = conn.execute(select(audit_leaves.c.entry).order_by(audit_leaves.c.tree_index))
        entries = [json.loads(row.entry) for row in rows]
    return [e["reason"] for e in entries if e["kind"] == "login" and e["outcome"] == "failed"]


@pytest.fixture
def payment(
    server: RunningServer, payments: Payments, bank: Bank
) -> tuple[Holder, dict[str, Any], requests.Response, str]:
    """Taro about to log in for a 5,000 JPY transfer to Hanako: (taro, entry, page, creditor)."""
    _, taro_wallet, _ = linked(server, payments, bank, "taro")
    _, hanako_wallet, _ = linked(server, payments, bank, "hanako")
    entry = transfer(taro_wallet, hanako_wallet, "5000")
    taro = Holder(server, payments, "taro")  # another browser: no SSO session, a fresh login
    page = taro.open(bank.authorization_url([entry], Pkce.generate()))
    return taro, entry, page, hanako_wallet


def test_the_request_object_carries_the_transfer_and_a_signed_presentation_records_it(
    server: RunningServer, payment: tuple[Holder, dict[str, Any], requests.Response, str]
) -> None:
    taro, entry, page, hanako_wallet = payment
    login = log_in(taro, page, JP_HIGH)

    [item] = login.request["transaction_data"]
    assert (
        decoded(item)
        == {
            "type": VALUE_TRANSFER,
            "credential_ids": [CREDENTIAL_ID],
            "transaction_data_hashes_alg": ["sha-256"],
            "amount": "5000",
            "currency": "JPY",
            "creditor": {
                "label": "hanako wallet",  # what the payee's bank registered
                "intermediary": "Test Bank",
                "account_reference": "…" + hanako_wallet[-4:],
            },
        }
    )
    assert [q["id"] for q in login.request["dcql_query"]["credentials"]] == [CREDENTIAL_ID]
    assert login.answer.status_code == 200, login.answer.text
    assert "redirect_uri" in login.answer.json()
    [authentication] = authentications(server)
    assert authentication.signed_operations == (digest(entry),)
    consent = words(login.page)
    assert "Send JPY 5,000" in consent and "Review and allow" in consent


@pytest.mark.parametrize(
    ("kb_claims", "reason"),
    [
        (lambda r: {}, "transaction_data_not_signed"),
        (
            lambda r: {
                "transaction_data_hashes": [sha256(r["transaction_data"][0] + "A")],
                "transaction_data_hashes_alg": "sha-256",
            },
            "transaction_data_mismatch",
        ),
        (
            lambda r: {
                "transaction_data_hashes": [sha256(r["transaction_data"][0]), sha256("other")],
                "transaction_data_hashes_alg": "sha-256",
            },
            "transaction_data_mismatch",
        ),
        (
            lambda r: {"transaction_data_hashes": [sha256(r["transaction_data"][0])]},
            "transaction_data_alg_unsupported",
        ),
        (
            lambda r: {
                "transaction_data_hashes": [
                    b64url(hashlib.sha512(r["transaction_data"][0].encode()).digest())
                ],
                "transaction_data_hashes_alg": "sha-512",
            },
            "transaction_data_alg_unsupported",
        ),
        (
            lambda r: {"transaction_data_hashes": [], "transaction_data_hashes_alg": "sha-256"},
            "transaction_data_malformed",
        ),
    ],
    ids=["missing", "wrong", "extra", "alg-missing", "alg-not-asked", "empty"],
)
def test_a_presentation_that_does_not_sign_exactly_the_transfer_fails_the_login(
    server: RunningServer,
    payment: tuple[Holder, dict[str, Any], requests.Response, str],
    kb_claims: Any,
    reason: str,
) -> None:
    taro, _, page, _ = payment
    login = log_in(taro, page, JP_HIGH, kb_claims=kb_claims)
    assert login.answer.status_code == 400
    assert login.answer.json() == {"error": "invalid_request", "error_description": reason}
    assert authentications(server) == []  # no login: the page stays at the anchor list
    assert failed_logins(server)[-1] == reason
    assert catalog("en")[f"reasons.{reason}"] in words(login.page)  # the login page says why


def test_a_wallet_that_refuses_the_type_is_audited_as_such(
    server: RunningServer, payment: tuple[Holder, dict[str, Any], requests.Response, str]
) -> None:
    """OpenID4VP 1.0 section 8.5: ``invalid_transaction_data``, e.g. an unknown type."""
    taro, _, page, _ = payment
    login = log_in(taro, page, JP_HIGH, error="invalid_transaction_data")
    assert login.answer.status_code == 200  # a processed error response
    assert authentications(server) == []
    assert failed_logins(server) == ["wallet_refused_transaction_data"]
    assert catalog("en")["reasons.wallet_refused_transaction_data"] in words(login.page)


def test_no_transaction_data_where_the_anchors_sets_do_not_ask_for_it(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """eu-wallets does not list value_transfer in dynamic_linking: nothing is sent (a wallet
    must refuse a type it does not know), and hashes nobody asked for fail the login."""
    debtor = bank.register("pierre-wallet", "cbdc_wallet", "Pierre wallet")
    creditor = bank.register("marie-wallet", "cbdc_wallet", "Marie wallet")
    details = [transfer(debtor, creditor, "10.00", "EUR")]
    pierre = Holder(server, payments, "pierre")
    plain = log_in(pierre, pierre.open(bank.authorization_url(details, Pkce.generate())), EU_HIGH)
    assert "transaction_data" not in plain.request
    assert plain.answer.status_code == 200
    assert [a.signed_operations for a in authentications(server)] == [()]

    marie = Holder(server, payments, "marie")
    extra = log_in(
        marie,
        marie.open(bank.authorization_url(details, Pkce.generate())),
        EU_HIGH,
        kb_claims=lambda r: {"transaction_data_hashes": [sha256("x")]},
    )
    assert extra.answer.json()["error_description"] == "transaction_data_unexpected"
    assert failed_logins(server) == ["transaction_data_unexpected"]


def test_a_wallet_error_without_transaction_data_stays_a_wallet_error(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    person = Holder(server, payments, "jiro")
    deposit = bank.register("jiro-deposit", "bank_deposit", "Jiro savings")
    wallet = bank.register("jiro-wallet", "cbdc_wallet", "Jiro wallet")
    page = person.open(bank.authorization_url([link(deposit, wallet)], Pkce.generate()))
    log_in(person, page, JP_SUBSTANTIAL, error="invalid_transaction_data")
    assert failed_logins(server) == ["wallet_error"]


def test_an_sso_login_never_satisfies_dynamic_linking_a_signed_step_up_does(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """The consent-side gate (services/decisions.py with the policy's dynamic_linking): Taro's
    browser holds an SSO session from linking; the transfer needs a presentation made for it,
    so consent asks for a step-up, and the wallet login that signs the transfer satisfies it."""
    taro, taro_wallet, _ = linked(server, payments, bank, "taro")
    _, hanako_wallet, _ = linked(server, payments, bank, "hanako")
    entry = transfer(taro_wallet, hanako_wallet, "5000")
    pkce = Pkce.generate()
    page = taro.open(bank.authorization_url([entry], pkce))
    assert "Review and allow" not in words(page)
    assert parse(page.text).form_with("/step-up")  # the step-up, not a refusal
    login = log_in(taro, taro.step_up(page), JP_HIGH)
    assert login.answer.status_code == 200, login.answer.text
    assert "Review and allow" in words(login.page)
    tokens = bank.redeem(taro.decide(login.page, "approve")["code"], pkce)
    assert "access_token" in tokens


def test_a_funding_movement_is_signed_as_well(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    _, wallet, deposit = linked(server, payments, bank, "taro")
    entry = {
        "type": "funding",
        "direction": "deposit_to_wallet",
        "instructed_amount": {"currency": "JPY", "amount": "10000"},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }
    taro = Holder(server, payments, "taro")
    pkce = Pkce.generate()
    login = log_in(taro, taro.open(bank.authorization_url([entry], pkce)), JP_HIGH)
    [item] = login.request["transaction_data"]
    assert decoded(item) == {
        "type": FUNDING,
        "credential_ids": [CREDENTIAL_ID],
        "transaction_data_hashes_alg": ["sha-256"],
        "direction": "deposit_to_wallet",
        "amount": "10000",
        "currency": "JPY",
        "deposit_account_reference": "…" + deposit[-4:],
        "wallet_account_reference": "…" + wallet[-4:],
    }
    assert login.answer.status_code == 200, login.answer.text
    [authentication] = authentications(server)
    assert authentication.signed_operations == (digest(entry),)
    assert "Review and allow" in words(login.page)
    assert "access_token" in bank.redeem(taro.decide(login.page, "approve")["code"], pkce)


def test_a_transfer_to_an_unknown_account_gets_no_transaction_data(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """There are no words for a payee the service does not know: nothing is sent or signed,
    and the decision refuses the transfer as it would any unsigned one to an unknown account."""
    _, taro_wallet, _ = linked(server, payments, bank, "taro")
    unknown = "acc_" + "x" * 20
    taro = Holder(server, payments, "taro")
    page = taro.open(
        bank.authorization_url([transfer(taro_wallet, unknown, "5000")], Pkce.generate())
    )
    login = log_in(taro, page, JP_HIGH)
    assert "transaction_data" not in login.request
    assert login.answer.status_code == 200, login.answer.text
    assert [a.signed_operations for a in authentications(server)] == [()]
    assert "Review and allow" not in words(login.page)


def test_an_anchor_whose_wallets_sign_our_type_gets_it_where_no_set_requires_it(
    tmp_path: Path, database_url: str, payments: Payments
) -> None:
    """eu-wallets requires nothing, but the eu-pid anchor declares that its wallets sign
    value_transfer transaction data (``transaction_data`` in its sd_jwt_vc settings): the
    element is sent, checked, and recorded as signed; a missing hash fails the login as
    anywhere else."""
    anchors = []
    for party in payments.anchors.values():
        declaration = party.declaration()
        if party.id == EU_HIGH:
            declaration["sd_jwt_vc"]["transaction_data"] = ["value_transfer"]
        anchors.append(declaration)
    settings = test_settings(
        tmp_path, database_url, port=free_port(), anchors=anchors, clients=payments.clients()
    )
    with running_server(dataclasses.replace(settings, anchor_sets=ANCHOR_SETS)) as server:
        bank = Bank(server, payments)
        debtor = bank.register("pierre-wallet", "cbdc_wallet", "Pierre wallet")
        creditor = bank.register("marie-wallet", "cbdc_wallet", "Marie wallet")
        details = [transfer(debtor, creditor, "10.00", "EUR")]
        pierre = Holder(server, payments, "pierre")
        signed = log_in(
            pierre, pierre.open(bank.authorization_url(details, Pkce.generate())), EU_HIGH
        )
        [element] = signed.request["transaction_data"]
        assert decoded(element)["type"] == VALUE_TRANSFER
        assert signed.answer.status_code == 200, signed.answer.text
        assert [a.signed_operations for a in authentications(server)] == [(digest(details[0]),)]

        marie = Holder(server, payments, "marie")
        unsigned = log_in(
            marie,
            marie.open(bank.authorization_url(details, Pkce.generate())),
            EU_HIGH,
            kb_claims=lambda r: {},
        )
        assert unsigned.answer.json()["error_description"] == "transaction_data_not_signed"


def standing(deposit: str, wallet: str) -> dict[str, Any]:
    """Automatic top-ups: at most 30,000 JPY each, 100,000 JPY a day, for 30 days."""
    return {
        "type": "standing_funding",
        "directions": ["deposit_to_wallet"],
        "deposit_account": deposit,
        "wallet_account": wallet,
        "max_amount": {"currency": "JPY", "amount": "30000"},
        "daily_amount": {"currency": "JPY", "amount": "100000"},
        "valid_days": 30,
    }


def test_a_standing_authorization_is_approved_only_after_a_wallet_signed_its_bounds(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """``dynamic_linking`` lists ``funding``, which the engine applies to a standing
    authorization: Taro's SSO session (from linking) is not enough, consent asks for a step-up;
    the wallet login of the step-up gets the standing authorization as transaction data, signs
    it, and then the authorization can be approved and granted."""
    taro, wallet, deposit = linked(server, payments, bank, "taro")
    entry = standing(deposit, wallet)
    pkce = Pkce.generate()
    page = taro.open(bank.authorization_url([entry], pkce))
    assert "Review and allow" not in words(page)
    assert parse(page.text).form_with("/step-up")  # a step-up, not a refusal

    login = log_in(taro, taro.step_up(page), JP_HIGH)
    [item] = login.request["transaction_data"]
    assert decoded(item) == {
        "type": STANDING_FUNDING,
        "credential_ids": [CREDENTIAL_ID],
        "transaction_data_hashes_alg": ["sha-256"],
        "directions": ["deposit_to_wallet"],
        "max_amount": {"amount": "30000", "currency": "JPY"},
        "daily_amount": {"amount": "100000", "currency": "JPY"},
        "valid_days": 30,
        "deposit_account_reference": "…" + deposit[-4:],
        "wallet_account_reference": "…" + wallet[-4:],
    }
    assert login.answer.status_code == 200, login.answer.text
    [authentication] = authentications(server)
    assert authentication.signed_operations == (digest(entry),)
    assert "Review and allow" in words(login.page)

    key = DpopKey()
    code = taro.decide(login.page, "approve")["code"]
    response = bank.rp.redeem(code, pkce.verifier, dpop=bank.rp.proof(key, "/token"))
    assert response.status_code == 200, response.text
    [granted] = response.json()["authorization_details"]
    assert granted["type"] == "standing_funding"
    assert granted["standing_authorization_id"].startswith("sta_")


def test_a_standing_authorization_whose_bounds_the_wallet_did_not_sign_gets_no_login(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """A fresh login (no SSO session) for the standing authorization: a presentation without
    the hash of its element fails the login, so nothing reaches consent."""
    _, wallet, deposit = linked(server, payments, bank, "taro")
    taro = Holder(server, payments, "taro")  # another browser: a fresh login
    page = taro.open(bank.authorization_url([standing(deposit, wallet)], Pkce.generate()))
    login = log_in(taro, page, JP_HIGH, kb_claims=lambda r: {})
    assert decoded(login.request["transaction_data"][0])["type"] == STANDING_FUNDING
    assert login.answer.json() == {
        "error": "invalid_request",
        "error_description": "transaction_data_not_signed",
    }
    assert authentications(server) == []
    assert failed_logins(server)[-1] == "transaction_data_not_signed"


def test_an_anchor_declaring_funding_gets_a_standing_authorization_signed(
    tmp_path: Path, database_url: str, payments: Payments
) -> None:
    """No set requires it (the plain jp-cbdc policy), but jp-high declares that its wallets sign
    ``funding`` transaction data: a standing authorization, a funding operation for this
    purpose, is sent, signed and recorded; consent then allows it as without the signature."""
    anchors = []
    for party in payments.anchors.values():
        declaration = party.declaration()
        if party.id == JP_HIGH:
            declaration["sd_jwt_vc"]["transaction_data"] = ["funding"]
        anchors.append(declaration)
    settings = test_settings(
        tmp_path, database_url, port=free_port(), anchors=anchors, clients=payments.clients()
    )
    with running_server(dataclasses.replace(settings, anchor_sets=ANCHOR_SETS)) as server:
        bank = Bank(server, payments)
        _, wallet, deposit = linked(server, payments, bank, "taro")
        entry = standing(deposit, wallet)
        taro = Holder(server, payments, "taro")
        login = log_in(taro, taro.open(bank.authorization_url([entry], Pkce.generate())), JP_HIGH)
        [item] = login.request["transaction_data"]
        assert decoded(item)["type"] == STANDING_FUNDING
        assert login.answer.status_code == 200, login.answer.text
        assert [a.signed_operations for a in authentications(server)] == [(digest(entry),)]
        assert "Review and allow" in words(login.page)
