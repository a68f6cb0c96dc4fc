"""Issue 4 end to end over HTTP, on SQLite and PostgreSQL: a bank registers accounts, people log
in with smartphone credentials from anchors of two anchor sets, link their deposit account and
CBDC wallet, and send money. Transfers inside one anchor set are allowed, across sets refused
(with the reason shown and audited), large amounts need a stronger login (step-up), and
removing a link revokes the tokens that depend on it."""

from __future__ import annotations

import dataclasses
from typing import Any

import jwt
import pytest
from sqlalchemy import select
from support.html import parse
from support.payments import (
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
from support.rp import Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.audit.entries import Decision, parse_entry
from trustanchor.bootstrap import initialise
from trustanchor.clock import SystemClock
from trustanchor.domain.identity import Authentication
from trustanchor.oauth.authorization_details import parse_operations
from trustanchor.services import cascades, decisions
from trustanchor.storage import accounts_repo
from trustanchor.storage.tables import accounts, interactions


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


def linked_person(
    server: RunningServer, payments: Payments, bank: Bank, subject: str, anchor_id: str
) -> tuple[Holder, str, str, dict[str, Any]]:
    """A person whose deposit account and wallet the bank registered and who linked them."""
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    consent = person.log_in(page, anchor_id)
    answer = person.decide(consent, "approve")
    tokens = bank.redeem(answer["code"], pkce)
    return person, deposit, wallet, tokens


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def decision_entries(server: RunningServer) -> list[Decision]:
    server.services.audit.integrate_pending()
    size = server.services.audit.latest_checkpoint().checkpoint.size
    found = []
    for item in server.services.audit.entries(0, size):
        entry = parse_entry(item.entry)
        if isinstance(entry, Decision):
            found.append(entry)
    return found


def test_a_person_links_their_deposit_account_and_wallet(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    person = Holder(server, payments, "taro")
    deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    consent = person.log_in(page, JP_HIGH)
    text = parse(consent.text).text
    assert "Link your deposit account “Taro savings” with your CBDC wallet “Taro wallet”" in text
    assert "Japan CBDC pilot" in text

    answer = person.decide(consent, "approve")
    tokens = bank.redeem(answer["code"], pkce)
    access = claims(tokens["access_token"])
    assert access["authorization_details"] == [link(deposit, wallet)]
    assert access["anchor_set"] == JP_SET

    accounts = {a["account_id"]: a for a in bank.api("GET", "/accounts").json()["accounts"]}
    subject = claims(tokens["id_token"])["sub"]
    assert accounts[deposit]["bound"] and accounts[deposit]["holder"] == subject
    assert accounts[wallet]["bound"] and accounts[wallet]["holder"] == subject
    links = bank.api("GET", "/links").json()["links"]
    assert [(x["deposit_account"], x["wallet_account"], x["holder"]) for x in links] == [
        (deposit, wallet, subject)
    ]
    [entry] = decision_entries(server)
    assert (entry.result, entry.reason, entry.anchor_set_id) == ("allowed", "allowed", JP_SET)


def test_a_transfer_between_two_holders_of_one_anchor_set_is_allowed(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet, _ = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)

    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, hanako_wallet, "5000")], pkce)
    )
    text = parse(consent.text).text
    assert "Send JPY 5,000 from “taro wallet”" in text
    assert (
        f"The recipient was verified by {JP_SUBSTANTIAL} (test) at assurance level “substantial”"
        in text
    )
    # The recipient as their own bank shows them: the account name it registered, nothing else.
    assert "<bdi>hanako wallet</bdi>" in text
    assert "Test hanako" not in text and hanako_wallet not in text

    tokens = bank.redeem(taro.decide(consent, "approve")["code"], pkce)
    access = claims(tokens["access_token"])
    assert access["authorization_details"] == [transfer(taro_wallet, hanako_wallet, "5000")]
    assert access["anchor_set"] == JP_SET
    assert access["exp"] - access["iat"] <= 60  # a transfer token expires fast
    assert "refresh_token" not in tokens


def test_a_transfer_to_a_holder_of_a_disjoint_anchor_set_is_refused_and_audited(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, pierre_wallet, _ = linked_person(server, payments, bank, "pierre", EU_HIGH)

    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, pierre_wallet, "5000")], pkce)
    )
    page = parse(consent.text)
    assert "not verified by trust anchors that recognise each other" in page.text
    assert not any(("decision", "approve") in f.buttons for f in page.forms), (
        "a refused operation offers no approve button"
    )
    answer = taro.decide(consent, "deny")
    assert answer["error"] == "access_denied"
    assert answer["error_description"] == "denied by policy: no_common_anchor_set"

    denied = [e for e in decision_entries(server) if e.result == "denied"]
    assert [(e.reason, e.anchor_set_id) for e in denied] == [("no_common_anchor_set", None)]


def test_a_forged_approval_of_a_refused_transfer_is_still_refused(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, pierre_wallet, _ = linked_person(server, payments, bank, "pierre", EU_HIGH)
    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, pierre_wallet, "5000")], pkce)
    )
    answer = taro.decide(consent, "approve")
    assert (answer["error"], answer["error_description"]) == (
        "access_denied",
        "denied by policy: no_common_anchor_set",
    )


def test_a_large_transfer_needs_a_stronger_login_and_gets_it_by_step_up(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    hanako, _, hanako_wallet, _ = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    _, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)

    pkce = Pkce.generate()
    url = bank.authorization_url([transfer(hanako_wallet, taro_wallet, "200000")], pkce)
    consent = hanako.open(url)
    text = parse(consent.text).text
    assert "A stronger login is needed" in text and "assurance level “high”" in text

    login = hanako.step_up(consent)
    offered = [f.fields.get("anchor") for f in parse(login.text).forms if "anchor" in f.fields]
    assert offered == [JP_HIGH]  # only anchors of the set at the level asked for
    consent = hanako.log_in(login, JP_HIGH)
    assert "Send JPY 200,000" in parse(consent.text).text
    tokens = bank.redeem(hanako.decide(consent, "approve")["code"], pkce)
    access = claims(tokens["access_token"])
    assert access["acr"] == "urn:trustanchor:acr:high"
    assert access["anchor_set"] == JP_SET


def test_a_step_up_with_someone_elses_credential_is_refused(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    hanako, _, hanako_wallet, _ = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    _, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    pkce = Pkce.generate()
    consent = hanako.open(
        bank.authorization_url([transfer(hanako_wallet, taro_wallet, "200000")], pkce)
    )
    login = hanako.step_up(consent)
    hanako.subject = "taro"  # her phone now presents Taro's credential from the high anchor
    page = hanako.log_in(login, JP_HIGH)
    assert "someone other than the person already logged in" in parse(page.text).text


def test_linking_accounts_bound_to_someone_else_is_refused(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    _, taro_deposit, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    mallory = Holder(server, payments, "mallory")
    pkce = Pkce.generate()
    page = mallory.open(bank.authorization_url([link(taro_deposit, taro_wallet)], pkce))
    consent = mallory.log_in(page, JP_HIGH)
    assert "belongs to someone else" in parse(consent.text).text
    answer = mallory.decide(consent, "deny")
    assert answer["error_description"] == "denied by policy: holder_mismatch"


def test_removing_a_link_revokes_the_tokens_that_depend_on_it(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    _, _, _, tokens = linked_person(server, payments, bank, "taro", JP_HIGH)
    [link_row] = bank.api("GET", "/links").json()["links"]

    ledger = RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")

    def active() -> bool:
        response = ledger.post("/introspect", {"token": tokens["access_token"]})
        assert response.status_code == 200, response.text
        return bool(response.json()["active"])

    assert active()
    removed = bank.api("DELETE", f"/links/{link_row['link_id']}")
    assert removed.status_code == 204, removed.text
    assert bank.api("GET", "/links").json()["links"] == []
    assert not active()
    refreshed = bank.rp.post(
        "/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def test_suspending_an_anchor_revokes_transfer_tokens_and_flags_accounts(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet, _ = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, hanako_wallet, "5000")], pkce)
    )
    tokens = bank.redeem(taro.decide(consent, "approve")["code"], pkce)
    ledger = RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")
    seen = ledger.post("/introspect", {"token": tokens["access_token"]}).json()
    assert seen["active"] and seen["anchor_set"] == JP_SET
    assert seen["authorization_details"] == [transfer(taro_wallet, hanako_wallet, "5000")]

    services = server.services
    at = services.clock.now()
    services.anchors.set_status(JP_SUBSTANTIAL, "suspended", at)
    result = cascades.anchor_suspended(services.db, JP_SUBSTANTIAL, at=at)
    assert (result.revoked_grants, result.flagged_accounts, result.flagged_links) == (1, 2, 1)
    assert not ledger.post("/introspect", {"token": tokens["access_token"]}).json()["active"]
    hanako_accounts = [
        a
        for a in bank.api("GET", "/accounts").json()["accounts"]
        if a["label"].startswith("hanako")
    ]
    assert {(a["status"], a["flagged_reason"]) for a in hanako_accounts} == {
        ("flagged", "anchor_suspended")
    }
    flagged = [x for x in bank.api("GET", "/links").json()["links"] if x["flagged"]]
    assert len(flagged) == 1

    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, hanako_wallet, "5000")], pkce)
    )
    answer = taro.decide(consent, "deny")
    assert answer["error_description"] == "denied by policy: account_flagged"
    again = cascades.anchor_suspended(services.db, JP_SUBSTANTIAL, at=at + 1)
    assert again == cascades.CascadeResult(0, 0, 0)  # idempotent


def test_an_anchor_suspended_by_its_declaration_has_the_same_effects_at_the_next_start(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet, _ = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, hanako_wallet, "5000")], pkce)
    )
    tokens = bank.redeem(taro.decide(consent, "approve")["code"], pkce)

    declared = [
        {**a, "status": "suspended"} if a["id"] == JP_SUBSTANTIAL else a
        for a in server.settings.anchors
    ]
    settings = dataclasses.replace(server.settings, anchors=tuple(declared))
    messages = initialise(
        settings, server.services.db, now=server.services.clock.now(), generate_keys=False
    )
    assert (
        f"anchor {JP_SUBSTANTIAL} is suspended: 1 transfer grant(s) revoked, 2 account(s) and "
        "1 link(s) flagged for re-verification"
    ) in messages
    ledger = RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")
    assert not ledger.post("/introspect", {"token": tokens["access_token"]}).json()["active"]
    again = initialise(
        settings, server.services.db, now=server.services.clock.now(), generate_keys=False
    )
    assert not any("transfer grant(s) revoked" in m for m in again)


def test_the_operation_and_its_refusal_are_worded_in_japanese(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, _, taro_wallet, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, pierre_wallet, _ = linked_person(server, payments, bank, "pierre", EU_HIGH)
    taro.browser.session.headers["Accept-Language"] = "ja"
    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, pierre_wallet, "5000")], pkce)
    )
    html = consent.text
    assert '<html lang="ja">' in html
    assert "「taro wallet」から次の送金先へ5,000円を送金します" in html
    assert "互いに認め合うトラストアンカーで本人確認されていません" in html
    assert "テスト銀行に戻る" in html


def test_a_binding_lost_to_a_race_is_a_conflict_and_writes_nothing(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Between the decision and its effect another transaction binds an account to someone
    else: carrying out the stale decision refuses (the consent transaction rolls back)."""
    _, _, _, taro_tokens = linked_person(server, payments, bank, "taro", JP_HIGH)
    person = Holder(server, payments, "hanako")
    deposit = bank.register("contested-deposit", "bank_deposit", "contested")
    wallet = bank.register("contested-wallet", "cbdc_wallet", "contested wallet")
    page = person.open(bank.authorization_url([link(deposit, wallet)], Pkce.generate()))
    person.log_in(page, JP_SUBSTANTIAL)
    services = server.services
    at = services.clock.now()
    with services.db.reader() as conn:
        row = conn.execute(select(interactions).where(interactions.c.state == "consent")).one()
        authentication = Authentication.from_json(row.authentication)
        outcome = decisions.decide(
            services,
            conn,
            parse_operations([link(deposit, wallet)]),
            authentication,
            at=at,
            client_id=payments.bank.client_id,
        )
    assert outcome.allowed
    with services.db.reader() as conn:
        taro_holder = conn.execute(
            select(accounts.c.holder_id).where(accounts.c.holder_id.is_not(None))
        ).first()
    assert taro_holder is not None and taro_tokens
    with services.db.transaction() as conn:
        assert accounts_repo.bind(
            conn,
            deposit,
            registered_by=payments.bank.client_id,
            holder_id=taro_holder.holder_id,
            identity_id="someone",
            now=at,
        )
    with pytest.raises(decisions.BindingConflict), services.db.transaction() as conn:
        decisions.carry_out(conn, outcome, authentication, grant_id="none", at=at)
    with services.db.reader() as conn:
        assert accounts_repo.get(conn, wallet).holder_id is None  # type: ignore[union-attr]
