"""Issue 12 in Chromium, on a phone-sized screen: the holder's /my/links page lists a standing
authorization (automatic top-ups approved once) under its link, with its bounds and the
movements minted from it, in English and Japanese, and "Stop automatic movements" ends it (the
intermediary's next movement is refused)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser_harness import OriginGuard, Shots
from page_checks import check_page
from support.ecosystem import BANK_REDIRECT, WalletApp
from support.payments import ANCHOR_SETS, JP_HIGH, Bank, Holder, Payments, link
from support.rp import DpopKey, Pkce
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.web.i18n import catalog

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture
def payments() -> Payments:
    return Payments()


@pytest.fixture
def server(tmp_path: Path, payments: Payments, guard: OriginGuard) -> Iterator[RunningServer]:
    settings = test_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'trustanchor.db'}",
        port=free_port(),
        anchors=[anchor.declaration() for anchor in payments.anchors.values()],
        clients=payments.clients(),
    )
    with running_server(dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))) as running:
        guard.allow(running.issuer)
        guard.stub(BANK_REDIRECT)
        yield running


def text(key: str, lang: str = "en") -> str:
    return catalog(lang)[key]


def test_a_holder_sees_and_stops_automatic_top_ups_on_my_links(
    phone: Page, shots: Shots, server: RunningServer, payments: Payments
) -> None:
    bank = Bank(server, payments)
    hanako = Holder(server, payments, "hanako")
    deposit = bank.register("hanako-deposit", "bank_deposit", "hanako savings")
    wallet = bank.register("hanako-wallet", "cbdc_wallet", "hanako wallet")
    pkce = Pkce.generate()
    consent = hanako.log_in(
        hanako.open(bank.authorization_url([link(deposit, wallet)], pkce)), JP_HIGH
    )
    bank.redeem(hanako.decide(consent, "approve")["code"], pkce)
    # The bank asks for automatic top-ups (outside the browser) and mints one movement.
    standing = {
        "type": "standing_funding",
        "directions": ["deposit_to_wallet"],
        "deposit_account": deposit,
        "wallet_account": wallet,
        "max_amount": {"currency": "JPY", "amount": "30000"},
        "daily_amount": {"currency": "JPY", "amount": "100000"},
        "valid_days": 30,
    }
    key, pkce = DpopKey(), Pkce.generate()
    consent = hanako.open(bank.authorization_url([standing], pkce))
    code = hanako.decide(consent, "approve")["code"]
    redeemed = bank.rp.redeem(code, pkce.verifier, dpop=bank.rp.proof(key, "/token"))
    assert redeemed.status_code == 200, redeemed.text
    movement = {
        "type": "funding",
        "direction": "deposit_to_wallet",
        "instructed_amount": {"currency": "JPY", "amount": "12000"},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }
    minted = bank.rp.post(
        "/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": redeemed.json()["refresh_token"],
            "authorization_details": json.dumps([movement]),
        },
        dpop=bank.rp.proof(key, "/token"),
    )
    assert minted.status_code == 200, minted.text
    refresh_token = minted.json()["refresh_token"]

    phone.goto(server.url("/my/links"))
    phone.wait_for_url(server.url("/my/login"))
    phone.click("button.primary")
    phone.wait_for_selector("button.anchor")
    phone.click(f"form:has(input[name=anchor][value='{JP_HIGH}']) button")
    phone.wait_for_selector("#same-device")
    device = WalletApp(server, hanako.wallet, hanako.credential(JP_HIGH))
    answer = device.respond(
        device.request_object(phone.get_attribute("#same-device", "href") or "")
    )
    assert answer.status_code == 200, answer.text
    phone.wait_for_selector("form[action$='/consent']")
    phone.click("button[value=approve]")
    phone.wait_for_url(server.url("/my/links"))
    check_page(phone, lang="en")
    section = phone.locator("section.standing")
    assert section.count() == 1
    shown = section.inner_text()
    assert "Test Bank may move money automatically" in shown
    assert "at most JPY 30,000 at a time, JPY 100,000 a day" in shown
    assert "JPY 12,000" in shown
    shots(phone, "standing-en")
    phone.click("#switch-language")
    check_page(phone, lang="ja")
    shown = phone.locator("section.standing").inner_text()
    assert "1回30,000円まで、1日100,000円まで" in shown and "12,000円" in shown
    shots(phone, "standing-ja")
    phone.click("#switch-language")
    phone.wait_for_selector("html[lang=en]")

    phone.click("section.standing form[action='/my/standing/stop'] button")
    notice = phone.locator("#stopped-notice")
    notice.wait_for()
    assert notice.inner_text() == text("my_links.standing.stopped")
    assert phone.locator("section.standing").count() == 0
    check_page(phone, lang="en")
    shots(phone, "stopped")
    refused = bank.rp.post(
        "/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "authorization_details": json.dumps([movement]),
        },
        dpop=bank.rp.proof(key, "/token"),
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
