"""The consent page for a payment in headless Chromium on a phone (390 x 844), as a person sees
it (issue 12, "Payments a person understands"): the amount first, the payee's account name set
apart as their bank's words (a hostile one shown as text, clipped, without breaking the layout),
who logged in and whose rules apply; a payment that needs a new login explained without looking
like a refusal; a refused payment naming the trust schemes. English and Japanese.

Every page is checked by page_checks.check_page (lang, title, labelled controls, no horizontal
scrolling at 390 px). Screenshots: test-artifacts/browser/<test>/."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser_harness import OriginGuard, Shots
from page_checks import check_page
from support.ecosystem import BANK_REDIRECT, WalletApp
from support.payments import (
    ANCHOR_SETS,
    EU_HIGH,
    JP_HIGH,
    JP_SUBSTANTIAL,
    Bank,
    Holder,
    Payments,
    link,
    transfer,
)
from support.rp import Pkce
from support.server import RunningServer, free_port, running_server, test_settings

if TYPE_CHECKING:
    from playwright.sync_api import Page

HOSTILE = "<b>Refund from your bank</b> — כסף חזרה — call +81 0000"


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
    settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
    with running_server(settings) as running:
        guard.allow(running.issuer)
        guard.stub(BANK_REDIRECT)
        yield running


@pytest.fixture
def bank(server: RunningServer, payments: Payments) -> Bank:
    return Bank(server, payments)


def _linked(
    server: RunningServer,
    payments: Payments,
    bank: Bank,
    subject: str,
    anchor: str,
    wallet_label: str | None = None,
) -> tuple[Holder, str]:
    """A person who linked a deposit account and a CBDC wallet (outside the browser)."""
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", wallet_label or f"{subject} wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    bank.redeem(person.decide(person.log_in(page, anchor), "approve")["code"], pkce)
    return person, wallet


def _to_consent(
    page: Page, server: RunningServer, bank: Bank, holder: Holder, anchor: str, url: str, lang: str
) -> None:
    page.goto(server.url(f"/?lang={lang}"))
    page.goto(url)
    page.click(f"form:has(input[name=anchor][value='{anchor}']) button")
    page.wait_for_selector("#same-device")
    link_url = page.get_attribute("#same-device", "href")
    assert link_url
    phone = WalletApp(server, holder.wallet, holder.credential(anchor))
    assert phone.respond(phone.request_object(link_url)).status_code == 200
    page.wait_for_selector("form[action$='/consent']")
    check_page(page, lang=lang)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_payment_leads_with_the_amount_and_a_hostile_payee_label_stays_text(
    phone: Page,
    shots: Shots,
    server: RunningServer,
    payments: Payments,
    bank: Bank,
    lang: str,
) -> None:
    taro, taro_wallet = _linked(server, payments, bank, "taro", JP_HIGH)
    _, payee_wallet = _linked(server, payments, bank, "mallory", JP_SUBSTANTIAL, HOSTILE)
    url = bank.authorization_url([transfer(taro_wallet, payee_wallet, "5000")], Pkce.generate())
    _to_consent(phone, server, bank, taro, JP_HIGH, url, lang)
    amount = phone.locator(".payment-amount")
    assert amount.inner_text() == ("5,000円" if lang == "ja" else "JPY 5,000")
    label = phone.locator(".payee-label")
    assert label.inner_text() == HOSTILE[:39] + "…"  # as text, clipped
    assert phone.locator(".payee-label b").count() == 0  # not markup
    source = phone.locator(".payee-source").inner_text()
    assert (
        "テスト銀行が口座" if lang == "ja" else "The account name Test Bank registered"
    ) in source
    # The payment comes before who logged in.
    payment_top = amount.bounding_box()
    who_top = phone.locator("#who").bounding_box()
    assert payment_top and who_top and payment_top["y"] < who_top["y"]
    assert phone.locator("button[value=approve]").is_visible()
    shots(phone, f"payment-{lang}")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_payment_above_the_threshold_asks_for_a_new_login_without_a_refusal(
    phone: Page,
    shots: Shots,
    server: RunningServer,
    payments: Payments,
    bank: Bank,
    lang: str,
) -> None:
    hanako, hanako_wallet = _linked(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    _, taro_wallet = _linked(server, payments, bank, "taro", JP_HIGH)
    url = bank.authorization_url([transfer(hanako_wallet, taro_wallet, "200000")], Pkce.generate())
    _to_consent(phone, server, bank, hanako, JP_SUBSTANTIAL, url, lang)
    assert phone.locator(".refusal, [role=alert]").count() == 0
    assert phone.locator("#step-up-reasons li").count() == 1
    reason = phone.locator("#step-up-reasons li").inner_text()
    assert ("100,000円" if lang == "ja" else "JPY 100,000") in reason
    assert phone.locator("button[value=approve]").count() == 0
    assert phone.locator("form[action$='/step-up'] button").is_visible()
    shots(phone, f"step-up-{lang}")
    phone.click("form[action$='/step-up'] button")
    phone.wait_for_selector(".notice")
    check_page(phone, lang=lang)
    assert phone.locator("[role=alert]").count() == 0
    shots(phone, f"step-up-login-{lang}")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_refused_payment_names_the_trust_schemes(
    phone: Page,
    shots: Shots,
    server: RunningServer,
    payments: Payments,
    bank: Bank,
    lang: str,
) -> None:
    taro, taro_wallet = _linked(server, payments, bank, "taro", JP_HIGH)
    _, pierre_wallet = _linked(server, payments, bank, "pierre", EU_HIGH)
    url = bank.authorization_url([transfer(taro_wallet, pierre_wallet, "5000")], Pkce.generate())
    _to_consent(phone, server, bank, taro, JP_HIGH, url, lang)
    why = " ".join(phone.locator(".refusal-why").all_inner_texts())
    japan, eu = (
        ("日本 CBDC 実証", "EU デジタル ID ウォレット")
        if lang == "ja"
        else ("Japan CBDC pilot", "EU digital identity wallets")
    )
    assert japan in why and eu in why, why
    assert phone.locator("button[value=approve]").count() == 0
    assert phone.title().startswith("許可できません" if lang == "ja" else "Cannot be allowed")
    shots(phone, f"refused-{lang}")
