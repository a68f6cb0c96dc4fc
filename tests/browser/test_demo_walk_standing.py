"""A standing top-up, walked in a real browser (a phone, 390 x 844) against a demo of its own,
started as ``./scripts/demo`` starts it:

1. at the bank, Hanako signs in with her smartphone credential and links her deposit account and
   CBDC wallet;
2. she sets up "Automatic top-up" (at most 30,000 JPY a top-up, 50,000 JPY a day, 30 days) and
   approves it once on the service's consent page, which says what the bank may then do without
   asking her; the bank shows it active, with its bounds and end;
3. she sends Taro 70,000 JPY with 50,000 JPY in her wallet: the bank tops the wallet up with the
   missing 20,000 JPY by itself (the reverse waterfall), then she approves the transfer as usual;
   the bank's page says both, and the ledger lists the automatic movement and the transfer;
4. "Top up now (automatic)" 30,000 JPY: executed without a consent page (the day at 50,000);
5. 40,000 JPY to Taro with 30,000 JPY in the wallet: a top-up of 10,000 would take the day above
   50,000: the service refuses it, the bank says why in words and does not send the transfer, in
   English and in Japanese; the home page in Japanese shows the automatic top-up;
6. "Stop": ended through the links API; the bank says so and offers to set it up again.

Each step asserts on what the person sees and saves a screenshot (test-artifacts/browser/).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser_harness import OriginGuard, Shots
from demo_process import RunningDemo, launcher_problem, running_demo
from page_checks import check_page
from test_demo_walk_funding import (
    EN,
    STRAY_SPACE_AROUND_YEN,
    approve,
    bank_result,
    ledger_balance,
    log_in_with_phone,
    send,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def home(page: Page, demo: RunningDemo, lang: str = "en") -> None:
    page.goto(demo.party(f"/bank/?lang={lang}"))
    page.wait_for_selector("#standing-heading")
    check_page(page, lang=lang)


def test_a_standing_top_up_reverse_waterfall_daily_bound_and_stop(
    tmp_path: Path, phone: Page, guard: OriginGuard, shots: Shots
) -> None:
    problem = launcher_problem()
    if problem:
        pytest.skip(problem)
    page = phone
    with running_demo(tmp_path / "state", tmp_path / "demo.log") as demo:
        guard.allow(demo.service_url, demo.parties_url)

        # 1. Sign in as Hanako and link her accounts.
        page.goto(demo.party("/bank/?lang=en"))
        check_page(page)
        page.click('form[action$="/bank/login"] button')
        log_in_with_phone(page, demo, "hanako", shots, "01")
        page.click("#confirm")
        approve(page, shots, "01", expect="Demo Bank")
        page.wait_for_selector("#link-heading")
        assert page.locator("#standing-heading").count() == 0  # not before the link
        page.click('form[action$="/bank/link"] button')
        approve(page, shots, "01-link", expect="ヤマダ ハナコ（CBDC ウォレット ****7701）")
        assert bank_result(page, demo, shots, "01-link") == EN("bank.operation.link_allowed")

        # 2. Set up automatic top-up; approve it once at the service.
        home(page, demo)
        explain = page.locator("#standing-explain").inner_text()
        assert explain == EN("bank.standing.explain"), explain
        page.fill("#standing-max", "30,000")
        page.fill("#standing-daily", "50,000")
        page.select_option("#standing-days", "30")
        page.locator("#standing-heading").scroll_into_view_if_needed()
        shots(page, "02-standing-form")
        page.click("#standing-start")
        # The service's consent page says what the bank may do without asking, also in Japanese.
        page.wait_for_selector('button[value="approve"]')
        page.click("#switch-language")
        check_page(page, lang="ja")
        said = page.locator("main").inner_text()
        assert "その都度の確認なしに自動で入金" in said, said
        assert "1回30,000円まで、1日50,000円まで、30日間有効です。" in said, said
        assert not re.search(STRAY_SPACE_AROUND_YEN, said), said
        shots(page, "02-standing-consent-ja")
        page.click("#switch-language")
        check_page(page, lang="en")
        consent = approve(page, shots, "02-standing", expect="automatically")
        assert "30,000" in consent and "50,000" in consent and "30 days" in consent, consent
        # The accounts as the bank registered them at the service: the holder's name in katakana.
        assert "ヤマダ ハナコ（普通預金 ****4501）" in consent, consent
        assert "ヤマダ ハナコ（CBDC ウォレット ****7701）" in consent, consent
        assert bank_result(page, demo, shots, "02-standing") == EN(
            "bank.operation.standing_allowed"
        )
        summary = page.locator(".summary").inner_text()
        assert "up to 30,000 JPY a top-up, 50,000 JPY a day, for 30 days" in summary, summary
        home(page, demo)
        status = page.locator("#standing-status").inner_text()
        assert status.startswith(
            "Automatic top-up active: up to 30,000 JPY a top-up, 50,000 JPY a day, until "
        ), status
        assert page.locator("#standing-start").count() == 0
        page.locator("#standing-heading").scroll_into_view_if_needed()
        shots(page, "02-standing-active")

        # 3. The reverse waterfall: 70,000 JPY to Taro with 50,000 JPY in the wallet.
        wallet = page.locator('li.account[data-kind="cbdc_wallet"] .account-balance')
        assert wallet.inner_text() == "50,000 JPY"
        taro_before = ledger_balance(page, demo, "Taro Suzuki")
        send(page, demo, "taro", "70,000")
        approve(page, shots, "03", expect="70,000")  # the transfer's own consent, as usual
        headline = bank_result(page, demo, shots, "03")
        assert headline == (
            "Topped up 20,000 JPY automatically from your deposit account, "
            "then sent: the ledger executed the transfer"
        ), headline
        assert page.locator(".summary").inner_text() == "Send 70,000 JPY to Taro Suzuki"
        page.click("a.lang")
        check_page(page, lang="ja")
        headline = page.locator("#result").inner_text()
        assert headline == (
            "預金口座から20,000円を自動で入金したうえで、送金しました（台帳が実行しました）"
        ), headline
        link = page.locator("#top-up-before").inner_text()
        assert link == "先に行った20,000円の自動入金を見る", link
        assert not re.search(STRAY_SPACE_AROUND_YEN, headline + link), headline + link
        shots(page, "03-bank-ja")
        page.click("a.lang")
        check_page(page, lang="en")
        page.click("#top-up-before a")
        headline = bank_result(page, demo, shots, "03-top-up")
        assert headline == EN("bank.result.auto_funding_executed"), headline
        assert page.locator("#automatic").inner_text() == EN("bank.operation.automatic")
        summary = page.locator(".summary").inner_text()
        assert summary == EN("bank.operation.auto_funding_summary", amount="20,000 JPY"), summary
        made_for = page.locator("#made-for").inner_text()
        assert made_for == "Made for your transfer of 70,000 JPY to Taro Suzuki.", made_for
        assert ledger_balance(page, demo, "Hanako Yamada") == "0 JPY"
        assert taro_before == "20,000 JPY", taro_before
        assert ledger_balance(page, demo, "Taro Suzuki") == "90,000 JPY"
        movement = page.locator("#movements li").first.inner_text()
        assert "20,000 JPY" in movement and EN("ledger.executed") in movement, movement
        assert EN("ledger.directions.deposit_to_wallet") in movement, movement
        executed = page.locator("#journal li").first.inner_text()
        assert "70,000 JPY" in executed and "Hanako Yamada → Taro Suzuki" in executed, executed
        check_page(page)
        shots(page, "03-ledger")

        # 4. "Top up now (automatic)": no consent page, executed at once.
        home(page, demo)
        page.fill("#standing-amount", "30,000")
        page.click("#standing-top-up-now")
        headline = bank_result(page, demo, shots, "04")
        assert headline == EN("bank.result.auto_funding_executed"), headline
        assert page.locator("#automatic").inner_text() == EN("bank.operation.automatic")
        assert '"standing_authorization_id"' in page.locator("#approved").inner_text()

        # 5. 40,000 JPY with 30,000 in the wallet: a 10,000 top-up would take the day to
        #    60,000, above the 50,000 approved: refused, in words; the transfer is not sent.
        send(page, demo, "taro", "40,000")
        headline = bank_result(page, demo, shots, "05-refused")
        assert headline == EN("bank.result.auto_funding_denied"), headline
        reason = page.locator("#reason").inner_text()
        assert reason.startswith(
            "Today's automatic top-ups would go above 50,000 JPY, the most you approved per day."
        ), reason
        assert "standing_daily_limit_exceeded" in reason
        not_sent = page.locator("#transfer-not-sent").inner_text()
        assert not_sent == "So the transfer of 40,000 JPY to Taro Suzuki was not sent.", not_sent
        assert page.locator("#ledger-outcome").count() == 0
        page.click("a.lang")
        check_page(page, lang="ja")
        said = page.locator("main").inner_text()
        assert "自動入金は拒否されました" in said, said
        assert "承認した1日の上限（50,000円）を超えます" in said, said
        assert "鈴木 太郎さんへの40,000円の送金は行っていません" in said, said
        assert not re.search(STRAY_SPACE_AROUND_YEN, said), said
        shots(page, "05-refused-ja")
        home(page, demo, "ja")
        status = page.locator("#standing-status").inner_text()
        assert status.startswith("自動入金が有効です：1回30,000円まで、1日50,000円まで、"), status
        assert not re.search(STRAY_SPACE_AROUND_YEN, status), status
        assert wallet.inner_text() == "30,000円"
        page.locator("#standing-heading").scroll_into_view_if_needed()
        shots(page, "05-home-ja")
        assert ledger_balance(page, demo, "Hanako Yamada") == "30,000 JPY"
        assert ledger_balance(page, demo, "Taro Suzuki") == "90,000 JPY"

        # 6. Stop: ended at the service through the links API; set-up is offered again.
        home(page, demo)
        page.click("#standing-stop")
        page.wait_for_selector("#standing-notice")
        check_page(page)
        notice = page.locator("#standing-notice").inner_text()
        assert notice == EN("bank.standing.standing_stopped"), notice
        assert page.locator("#standing-status").count() == 0
        assert page.locator("#standing-start").count() == 1
        assert page.locator("#standing-top-up-now").count() == 0
        shots(page, "06-stopped")
    assert demo.stops == [0], demo.output()
