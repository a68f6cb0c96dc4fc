"""Money into the wallet, a payment that needs a new login, refusals said honestly, and a second
person in the same browser: a newcomer's walk in a real browser (a phone, 390 x 844) against a
demo of its own, started as ``./scripts/demo`` starts it and, halfway, stopped with Ctrl-C and
started again on the same state and ports (a second start in the same clone):

1. at the bank, Hanako signs in with her smartphone credential and links her deposit account and
   CBDC wallet;
2. she tops up her wallet with 120,000 JPY from her deposit account (typed ``120,000``): the
   ledger executes the movement and lists it under the movements between deposit accounts and
   wallets;
3. Ctrl-C, and the demo started again: the same browser is still signed in at the bank, her
   accounts linked, the balances kept;
4. 150,000 JPY to Taro with a Japanese memo: above the set's 100,000 JPY step-up threshold, so the
   consent page asks for a new login (not styled as a refusal); the demo wallet shows the payment
   it signs; the ledger executes it and the memo stays at the bank;
5. 50,000 JPY more: within every rule of the service, but above what is left in the wallet: the
   bank says "approved by the service, refused by the ledger" with the reason in words; the same
   page in Japanese (``50,000円``, no stray spaces);
6. 1,200,000 JPY: above the per-transfer limit: the consent page says why and offers no way to
   allow it, also in Japanese (``1,200,000円``); the bank shows the refusal with its reason;
7. "Sign out everywhere", then Taro signs in in the same browser (the wallet answers as him; the
   service's pages in Japanese, as chosen in step 6);
8. Taro tops up 350,000 JPY: above the set's 300,000 JPY funding step-up, so a new login in
   which the wallet shows the movement it signs; then he moves 50,000 JPY back to his deposit
   account; the ledger lists both movements.

Each step asserts on what the person sees and saves a screenshot (test-artifacts/browser/).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser_harness import OriginGuard, Shots
from demo_process import RunningDemo, launcher_problem, running_demo
from page_checks import check_page
from support.server import free_port

from trustanchor.demo.page_context import CATALOGS
from trustanchor.web.i18n import Translator

if TYPE_CHECKING:
    from playwright.sync_api import Page

EN = Translator("en", CATALOGS)
JA = Translator("ja", CATALOGS)
MEMO = "お昼代 11月分"  # not a payment reference: kept by the bank only
STRAY_SPACE_AROUND_YEN = r"[^\S\n][0-9][0-9,]*円|円[^\S\n]"  # "に 50,000円", "50,000円 を"


def on_phone(page: Page, person: str) -> None:
    """On the demo wallet, answer as ``person``: chosen the first time, or switched to at the
    share screen when the phone answered as someone else before."""
    page.wait_for_selector("#confirm, button[name='person']")
    if page.locator("#confirm").count() == 0:
        page.click(f'button[name="person"][value="{person}"]')
    elif page.locator(f'input[name="person"][value="{person}"]').count() == 0:
        page.click(f'#switch-person button[value="{person}"]')
    page.wait_for_selector(f'input[name="person"][value="{person}"]', state="attached")
    page.wait_for_selector("#confirm")


def log_in_with_phone(page: Page, demo: RunningDemo, person: str, shots: Shots, step: str) -> None:
    """On the service's login page: the smartphone credential (jp-national-id), the same-device
    link, the wallet's share screen."""
    page.wait_for_url(demo.service("/**"))
    page.wait_for_selector('form:has(input[name="anchor"][value="jp-national-id"]) button')
    check_page(page)
    shots(page, f"{step}-login")
    page.click('form:has(input[name="anchor"][value="jp-national-id"]) button')
    page.wait_for_selector("#same-device")
    page.click("#same-device")
    page.wait_for_url(demo.party("/wallet/**"))
    on_phone(page, person)
    check_page(page)
    shots(page, f"{step}-wallet")


def approve(page: Page, shots: Shots, step: str, *, expect: str) -> str:
    """The service's consent page shows ``expect``; Allow. Returns what the page said."""
    page.wait_for_selector('button[value="approve"]')
    check_page(page)
    said = page.locator("main").inner_text()
    assert expect in said, said
    shots(page, f"{step}-consent")
    page.click('button[value="approve"]')
    return said


def bank_result(page: Page, demo: RunningDemo, shots: Shots, step: str) -> str:
    """The bank's page for one operation: its headline (``#result``)."""
    page.wait_for_url(demo.party("/bank/operations/**"))
    check_page(page)
    shots(page, f"{step}-bank")
    return page.locator("#result").inner_text()


def ledger_balance(page: Page, demo: RunningDemo, who: str) -> str:
    """The balance the ledger's page shows for ``who``'s CBDC wallet."""
    page.goto(demo.party("/ledger/?lang=en"))
    return page.locator("#balances tr", has_text=who).locator("td.amount").inner_text()


def send(page: Page, demo: RunningDemo, payee: str, amount: str, memo: str = "") -> None:
    page.goto(demo.party("/bank/"))
    page.select_option("#payee", payee)
    page.fill("#amount", amount)
    page.fill("#reference", memo)
    page.click('form[action$="/bank/transfer"] button[type="submit"]')


def free(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_fund_the_wallet_pay_above_the_step_up_and_hand_over_the_browser(
    tmp_path: Path, phone: Page, guard: OriginGuard, shots: Shots
) -> None:
    problem = launcher_problem()
    if problem:
        pytest.skip(problem)
    state = tmp_path / "state"
    ports = (free_port(), free_port())
    page = phone

    with running_demo(state, tmp_path / "first-start.log", ports=ports) as demo:
        guard.allow(demo.service_url, demo.parties_url)

        # 1. Sign in at the bank as Hanako, link her deposit account and CBDC wallet.
        page.goto(demo.party("/bank/?lang=en"))
        check_page(page)
        assert page.locator("#funding-amount").count() == 0  # nothing to fund before signing in
        page.click('form[action$="/bank/login"] button')
        log_in_with_phone(page, demo, "hanako", shots, "01")
        page.click("#confirm")
        approve(page, shots, "01", expect="Demo Bank")
        page.wait_for_selector("#link-heading")
        assert page.locator("#funding-amount").count() == 0  # no dead buttons before the link
        page.click('form[action$="/bank/link"] button')
        # The accounts as the bank registered them at the service: the holder's name in katakana.
        approve(page, shots, "01-link", expect="ヤマダ ハナコ（CBDC ウォレット ****7701）")
        assert bank_result(page, demo, shots, "01-link") == EN("bank.operation.link_allowed")

        # 2. Top up the wallet from the deposit account, the amount typed as people write it.
        page.goto(demo.party("/bank/"))
        page.wait_for_selector("#funding-amount")
        check_page(page)
        wallet = page.locator('li.account[data-kind="cbdc_wallet"] .account-balance')
        assert wallet.inner_text() == "50,000 JPY"
        page.fill("#funding-amount", "120,000")
        shots(page, "02-top-up-form")
        page.click("#top-up")
        consent = approve(page, shots, "02", expect="120,000")
        assert "ヤマダ ハナコ（普通預金 ****4501）" in consent, consent
        assert "ヤマダ ハナコ（CBDC ウォレット ****7701）" in consent, consent
        assert bank_result(page, demo, shots, "02") == EN("bank.result.funding_executed")
        assert page.locator("#ledger-outcome").get_attribute("class") == "ok"
        assert '"type": "funding"' in page.locator("#approved").inner_text()
        assert ledger_balance(page, demo, "Hanako Yamada") == "170,000 JPY"
        movement = page.locator("#movements li").first.inner_text()
        assert "120,000 JPY" in movement and EN("ledger.executed") in movement, movement
        assert EN("ledger.directions.deposit_to_wallet") in movement, movement
        check_page(page)
        shots(page, "02-ledger-movements")

    # 3. Ctrl-C, and ./scripts/demo again on the same state: it starts, nothing is lost.
    assert demo.stops == [0], demo.output()
    assert free(ports[0]) and free(ports[1]), demo.output()
    with running_demo(state, tmp_path / "second-start.log", ports=ports) as again:
        started = again.output()
        assert "cannot start" not in started, started
        assert "accounts already registered" in started, started
        page.goto(again.party("/bank/?lang=en"))
        page.wait_for_selector("#link-heading")  # still signed in at the bank
        check_page(page)
        assert "Hanako Yamada" in page.locator("main").inner_text()
        assert "Linked" in page.locator("#link-status").inner_text()
        assert wallet.inner_text() == "170,000 JPY"
        shots(page, "03-after-restart")

        # 4. 150,000 JPY to Taro: above the step-up threshold, so a new login is needed, and the
        #    wallet shows the payment it signs; the ledger executes it; the memo stays here.
        taro_before = ledger_balance(page, again, "Taro Suzuki")
        send(page, again, "taro", "150,000", MEMO)
        page.wait_for_selector("#step-up")
        check_page(page)
        assert page.locator('button[value="approve"]').count() == 0
        why = page.locator("#step-up-reasons").inner_text()
        assert "100,000" in why, why
        assert page.locator(".refusal").count() == 0  # a new login, not a refusal
        shots(page, "04-step-up")
        page.click("form[action$='/step-up'] button")
        log_in_with_phone(page, again, "hanako", shots, "04-step-up")
        payment = page.locator("#payment-amount-1").inner_text()
        assert "150,000" in payment, payment
        assert page.locator("#payment-signing").is_visible()
        assert page.locator("#confirm-heading").inner_text() == EN("wallet.payment.heading")
        assert "スズキ タロウ" in page.locator("#payment-payee-1").inner_text()
        # "Not Hanako Yamada? Answer as someone else on this phone": inside its box, below the
        # border, not across it.
        legend = page.locator("#switch-person legend").bounding_box()
        box = page.locator("#switch-person fieldset").bounding_box()
        assert legend is not None and box is not None
        assert legend["y"] > box["y"], (legend, box)
        page.click("#confirm")
        approve(page, shots, "04", expect="150,000")
        assert bank_result(page, again, shots, "04") == EN("bank.result.transfer_executed")
        assert page.locator("#memo").inner_text() == MEMO
        assert page.locator("#memo-sent").inner_text() == EN("bank.operation.memo_kept")
        assert taro_before == "20,000 JPY", taro_before
        assert ledger_balance(page, again, "Taro Suzuki") == "170,000 JPY"
        assert ledger_balance(page, again, "Hanako Yamada") == "20,000 JPY"
        executed = page.locator("#journal li").first.inner_text()
        assert "150,000 JPY" in executed and "Hanako Yamada → Taro Suzuki" in executed, executed
        shots(page, "04-ledger")

        # 5. 50,000 JPY: the service approves (no rule stops it), the ledger refuses (the wallet
        #    holds 20,000): the bank says so, in English and in Japanese.
        send(page, again, "taro", "50000")
        approve(page, shots, "05", expect="50,000")
        headline = bank_result(page, again, shots, "05")
        reason = EN("ledger.reasons.insufficient_funds")
        assert headline == EN("bank.result.ledger_refused", reason=reason[0].lower() + reason[1:])
        assert "insufficient_funds" in page.locator("#ledger-outcome").inner_text()
        refused_at = page.url
        assert ledger_balance(page, again, "Hanako Yamada") == "20,000 JPY"
        refused = page.locator("#journal li").first.inner_text()
        assert EN("ledger.refused") in refused and "50,000 JPY" in refused, refused
        page.goto(refused_at)
        page.click("a.lang")
        check_page(page, lang="ja")
        headline = page.locator("#result").inner_text()
        assert headline.startswith("サービスは承認しましたが、台帳が拒否しました"), headline
        summary = page.locator(".summary").inner_text()
        assert summary == "鈴木 太郎さんに50,000円を送金", summary
        assert not re.search(STRAY_SPACE_AROUND_YEN, headline + summary), headline + summary
        shots(page, "05-bank-ja")
        page.goto(again.party("/bank/"))
        check_page(page, lang="ja")
        assert wallet.inner_text() == "20,000円"
        shots(page, "05-home-ja")
        page.click("a.lang")
        check_page(page, lang="en")

        # 6. 1,200,000 JPY: above the per-transfer limit: refused on the consent page, in words.
        send(page, again, "taro", "1,200,000")
        page.wait_for_selector('button[value="deny"]')
        check_page(page)
        assert page.locator('button[value="approve"]').count() == 0
        assert page.locator("#step-up").count() == 0
        refusal = page.locator("main").inner_text()
        assert "1,000,000" in refusal and "Japan CBDC pilot" in refusal, refusal
        shots(page, "06-refused-consent")
        page.click("#switch-language")
        check_page(page, lang="ja")
        refusal = page.locator("main").inner_text()
        assert "1,200,000円" in refusal and "1,000,000円" in refusal, refusal
        assert not re.search(STRAY_SPACE_AROUND_YEN, refusal), refusal
        shots(page, "06-refused-consent-ja")
        page.click('button[value="deny"]')
        assert bank_result(page, again, shots, "06") == EN("bank.operation.transfer_denied")
        assert "limit_exceeded" in page.locator("#reason").inner_text()

        # 7. Sign out everywhere; Taro signs in in the same browser, through a new login.
        page.goto(again.party("/bank/"))
        page.click("#sign-out-everywhere")
        page.wait_for_selector('form[action$="/bank/login"] button')
        check_page(page)
        shots(page, "07-signed-out")
        page.click('form[action$="/bank/login"] button')
        log_in_with_phone(page, again, "taro", shots, "07")  # the service in Japanese now
        page.click("#confirm")
        approve(page, shots, "07", expect="デモ銀行")
        page.wait_for_selector("#link-heading")
        check_page(page)
        greeting = page.locator("main h1").inner_text()
        assert greeting == EN("bank.home.greeting", name="Taro Suzuki"), greeting
        assert "Ordinary deposit ****4502" in page.locator("#accounts-heading + ul").inner_text()
        assert wallet.inner_text() == "170,000 JPY"
        shots(page, "07-bank-taro")

        # 8. Taro moves 350,000 JPY into his wallet: above the set's 300,000 JPY funding step-up,
        #    so a new login, in which the wallet shows the movement it signs; then 50,000 JPY
        #    back to his deposit account with the login he has.
        page.fill("#funding-amount", "350,000")
        page.click("#top-up")
        page.wait_for_selector("#step-up")
        check_page(page, lang="ja")
        assert "300,000円" in page.locator("#step-up-reasons").inner_text()
        shots(page, "08-step-up-ja")
        page.click("form[action$='/step-up'] button")
        log_in_with_phone(page, again, "taro", shots, "08-step-up")
        assert "350,000" in page.locator("#payment-amount-1").inner_text()
        heading = page.locator("#payment-1").inner_text()
        assert heading == EN("wallet.payment.funding_deposit_to_wallet"), heading
        # A movement between his own accounts, not a payment to someone: both named.
        said = page.locator("#confirm-heading").inner_text()
        assert said == EN("wallet.payment.heading_funding"), said
        assert page.locator("#payment-from-1").inner_text().startswith("Your bank account …")
        assert page.locator("#payment-to-1").inner_text().startswith("Your wallet …")
        signing = page.locator("#payment-signing").inner_text()
        assert signing == EN("wallet.payment.signing_funding"), signing
        page.click("#confirm")
        approve(page, shots, "08", expect="350,000円")
        assert bank_result(page, again, shots, "08") == EN("bank.result.funding_executed")
        page.goto(again.party("/bank/"))
        page.fill("#funding-amount", "50000")
        page.click("#move-back")
        approve(page, shots, "08-move-back", expect="50,000円")
        assert bank_result(page, again, shots, "08-move-back") == EN("bank.result.funding_executed")
        assert ledger_balance(page, again, "Taro Suzuki") == "470,000 JPY"
        moves = page.locator("#movements li")
        assert EN("ledger.directions.wallet_to_deposit") in moves.first.inner_text()
        assert "350,000 JPY" in moves.nth(1).inner_text()
        shots(page, "08-ledger")

        # The ledger in Japanese: amounts as the bank writes them, times in the viewer's zone
        # (the script from the parties' own origin ran), the language link beside the brand.
        page.goto(again.party("/ledger/?lang=ja"))
        check_page(page, lang="ja")
        taro = page.locator("#balances tr", has_text="鈴木 太郎").locator("td.amount")
        assert taro.inner_text() == "470,000円"
        assert "350,000円" in moves.nth(1).inner_text()
        assert "JPY" not in page.locator("main").inner_text()
        stamp = page.locator("#movements time").first
        assert (stamp.get_attribute("title") or "").endswith(" UTC"), stamp.inner_text()
        brand = page.locator("a.brand").bounding_box()
        switch = page.locator("a.lang").bounding_box()
        assert brand is not None and switch is not None
        assert abs(switch["y"] - brand["y"]) < brand["height"], (brand, switch)  # one row
        assert switch["height"] < 2 * brand["height"], switch  # one line
        shots(page, "08-ledger-ja")
    assert again.stops == [0], again.output()
