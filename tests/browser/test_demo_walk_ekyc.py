"""The landing page's walk, "log in with your bank's eKYC", in a real browser against the demo
exactly as ``./scripts/demo`` starts it (the ``demo`` fixture): from the demo bank to the
service's login page, on to the demo eKYC bank's OpenID Provider (its own sign-in page, with the
demo sign-ins shown and marked as the upstream's), its consent page, back to the service's consent
page (verified by the eKYC bank at level high) and to the bank; then the accounts are linked
with that login. Screenshots in test-artifacts/browser/.

Runs after the wallet walk (file order): it re-links Hanako's accounts, which that walk expects
to link itself first; alone it stands on its own.
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
    assert "verified by Demo eKYC Bank (assurance level: high)" in who, who
    shots(page, "04-service-consent")
    page.click('button[value="approve"]')
    page.wait_for_url(demo.party("/bank/**"))
    page.wait_for_selector("#link-heading")
    assert "Hanako Yamada" in page.locator("main").inner_text()
    shots(page, "05-bank-home")

    page.click('form[action$="/bank/link"] button')
    page.wait_for_selector('button[value="approve"]')
    check_page(page)
    page.click('button[value="approve"]')
    page.wait_for_url(demo.party("/bank/operations/**"))
    check_page(page)
    assert page.locator("#decision").inner_text() == "Allowed"
    assert page.locator("#anchor-set").inner_text() == "jp-cbdc"
    shots(page, "06-linked")
