"""The landing page's walk, "log in with your bank's eKYC", in a real browser against the demo
exactly as ``./scripts/demo`` starts it (the ``demo`` fixture): from the demo bank to the
service's login page, on to the demo eKYC bank's OpenID Provider (its own sign-in page, with the
demo sign-ins shown and marked as the upstream's), its consent page, back to the service's consent
page (verified by the eKYC bank at level high) and to the bank; then the accounts are linked
with that login and 5,000 JPY go to Taro, verified by the smartphone-credential anchor of the same
set (after the wallet walk, which runs first in the same demo and links her accounts under her
wallet login, the service refuses instead: a plain login through another anchor is not joined to
her). Screenshots in test-artifacts/browser/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from browser_harness import OriginGuard, Shots
from demo_process import RunningDemo
from page_checks import check_page

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_log_in_with_the_banks_ekyc_and_link(
    demo: RunningDemo, phone: Page, guard: OriginGuard, shots: Shots
) -> None:
    guard.allow(demo.service_url, demo.parties_url)
    page = phone

    page.goto(demo.service("/?lang=en"))
    assert "Log in with your bank's eKYC" in page.locator("main").inner_text()
    page.goto(demo.party("/bank/"))
    page.click('form[action$="/bank/login"] button')
    page.wait_for_url(demo.service("/**"))
    check_page(page)
    assert "Demo eKYC Bank" in page.locator("main").inner_text()
    shots(page, "01-service-login")
    page.click('form:has(input[name="anchor"][value="demo-ekyc-bank"]) button')

    # The bank's own sign-in page: the upstream's, with the demo sign-ins shown on it.
    page.wait_for_url(demo.party("/ekyc-bank/authorize**"))
    check_page(page)
    main = page.locator("main").inner_text()
    assert "the trustanchor service never sees or stores it" in main, main
    password = page.locator("table.demo-credentials tr", has_text="hanako").locator("td").nth(2)
    page.fill("#login_id", "hanako")
    page.fill("#password", password.inner_text().strip())
    shots(page, "02-bank-sign-in")
    page.click('form[action$="/ekyc-bank/login"] button')

    page.wait_for_selector('form[action$="/ekyc-bank/consent"]')
    check_page(page)
    consent = page.locator("main").inner_text()
    assert "Signed in as Hanako Yamada" in consent, consent
    assert "Date of birth" in consent
    shots(page, "03-bank-consent")
    page.click('button[value="approve"]')

    # Back at the service: verified by the eKYC bank, at level high.
    page.wait_for_selector('form[action$="/consent"] button[value="approve"]')
    check_page(page)
    who = page.locator("#who").inner_text()
    assert "verified by Demo eKYC Bank at assurance level “high”" in who, who
    shots(page, "04-service-consent")
    page.click('button[value="approve"]')
    page.wait_for_url(demo.party("/bank/**"))
    page.wait_for_selector("#link-heading")
    assert "Hanako Yamada" in page.locator("main").inner_text()
    shots(page, "05-bank-home")

    # Her accounts linked with this login, then 5,000 JPY to Taro, verified by the smartphone
    # credential anchor of the same set: a transfer between holders verified through two kinds
    # of anchor. When the wallet walk (run first in the same demo) linked her accounts under her
    # wallet login, this plain login is a holder of its own (a join needs a step-up:
    # tests/flows/test_demo_ekyc_login.py) and the service refuses to move her money.
    linked_here = page.locator('form[action$="/bank/link"] button').count() > 0
    if linked_here:
        page.click('form[action$="/bank/link"] button')
        page.wait_for_selector('button[value="approve"]')
        check_page(page)
        page.click('button[value="approve"]')
        page.wait_for_url(demo.party("/bank/operations/**"))
        check_page(page)
        assert page.locator("#decision").inner_text() == "Allowed"
        assert page.locator("#anchor-set").inner_text() == "jp-cbdc"
        shots(page, "06-linked")
        page.goto(demo.party("/bank/"))
    assert "Linked" in page.locator("#link-status").inner_text()
    page.select_option("#payee", "taro")
    page.fill("#amount", "5000")
    page.click('form[action$="/bank/transfer"] button[type="submit"]')
    page.wait_for_selector('button[value="deny"]')
    check_page(page)
    shots(page, "07-transfer-consent")
    if not linked_here:
        refusal = page.locator("main").inner_text()
        assert "One of the accounts belongs to someone else." in refusal, refusal
        assert page.locator('button[value="approve"]').count() == 0
        return
    page.click('button[value="approve"]')
    page.wait_for_url(demo.party("/bank/operations/**"))
    check_page(page)
    outcome = page.locator("main").inner_text()
    assert page.locator("#decision").inner_text() == "Allowed", outcome
    assert page.locator("#ledger-outcome").get_attribute("class") == "ok", outcome
    shots(page, "08-transferred")
