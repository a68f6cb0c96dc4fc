"""A newcomer's first ten minutes, in a real browser, against the demo exactly as
``./scripts/demo`` starts it (the ``demo`` fixture: service, wallet, bank and ledger, seeded):

1. from the service's landing page to the demo bank; sign in with a smartphone credential
   (Hanako, through the service's login page and the demo wallet's same-device link);
2. link her deposit account and CBDC wallet (the consent page shows the operation);
3. send 5,000 JPY to Taro, verified by an anchor of the same set: executed on the ledger;
4. send 5,000 JPY to Erika, verified only by the EU anchor: refused with the reason, in words,
   on the service's consent page and at the bank, in English and Japanese; nothing moves;
5. open the auditor's view as Aiko, the demo auditor, logging in with the QR code's URL read by
   a QR reader and pasted into her wallet: the logins, decisions and tokens are there.

Each step asserts on what the person sees and saves a screenshot (test-artifacts/browser/).
One test: the steps build on each other as they do for a person.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from browser_harness import OriginGuard, Shots
from demo_process import RunningDemo
from page_checks import check_page, decode_qr

from trustanchor.web.i18n import catalog

if TYPE_CHECKING:
    from playwright.sync_api import Page


def choose_on_phone(page: Page, person: str) -> None:
    """On the demo wallet: this is ``person``'s phone (asked the first time only)."""
    if page.locator(f'button[name="person"][value="{person}"]').count():
        page.click(f'button[name="person"][value="{person}"]')


def share_from_wallet(page: Page, demo: RunningDemo, person: str, shots: Shots, step: str) -> None:
    """The wallet's confirm page: who asks, what will be disclosed; Share."""
    page.wait_for_url(demo.party("/wallet/**"))
    choose_on_phone(page, person)
    page.wait_for_selector("#confirm")
    check_page(page)
    assert "trustanchor" in page.locator("#verifier").inner_text()
    disclosed = page.locator("#disclosed-1").inner_text()
    assert disclosed.strip(), "the wallet shows what it will disclose"
    shots(page, f"{step}-wallet-confirm")
    page.click("#confirm")


def log_in_with_phone(
    page: Page, demo: RunningDemo, person: str, anchor: str, shots: Shots, step: str
) -> None:
    """From the service's login page, through ``anchor``, with the same-device link."""
    page.wait_for_url(demo.service("/**"))
    check_page(page)
    shots(page, f"{step}-login")
    page.click(f'form:has(input[name="anchor"][value="{anchor}"]) button')
    page.wait_for_selector("#same-device")
    check_page(page)
    assert page.locator(".qr svg").is_visible()
    shots(page, f"{step}-qr")
    page.click("#same-device")
    share_from_wallet(page, demo, person, shots, step)


def approve(page: Page, shots: Shots, step: str, *, expect: str) -> str:
    """The service's consent page shows the operation (``expect``); Allow. Returns what the
    page said."""
    page.wait_for_selector('button[value="approve"]')
    check_page(page)
    said = page.locator("main").inner_text()
    assert expect in said, said
    shots(page, f"{step}-consent")
    page.click('button[value="approve"]')
    return said


def bank_operation(page: Page, demo: RunningDemo, shots: Shots, step: str) -> str:
    page.wait_for_url(demo.party("/bank/operations/**"))
    check_page(page)
    shots(page, f"{step}-bank")
    return page.locator("main").inner_text()


def wallet_balance(page: Page, demo: RunningDemo, who: str) -> str:
    """The ledger's balance line for ``who``'s CBDC wallet, as the ledger page shows it."""
    page.goto(demo.party("/ledger/"))
    row = page.locator("tr", has_text=who).first
    return row.inner_text()


def test_a_newcomer_walks_the_whole_demo(
    demo: RunningDemo, phone: Page, guard: OriginGuard, shots: Shots
) -> None:
    guard.allow(demo.service_url, demo.parties_url)
    page = phone

    # 1. The landing page leads to the bank; sign in with the smartphone ID.
    page.goto(demo.service("/"))
    check_page(page)
    shots(page, "01-landing")
    page.click("#part-bank a")
    page.wait_for_url(demo.party("/bank/**"))
    check_page(page)
    shots(page, "01-bank-welcome")
    page.click('form[action$="/bank/login"] button')
    log_in_with_phone(page, demo, "hanako", "jp-national-id", shots, "01")
    approve(page, shots, "01", expect="Demo Bank")
    page.wait_for_url(demo.party("/bank/**"))
    page.wait_for_selector("#link-heading")
    check_page(page)
    home = page.locator("main").inner_text()
    assert "Hanako Yamada" in home, home
    assert "Ordinary deposit ****4501" in home and "CBDC wallet ****7701" in home
    shots(page, "01-bank-home")

    # 2. Link the deposit account and the CBDC wallet (already signed in at the service: no
    #    second login; the consent page names both accounts).
    page.click('form[action$="/bank/link"] button')
    approve(page, shots, "02", expect="ヤマダ ハナコ（CBDC ウォレット ****7701）")
    outcome = bank_operation(page, demo, shots, "02")
    assert page.locator("#decision").inner_text() == "Allowed", outcome
    approved = page.locator("#approved").inner_text()
    assert '"type": "account_link"' in approved, approved
    assert page.locator("#anchor-set").inner_text() == "jp-cbdc"
    page.goto(demo.party("/bank/"))
    assert "Linked" in page.locator("#link-status").inner_text()

    # 3. 5,000 JPY to Taro (same anchor set): the consent page shows the recipient only as
    #    "verified by <anchor>", the ledger executes it.
    before = wallet_balance(page, demo, "Taro Suzuki")
    page.goto(demo.party("/bank/"))
    page.select_option("#payee", "taro")
    page.fill("#amount", "5000")
    page.fill("#reference", "Lunch 2026-11")
    shots(page, "03-send-form")
    page.click('form[action$="/bank/transfer"] button[type="submit"]')
    said = approve(page, shots, "03", expect="My Number Card (demo)")
    # The payee as Taro's bank registered him: his name in katakana, as on a Japanese transfer.
    assert "スズキ タロウ（CBDC ウォレット ****7702）" in said, said
    outcome = bank_operation(page, demo, shots, "03")
    assert page.locator("#decision").inner_text() == "Allowed", outcome
    assert '"value_transfer"' in page.locator("#approved").inner_text()
    assert page.locator("#ledger-outcome").get_attribute("class") == "ok", outcome
    after = wallet_balance(page, demo, "Taro Suzuki")
    shots(page, "03-ledger")
    assert before != after, (before, after)
    assert re.search(r"25,000", after), after  # 20,000 JPY at start + 5,000

    # 4. 5,000 JPY to Erika (verified only by the EU anchor): refused on the consent page with
    #    the reason and only a way back; the bank shows the refusal in words; nothing moved.
    erika_before = wallet_balance(page, demo, "Erika Mustermann")
    page.goto(demo.party("/bank/"))
    page.select_option("#payee", "erika")
    page.fill("#amount", "5000")
    page.click('form[action$="/bank/transfer"] button[type="submit"]')
    page.wait_for_selector('button[value="deny"]')
    check_page(page)
    assert page.locator('button[value="approve"]').count() == 0  # no way to allow it
    refusal = page.locator("main").inner_text()
    assert "not verified by trust anchors that recognise each other" in refusal, refusal
    shots(page, "04-refused-consent")
    page.click("#switch-language")
    page.wait_for_selector("html[lang=ja]", state="attached")
    check_page(page, lang="ja")
    japanese = page.locator("main").inner_text()
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", japanese), japanese
    shots(page, "04-refused-consent-ja")
    page.click('button[value="deny"]')
    outcome = bank_operation(page, demo, shots, "04")
    assert "no_common_anchor_set" in page.locator("#reason").inner_text(), outcome
    assert wallet_balance(page, demo, "Erika Mustermann") == erika_before
    shots(page, "04-ledger")

    # 5. The auditor's view, as Aiko: log in with the QR code's URL pasted into her wallet.
    page.goto(demo.service("/auditor/login?lang=en"))
    check_page(page)
    page.click('form[action="/auditor/login"] button')
    page.wait_for_url(demo.service("/**"))
    page.click('form:has(input[name="anchor"][value="jp-national-id"]) button')
    page.wait_for_selector("#same-device")
    qr_text = decode_qr(page)
    assert qr_text == page.locator("#same-device").get_attribute("href")
    # The same browser plays Aiko's phone now: on the wallet, switch to her.
    page.goto(demo.party("/wallet/"))
    page.click('button[name="person"][value="aiko"]')
    page.wait_for_selector("#scan-link")
    assert "Aiko Tanaka" in page.locator("main").inner_text()
    shots(page, "05-wallet-aiko")
    page.click("#scan-link")
    page.fill("#scan-url", qr_text)
    shots(page, "05-wallet-scan")
    page.click('form[action$="/wallet/scan"] button[type="submit"]')
    share_from_wallet(page, demo, "aiko", shots, "05")
    approve(page, shots, "05", expect="auditor")
    page.wait_for_url(demo.service("/auditor/**"))
    check_page(page)
    overview = page.locator("main").inner_text()
    shots(page, "05-auditor-overview")
    assert "auditor reference" not in overview.lower(), overview
    page.goto(demo.service("/auditor/entries?lang=en"))
    check_page(page)
    entries = page.locator("main").inner_text()
    shots(page, "05-auditor-entries")
    # Entries read as sentences, their kinds in words.
    kinds = {line.strip() for line in entries.splitlines()}
    for kind in ("login", "decision", "token_issued", "operator_change"):
        assert catalog("en")[f"auditor.kinds.{kind}"] in kinds, (kind, entries[:2000])
    # A decision reads with the operation it decided on (its decision_operation entry).
    assert "Transfer of JPY 5,000 allowed in " in entries, entries[:2000]
