"""The My Number Card in a real browser, against the demo as ``./scripts/demo`` starts it:

1. Hanako signs in at the demo bank with her card: on the service's login page she chooses the
   jp-jpki anchor, the same-device link opens the phone's card app, which shows who asks and
   which certificates; a wrong PIN is refused by the card itself; with the demo PIN and the
   signature password the card signs, and the service's consent page says who logged in;
2. at the bank branch's counter, a staff member serves Ume (no smartphone): the service's
   card-app link opens the terminal's card reader, Ume's card is read with her PIN, she approves
   on the terminal, and her deposit account and CBDC wallet are linked.

Each step asserts on what is shown and saves a screenshot (test-artifacts/browser/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from browser_harness import OriginGuard, Shots
from demo_process import RunningDemo
from page_checks import check_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

CARD_ANCHOR = "jp-jpki"


def choose_card(page: Page, demo: RunningDemo, shots: Shots, step: str) -> None:
    """The service's login page: the My Number Card; its certificate page (QR + link)."""
    page.wait_for_url(demo.service("/**"))
    check_page(page)
    page.click(f'form:has(input[name="anchor"][value="{CARD_ANCHOR}"]) button')
    page.wait_for_selector("#same-device")
    check_page(page)
    assert page.locator(".qr svg").is_visible()
    shots(page, f"{step}-certificate-qr")
    page.click("#same-device")


def test_hanako_signs_in_with_her_card_and_ume_is_served_at_the_counter(
    demo: RunningDemo, phone: Page, guard: OriginGuard, shots: Shots
) -> None:
    guard.allow(demo.service_url, demo.parties_url)
    page = phone

    # 1. The bank's sign-in, with the card app on the same phone.
    page.goto(demo.party("/bank/?lang=en"))
    page.click('form[action$="/bank/login"] button')
    choose_card(page, demo, shots, "01")
    page.wait_for_url(demo.party("/card/**"))
    page.click('button[name="person"][value="hanako"]')  # whose phone this is
    page.wait_for_selector("#pin")
    check_page(page)
    asked = page.locator("#asked").inner_text()
    assert "User authentication certificate" in asked and "Signature certificate" in asked, asked
    assert "Demo Bank" in page.locator("#verifier").inner_text()
    assert "My Number Card certificates (JPKI, demo)" in page.locator("#anchor-name").inner_text()
    # The card app in Japanese: the same request, the PIN fields labelled in Japanese.
    page.click("#switch-language")
    page.wait_for_selector("#pin")
    check_page(page, lang="ja")
    assert "利用者証明用電子証明書" in page.locator("#asked").inner_text()
    shots(page, "01-card-ja")
    page.click("#switch-language")
    page.wait_for_selector("#pin")
    check_page(page, lang="en")
    page.fill("#pin", "9999")
    page.fill("#password", "DEMO2027")
    page.click("#sign")
    page.wait_for_selector("#pin-error")
    assert page.locator("#pin-error").get_attribute("data-reason") == "pin_wrong"
    shots(page, "01-card-wrong-pin")
    page.fill("#pin", "1234")
    page.fill("#password", "DEMO2027")
    shots(page, "01-card-pin")
    page.click("#sign")
    page.wait_for_selector('button[value="approve"]')
    check_page(page)
    consent = page.locator("main").inner_text()
    assert "My Number Card certificates (JPKI, demo)" in consent, consent
    shots(page, "01-consent")
    page.click('button[value="approve"]')
    page.wait_for_url(demo.party("/bank/**"))
    page.wait_for_selector("#link-heading")
    check_page(page)
    assert "Hanako Yamada" in page.locator("main").inner_text()
    shots(page, "01-bank-home")
    # The card app's home: the two certificates of her card, the signature one with her
    # attributes, the authentication one with none.
    page.goto(demo.party("/card/?lang=en"))
    check_page(page)
    signature = page.locator("#certificate-signature").inner_text()
    assert "山田 花子" in signature and "19880514" in signature, signature
    assert "None" in page.locator("#certificate-authentication").inner_text()
    pins = page.locator("#demo-pins").inner_text()
    assert "1234" in pins and "DEMO2027" in pins, pins
    shots(page, "01-card-home")

    # 2. The branch's counter terminal (a desktop-like page in the same browser context: the
    #    terminal's cookie makes the card-app link open its reader).
    page.goto(demo.party("/branch/?lang=en"))
    check_page(page)
    page.fill("#operator", "staff-0412")
    page.click("#signin")
    page.wait_for_selector("#link-ume")
    check_page(page)
    shots(page, "02-counter")
    page.click("#link-ume")
    choose_card(page, demo, shots, "02")
    page.wait_for_url(demo.party("/branch/reader**"))
    check_page(page)
    assert "staff-0412" in page.locator("main").inner_text()
    page.check('input[name="card"][value="ume"]')
    page.fill("#pin", "1234")
    page.fill("#password", "DEMO2027")
    shots(page, "02-reader")
    page.click("#read-card")
    page.wait_for_selector('button[value="approve"]')
    check_page(page)
    assert "Nagoya-Sakae" in page.locator("main").inner_text()
    shots(page, "02-consent")
    page.click('button[value="approve"]')
    page.wait_for_url(demo.party("/branch/operations/**"))
    check_page(page)
    assert page.locator("#decision").inner_text() == "Allowed", page.locator("main").inner_text()
    assert page.locator("#anchor-set").inner_text() == "jp-cbdc"
    shots(page, "02-linked")
