"""Issue 10: an SSO session never satisfies a step-up by itself. A person who just logged in at
the highest level and linked their accounts is asked to log in again for a transfer whose amount
needs a step-up: the browser's session tells who they are, but only a login performed for this
request counts for the step-up rule. Below the threshold the session is enough.
"""

from __future__ import annotations

import pytest
from support.html import parse
from support.payments import JP_HIGH, Bank, Holder, Payments, link, transfer
from support.rp import Pkce
from support.server import RunningServer


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


def _linked(
    server: RunningServer, payments: Payments, bank: Bank, subject: str
) -> tuple[Holder, str]:
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    answer = person.decide(person.log_in(page, JP_HIGH), "approve")
    bank.redeem(answer["code"], pkce)
    return person, wallet


def test_a_fresh_high_sso_session_does_not_pass_a_step_up(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    hanako, hanako_wallet = _linked(server, payments, bank, "hanako")
    _, taro_wallet = _linked(server, payments, bank, "taro")
    pkce = Pkce.generate()
    url = bank.authorization_url([transfer(hanako_wallet, taro_wallet, "200000")], pkce)
    consent = hanako.open(url)  # the session from her high login seconds ago
    text = parse(consent.text).text
    assert "still logged in from earlier" in text
    assert "A new login is needed" in text  # her level is enough: only a login from earlier
    login = hanako.step_up(consent)
    consent = hanako.log_in(login, JP_HIGH)
    assert "Send JPY 200,000" in parse(consent.text).text
    assert bank.redeem(hanako.decide(consent, "approve")["code"], pkce)["access_token"]


def test_below_the_step_up_threshold_the_sso_session_is_enough(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    hanako, hanako_wallet = _linked(server, payments, bank, "hanako")
    _, taro_wallet = _linked(server, payments, bank, "taro")
    pkce = Pkce.generate()
    consent = hanako.open(
        bank.authorization_url([transfer(hanako_wallet, taro_wallet, "5000")], pkce)
    )
    assert "A new login is needed" not in parse(consent.text).text
    assert bank.redeem(hanako.decide(consent, "approve")["code"], pkce)["access_token"]
