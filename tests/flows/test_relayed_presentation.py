"""Issue 10, the relay direction of cross-device login (OpenID4VP 1.0, "Session Fixation"): a QR
code shown in the attacker's browser is forwarded to the victim, whose wallet answers it. The
attacker's browser then receives the victim's login; docs/HOLDER-INTEGRITY.md names that residual
risk. What the service guarantees, and these tests show over HTTP on SQLite and PostgreSQL:

- a relayed presentation joins no existing holder: answering the attacker's step-up with the
  victim's credential is refused (identity-join rule) and audited, and the victim's credential
  stays the victim's;
- it binds no account it does not match: accounts the attacker's bank registered with the
  attacker's KYC attributes are not bound to the victim's identity.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from support.ecosystem import WalletApp
from support.html import parse
from support.payments import (
    JP_HIGH,
    JP_SUBSTANTIAL,
    Bank,
    Holder,
    Payments,
    link,
    transfer,
)
from support.rp import Pkce
from support.server import RunningServer

from trustanchor.storage.tables import accounts, identities

HANAKO = {"given_name": "Hanako", "family_name": "Yamada", "birthdate": "1988-05-14"}
MALLORY = {"given_name": "Mallory", "family_name": "Kuroda", "birthdate": "1979-11-02"}


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


def relayed_login(attacker: Holder, victim: Holder, page: Any, anchor_id: str) -> Any:
    """The attacker chooses ``anchor_id`` on their own login page; the QR code's link reaches
    the victim, whose phone answers with the victim's credential. The attacker's browser then
    continues: the page it lands on."""
    wallet_page = attacker.browser.follow(
        attacker.browser.submit(page.text, "/wallet", anchor=anchor_id)
    )
    assert wallet_page.status_code == 200, wallet_page.text
    links = parse(wallet_page.text).links
    phone = WalletApp(attacker.server, victim.wallet, victim.credential(anchor_id))
    phone.respond(phone.request_object(links["same-device"].replace("&amp;", "&")))
    return attacker.open(attacker.server.url(links["continue"]))


def holder_of(server: RunningServer, anchor_id: str, subject: str) -> str | None:
    with server.services.db.reader() as conn:
        row = conn.execute(
            select(identities.c.holder_id).where(
                identities.c.anchor_id == anchor_id, identities.c.subject == subject
            )
        ).first()
    return None if row is None else str(row.holder_id)


def person(
    server: RunningServer, payments: Payments, subject: str, claims: dict[str, str]
) -> Holder:
    someone = Holder(server, payments, subject)
    for anchor_id in (JP_HIGH, JP_SUBSTANTIAL):
        someone.claims[anchor_id] = claims
    return someone


def test_a_relayed_presentation_joins_no_holder_and_binds_nothing(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    mallory = person(server, payments, "mallory", MALLORY)
    hanako = person(server, payments, "hanako", HANAKO)

    # Mallory has linked accounts of her own, through her substantial credential.
    deposit = bank.register("mallory-deposit", "bank_deposit", "Mallory savings")
    wallet = bank.register("mallory-wallet", "cbdc_wallet", "Mallory wallet")
    page = mallory.open(bank.authorization_url([link(deposit, wallet)], Pkce.generate()))
    assert "code" in mallory.decide(mallory.log_in(page, JP_SUBSTANTIAL), "approve")
    taro = Holder(server, payments, "taro")
    taro_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    taro_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    page = taro.open(bank.authorization_url([link(taro_deposit, taro_wallet)], Pkce.generate()))
    assert "code" in taro.decide(taro.log_in(page, JP_HIGH), "approve")
    mallory_holder = holder_of(server, JP_SUBSTANTIAL, "mallory")

    # 1. Her large transfer needs a step-up; the step-up's QR code is relayed to Hanako, whose
    #    phone answers with Hanako's high credential. Refused: Hanako's identity joins nobody.
    pkce = Pkce.generate()
    consent = mallory.open(bank.authorization_url([transfer(wallet, taro_wallet, "200000")], pkce))
    assert "A stronger login is needed" in parse(consent.text).text
    step_up = mallory.step_up(consent)
    refused = relayed_login(mallory, hanako, step_up, JP_HIGH)
    assert "someone else" in parse(refused.text).text
    assert not any(f.action.endswith("/consent") for f in parse(refused.text).forms)
    assert holder_of(server, JP_HIGH, "hanako") is None  # nothing recorded for her credential
    # Hanako's own later login through that credential is Hanako, never Mallory.
    hanako_deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    hanako_wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    own = hanako.open(
        bank.authorization_url([link(hanako_deposit, hanako_wallet)], Pkce.generate())
    )
    assert "code" in hanako.decide(hanako.log_in(own, JP_HIGH), "approve")
    assert holder_of(server, JP_HIGH, "hanako") not in (None, mallory_holder)

    # 2. Mallory's bank registered two more accounts with Mallory's KYC attributes; Mallory
    #    starts linking them and relays the QR code to Hanako. Her browser is now logged in as
    #    Hanako (the residual risk), but the accounts do not match Hanako: nothing is bound.
    kyc = {"family_name": MALLORY["family_name"], "given_name": MALLORY["given_name"]}
    deposit2 = bank.register("mallory-deposit-2", "bank_deposit", "Mallory savings 2", kyc)
    wallet2 = bank.register("mallory-wallet-2", "cbdc_wallet", "Mallory wallet 2", kyc)
    fresh = Holder(server, payments, "mallory")  # a browser without Mallory's session
    page = fresh.open(bank.authorization_url([link(deposit2, wallet2)], Pkce.generate()))
    consent = relayed_login(fresh, hanako, page, JP_HIGH)
    text = parse(consent.text).text
    assert "Yamada H." in text  # the page says whose login this is
    answer = fresh.browser.submit(consent.text, "/consent", decision="approve")
    assert "kyc_mismatch" in answer.headers["Location"]
    with server.services.db.reader() as conn:
        bound = conn.execute(
            select(accounts.c.holder_id).where(accounts.c.id.in_([deposit2, wallet2]))
        ).scalars()
        assert list(bound) == [None, None]


def test_a_relayed_login_leaves_no_session_to_move_money_with(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """The attack session of 2026-12-07: a QR code relayed from Mallory's browser to Hanako's
    phone gave Mallory's browser an SSO session as Hanako, and a later transfer below the step-up
    threshold from Hanako's wallet was decided "allowed" without Hanako's wallet being asked
    again. Now the relayed login answers the one request it was shown for, and Mallory's next
    request from that browser meets the login page."""
    hanako = person(server, payments, "hanako", HANAKO)
    deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    page = hanako.open(bank.authorization_url([link(deposit, wallet)], Pkce.generate()))
    assert "code" in hanako.decide(hanako.log_in(page, JP_HIGH), "approve")
    mallory = person(server, payments, "mallory", MALLORY)
    mallory_deposit = bank.register("mallory-deposit", "bank_deposit", "Mallory savings")
    mallory_wallet = bank.register("mallory-wallet", "cbdc_wallet", "Mallory wallet")
    page = mallory.open(
        bank.authorization_url([link(mallory_deposit, mallory_wallet)], Pkce.generate())
    )
    assert "code" in mallory.decide(mallory.log_in(page, JP_HIGH), "approve")

    fresh = Holder(server, payments, "mallory")  # a browser without Mallory's own session
    page = fresh.open(bank.authorization_url([link(deposit, wallet)], Pkce.generate()))
    consent = relayed_login(fresh, hanako, page, JP_HIGH)
    assert "Yamada H." in parse(consent.text).text  # the residual risk: this one request
    fresh.decide(consent, "approve")
    assert fresh.browser.session.cookies.get("ta_session") is None
    small = transfer(wallet, mallory_wallet, "5000")
    page = fresh.open(bank.authorization_url([small], Pkce.generate()))
    assert not any(f.action.endswith("/consent") for f in parse(page.text).forms)
    assert any(f.action.endswith("/wallet") for f in parse(page.text).forms)  # log in first
