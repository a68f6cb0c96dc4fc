"""The demo bank's automatic top-up (a standing authorization, issue 12) against the real service,
over HTTP: Hanako approves once, on the service's consent page, that Demo Bank may top up her
CBDC wallet from her deposit account (at most 30,000 JPY a top-up, 40,000 JPY a day, 30 days).
Then, without asking her again:

- a transfer larger than her wallet's balance is first covered by a top-up of exactly the
  missing amount (the reverse waterfall), executed on the demo ledger, then sent through its
  usual consent;
- a further top-up that would take the day above 40,000 JPY is refused by the service, the bank
  says why in words and does not send the transfer;
- "Stop" ends it through the links API; the refresh token the bank held is refused afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from support.payments import JP_SET
from test_demo_bank import (
    FUNDING_SETS,
    Customer,
    Demo,
    deposit_balance,
    element_text,
    running_demo,
    text_of,
    wallet_balance,
)

from trustanchor.demo.bank.client import BankClient, MovementRefused
from trustanchor.demo.bank.desk import BankDesk, funding_details
from trustanchor.domain.money import Amount

STANDING_SETS: list[dict[str, Any]] = [
    {**s, "policy": {**s["policy"], "standing_funding_max_days": 90}} if s["id"] == JP_SET else s
    for s in FUNDING_SETS
]
DETAIL_TYPES = ("account_link", "value_transfer", "funding", "standing_funding")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path, STANDING_SETS, DETAIL_TYPES) as running:
        yield running


def link_target(markup: str, element_id: str) -> str:
    """The href of the link inside the element with ``id``."""
    inside = markup[markup.index(f'id="{element_id}"') :]
    start = inside.index('href="') + len('href="')
    return inside[start : inside.index('"', start)]


def test_automatic_top_up_reverse_waterfall_daily_bound_and_stop(demo: Demo) -> None:
    taro = Customer(demo, "taro")
    taro.sign_in()
    taro.link()
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    assert 'id="standing-start"' not in hanako.bank_home().text  # no link yet: not offered
    hanako.link()
    home = hanako.bank_home()
    assert "Automatic top-up" in text_of(home) and 'id="standing-start"' in home.text

    # Approved once on the service's consent page.
    started = hanako.submit(
        home,
        "/bank/standing",
        standing_max="30,000",
        standing_daily="40,000",
        standing_days="30",
    )
    consent = hanako.consent(hanako.follow(started))
    assert "automatically" in text_of(consent), text_of(consent)
    result = hanako.follow(hanako.decide(consent))
    assert element_text(result.text, "result") == "Automatic top-up is set up"
    assert element_text(result.text, "decision") == "Allowed"
    [granted] = json.loads(element_text(result.text, "approved"))
    assert granted["type"] == "standing_funding"
    assert granted["max_amount"] == {"currency": "JPY", "amount": "30000"}
    assert granted["daily_amount"] == {"currency": "JPY", "amount": "40000"}
    sta = granted["standing_authorization_id"]
    kept = demo.desk.store.active_standing("hanako")
    assert kept is not None and kept.standing_id == sta and kept.refresh_token
    status = element_text(hanako.bank_home().text, "standing-status")
    assert status.startswith(
        "Automatic top-up active: up to 30,000 JPY a top-up, 40,000 JPY a day, until "
    ), status
    assert 'id="standing-start"' not in hanako.bank_home().text  # one at a time

    # The reverse waterfall: 70,000 JPY to Taro with 50,000 in the wallet: 20,000 topped up
    # first (no question asked), then the transfer's usual consent, then the ledger.
    assert wallet_balance(demo, "hanako") == 50_000
    sent = hanako.send("taro", "70,000")
    assert element_text(sent.text, "result") == (
        "Topped up 20,000 JPY automatically from your deposit account, "
        "then sent: the ledger executed the transfer"
    )
    assert (deposit_balance(demo, "hanako"), wallet_balance(demo, "hanako")) == (1_180_000, 0)
    assert wallet_balance(demo, "taro") == 90_000
    first = hanako.get(urljoin(sent.url, link_target(sent.text, "top-up-before")))
    assert element_text(first.text, "result") == (
        "Topped up automatically: the ledger executed the movement"
    )
    assert element_text(first.text, "automatic") == (
        "Under your automatic top-up: Demo Bank did not ask you again."
    )
    [movement] = demo.book.fundings()
    assert (movement.outcome, movement.direction, movement.amount) == (
        "executed",
        "deposit_to_wallet",
        "20000",
    )
    assert movement.link_id == granted["link_id"]
    history = text_of(hanako.bank_home())
    assert "Automatic top-up · Executed by the ledger" in history
    assert "Transfer · Executed by the ledger" in history

    # 30,000 more with an empty wallet: a top-up of 30,000 would take the day to 50,000, above
    # the 40,000 approved: refused by the service, said in words, the transfer not sent.
    refused = hanako.submit(hanako.bank_home(), "/bank/transfer", payee="taro", amount="30000")
    assert refused.status_code == 303  # straight to the bank's page: no consent asked
    refused = hanako.follow(refused)
    assert element_text(refused.text, "result") == "The automatic top-up was refused"
    reason = element_text(refused.text, "reason")
    assert reason.startswith(
        "Today's automatic top-ups would go above 40,000 JPY, the most you approved per day."
    ), reason
    assert "standing_daily_limit_exceeded" in reason
    assert element_text(refused.text, "transfer-not-sent") == (
        "So the transfer of 30,000 JPY to Taro Suzuki was not sent."
    )
    assert "ledger-outcome" not in refused.text
    japanese = text_of(hanako.get(refused.url + "?lang=ja"))
    assert "承認した1日の上限（40,000円）を超えます" in japanese, japanese
    assert "鈴木 太郎さんへの30,000円の送金は行っていません" in japanese, japanese
    hanako.get(refused.url + "?lang=en")  # back to English (the choice is kept in a cookie)
    assert (deposit_balance(demo, "hanako"), wallet_balance(demo, "hanako")) == (1_180_000, 0)
    assert wallet_balance(demo, "taro") == 90_000

    # Within the day's bound, "Top up now (automatic)" still works (20,000 + 15,000).
    now = hanako.follow(
        hanako.submit(hanako.bank_home(), "/bank/standing/top-up", standing_amount="15,000")
    )
    assert element_text(now.text, "result") == (
        "Topped up automatically: the ledger executed the movement"
    )
    [entry] = json.loads(element_text(now.text, "approved"))
    assert entry["standing_authorization_id"] == sta
    assert entry["link_id"] == granted["link_id"]
    assert wallet_balance(demo, "hanako") == 15_000

    # Stop: the links API ends it at the service; the bank forgets its refresh token.
    held = demo.desk.store.active_standing("hanako")
    assert held is not None and held.refresh_token is not None
    stopped = hanako.follow(hanako.submit(hanako.bank_home(), "/bank/standing/stop"))
    assert element_text(stopped.text, "standing-notice") == (
        "Automatic top-up stopped. Demo Bank can no longer move money into your wallet by itself."
    )
    assert 'id="standing-status"' not in stopped.text
    assert demo.desk.store.active_standing("hanako") is None
    [link] = [x for x in demo.desk.client.links() if x["link_id"] == granted["link_id"]]
    [listed] = link["standing_authorizations"]
    assert listed["active"] is False and listed["revoked_reason"] == "revoked_by_intermediary"
    # The refresh token it held no longer mints a movement (even though the day has room).
    key, _ = demo.desk.client.new_dpop_key(held.dpop_key)
    instruction = {
        "direction": "deposit_to_wallet",
        "amount": "1000",
        "currency": "JPY",
        "deposit_account": demo.desk.account_id(hanako.person, "bank_deposit"),
        "wallet_account": demo.desk.account_id(hanako.person, "cbdc_wallet"),
    }
    with pytest.raises(MovementRefused) as ended:
        demo.desk.client.movement(
            held.refresh_token, key, funding_details(instruction, granted["link_id"])[0]
        )
    assert ended.value.ended and ended.value.reason == "standing_ended"
    # And the bank offers no automatic top-up any more: a larger transfer goes the usual way
    # (here refused by the ledger: 15,000 in the wallet).
    later = hanako.send("taro", "20,000")
    assert element_text(later.text, "result").startswith(
        "Approved by the service, refused by the ledger"
    )
    assert wallet_balance(demo, "hanako") == 15_000


def test_a_declined_automatic_top_up_keeps_nothing(demo: Demo) -> None:
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    hanako.link()
    started = hanako.submit(
        hanako.bank_home(),
        "/bank/standing",
        standing_max="30,000",
        standing_daily="40,000",
        standing_days="30",
    )
    consent = hanako.consent(hanako.follow(started))
    declined = hanako.follow(hanako.decide(consent, approve=False))
    assert element_text(declined.text, "result") == "Automatic top-up was refused"
    assert "You declined" in element_text(declined.text, "reason")
    assert demo.desk.store.active_standing("hanako") is None
    assert 'id="standing-start"' in hanako.bank_home().text  # offered again

    # Bounds the bank itself refuses before asking anyone.
    for bounds, problem in (
        ({"standing_daily": "10,000"}, "at least the amount per top-up"),
        ({"standing_days": "365"}, "durations offered"),
        ({"standing_max": "12,00"}, "commas only between groups of three"),
    ):
        form = {"standing_max": "30,000", "standing_daily": "40,000", "standing_days": "30"}
        answer = hanako.submit(hanako.bank_home(), "/bank/standing", **(form | bounds))
        assert answer.status_code == 400
        assert problem in element_text(answer.text, "standing-error")


def test_stopped_by_the_holder_at_the_service_the_bank_tops_up_no_more(demo: Demo) -> None:
    """Hanako ends the automatic top-up on the service's "Your account links" page (/my): the
    bank learns it from the links API's listing, says nothing is active, and a transfer above
    the wallet's balance is not topped up (the ledger refuses it, as without a top-up)."""
    taro = Customer(demo, "taro")
    taro.sign_in()
    taro.link()
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    hanako.link()
    started = hanako.submit(
        hanako.bank_home(),
        "/bank/standing",
        standing_max="30,000",
        standing_daily="40,000",
        standing_days="7",
    )
    result = hanako.follow(hanako.decide(hanako.consent(hanako.follow(started))))
    assert element_text(result.text, "result") == "Automatic top-up is set up"
    [granted] = json.loads(element_text(result.text, "approved"))
    sta = granted["standing_authorization_id"]
    assert 'id="standing-status"' in hanako.bank_home().text

    # Above what one top-up may move: refused by the service, in words, nothing counted.
    over = hanako.follow(
        hanako.submit(hanako.bank_home(), "/bank/standing/top-up", standing_amount="35,000")
    )
    assert element_text(over.text, "result") == "The automatic top-up was refused"
    reason = element_text(over.text, "reason")
    assert reason.startswith(
        "The amount is more than your automatic top-up may move at a time (30,000 JPY)."
    ), reason

    # A bank process started anew (a new client with a new DPoP key of its own, the same
    # store): the automatic top-up works with the key kept beside the refresh token.
    restarted = BankDesk(
        demo.desk.people,
        demo.desk.store,
        demo.desk.book,
        BankClient.from_site(demo.site),
        register_kyc=demo.desk.register_kyc,
    )
    assert restarted.client.dpop_key.dpop_jkt != demo.desk.client.dpop_key.dpop_jkt
    topped = restarted.auto_top_up(hanako.person, Amount("JPY", 5_000))
    assert topped.executed, topped
    assert wallet_balance(demo, "hanako") == 55_000

    # At the service: /my/login, consent, /my/links, Stop.
    login = hanako.get(demo.server.url("/my/login?lang=en"))
    consent = hanako.consent(hanako.follow(hanako.submit(login, "/my/login")))
    links = hanako.follow(hanako.submit(consent, "/consent", decision="approve"))
    assert links.url == demo.server.url("/my/links"), links.url
    assert "Demo Bank may move money automatically" in text_of(links)
    stopped = hanako.submit(links, "/my/standing/stop", standing=sta)
    assert stopped.status_code == 303, stopped.text

    home = hanako.bank_home()
    assert 'id="standing-status"' not in home.text
    assert 'id="standing-start"' in home.text  # offered again
    assert demo.desk.store.active_standing("hanako") is None
    later = hanako.send("taro", "70,000")
    assert element_text(later.text, "result").startswith(
        "Approved by the service, refused by the ledger"
    )
    assert "top-up-before" not in later.text
    assert (deposit_balance(demo, "hanako"), wallet_balance(demo, "hanako")) == (
        1_195_000,
        55_000,
    )
