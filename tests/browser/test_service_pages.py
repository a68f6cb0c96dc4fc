"""The service's own pages in headless Chromium, as a person sees them on a phone (390 x 844) and
once on a desktop screen: the login page listing the anchors and used from the keyboard, the
wallet page's QR code (read back from the screen by a QR reader) and same-device link, the poll
that moves on to consent once the phone has answered, consent (allowed, and refused with the
reason in words), language switching, error pages that say what to do next, the auditor console
and the holders' /my/links login, and the root page in demo mode.

Every page is checked by page_checks.check_page (lang, title, labelled controls, no horizontal
scrolling at 390 px); the fixtures fail a test on any request to another origin and on console
errors. Screenshots: test-artifacts/browser/<test>/.

The service runs on SQLite here: these tests are about pages, the storage tests cover both
databases."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_harness import OriginGuard, Shots
from page_checks import assert_no_horizontal_scroll, check_page, decode_qr, tab_to
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

from trustanchor.services import auditors as designations
from trustanchor.web.i18n import catalog

if TYPE_CHECKING:
    from playwright.sync_api import Page

PARTIES = "http://127.0.0.1:18001"


def text(key: str, lang: str = "en", **values: object) -> str:
    """A text as the page shows it (rendered, so unescaped)."""
    template = catalog(lang)[key]
    return template.format(**values) if values else template


@pytest.fixture
def payments() -> Payments:
    return Payments()


@contextmanager
def _server(
    tmp_path: Path, payments: Payments, overrides: dict[str, dict[str, str]] | None = None
) -> Iterator[RunningServer]:
    settings = test_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'trustanchor.db'}",
        port=free_port(),
        anchors=[anchor.declaration() for anchor in payments.anchors.values()],
        clients=payments.clients(),
        overrides=overrides,
    )
    settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
    with running_server(settings) as server:
        yield server


@pytest.fixture
def server(tmp_path: Path, payments: Payments, guard: OriginGuard) -> Iterator[RunningServer]:
    """Issue 4's ecosystem (two anchor sets, three anchors, a bank); the pages may load from the
    service only, and the bank's redirect URI answers with a stub page."""
    with _server(tmp_path, payments) as running:
        guard.allow(running.issuer)
        guard.stub(BANK_REDIRECT)
        yield running


@pytest.fixture
def bank(server: RunningServer, payments: Payments) -> Bank:
    return Bank(server, payments)


def login_url(bank: Bank) -> str:
    """A plain OpenID Connect login pushed by the bank (PAR): where it sends the browser."""
    return bank.rp.authorization_url(bank.rp.request_uri(Pkce.generate(), scope="openid"))


def anchor_button(page: Page, anchor_id: str) -> str:
    return f"form:has(input[name=anchor][value='{anchor_id}']) button"


def present_from_phone(
    page: Page, server: RunningServer, phone: WalletApp, *, same_device: bool = False
) -> None:
    """On the wallet page: the wallet opens the same-device link and answers. Cross-device (a
    phone beside the screen), the page's poll moves on by itself to what follows (consent), and
    that login starts no SSO session; ``same_device``, the wallet sends this browser to its
    ``redirect_uri``, which resumes the login here (it may start one)."""
    link = page.get_attribute("#same-device", "href")
    assert link and link.startswith("openid4vp://?"), link
    answer = phone.respond(phone.request_object(link))
    assert answer.status_code == 200, answer.text
    if same_device:
        page.goto(answer.json()["redirect_uri"])
    page.wait_for_selector("form[action$='/consent']")


def log_in(page: Page, server: RunningServer, holder: Holder, anchor_id: str) -> None:
    """From the service's login page to its consent page, through ``anchor_id``."""
    page.click(anchor_button(page, anchor_id))
    page.wait_for_selector("#same-device")
    phone = WalletApp(server, holder.wallet, holder.credential(anchor_id))
    present_from_phone(page, server, phone)


def callback_parameters(page: Page) -> dict[str, str]:
    page.wait_for_selector("#client-callback")
    assert page.url.startswith(BANK_REDIRECT + "?"), page.url
    return {name: values[0] for name, values in parse_qs(urlsplit(page.url).query).items()}


# ------------------------------------------------------------------------------ the login walk


def test_login_lists_the_anchors_and_works_from_the_keyboard_to_consent(
    phone: Page, shots: Shots, server: RunningServer, bank: Bank, payments: Payments
) -> None:
    phone.goto(login_url(bank))
    check_page(phone, lang="en")
    assert phone.locator("h1").inner_text() == text("login.heading", client="Test Bank")
    names = phone.locator(".anchor-name").all_inner_texts()
    assert sorted(names) == sorted(f"{anchor} (test)" for anchor in payments.anchors)
    shots(phone, "login")

    # Keyboard only: Tab (focus always visible) to the first anchor, Enter.
    first = tab_to(phone, "button.anchor")
    assert first["text"].startswith(names[0])
    shots(phone, "login-keyboard-focus")
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#same-device")
    check_page(phone, lang="en")
    assert phone.locator("h1").inner_text() == text("wallet.heading", anchor=names[0])
    qr = phone.locator(".qr svg")
    assert qr.is_visible() and qr.get_attribute("role") == "img"
    assert qr.get_attribute("aria-label") == text("wallet.qr_title")
    link = phone.get_attribute("#same-device", "href")
    assert decode_qr(phone) == link  # what a phone camera reads is the same-device link
    assert phone.locator("#status").inner_text() == text("wallet.waiting")
    shots(phone, "wallet")

    anchor_id = next(a for a in payments.anchors if names[0].startswith(a))
    holder = Holder(server, payments, "keyboard-person")
    present_from_phone(
        phone, server, WalletApp(server, holder.wallet, holder.credential(anchor_id))
    )
    check_page(phone, lang="en")
    assert phone.locator("h1").inner_text() == text("consent.heading", client="Test Bank")
    shots(phone, "consent")
    tab_to(phone, "button[value=approve]")
    phone.keyboard.press("Enter")
    answer = callback_parameters(phone)
    assert answer["iss"] == server.issuer and answer["code"]


def test_the_language_switch_changes_what_the_pages_say(
    phone: Page, shots: Shots, server: RunningServer, bank: Bank
) -> None:
    phone.goto(login_url(bank))
    heading = phone.locator("h1")
    assert heading.inner_text() == text("login.heading", client="Test Bank")
    phone.click("#switch-language")
    check_page(phone, lang="ja")
    assert heading.inner_text() == text("login.heading", "ja", client="テスト銀行")
    assert phone.title().startswith(text("login.title", "ja"))
    buttons = phone.locator(".anchor-action").all_inner_texts()
    assert buttons and set(buttons) == {text("login.sd_jwt_vc_button", "ja")}
    assert phone.locator("#switch-language").inner_text() == "English"
    shots(phone, "login-ja")

    # The choice sticks: the wallet page comes in Japanese, and switches back.
    phone.click(anchor_button(phone, JP_HIGH))
    phone.wait_for_selector("#same-device")
    check_page(phone, lang="ja")
    assert phone.locator("#same-device").inner_text() == text("wallet.same_device", "ja")
    shots(phone, "wallet-ja")
    phone.click("#switch-language")
    check_page(phone, lang="en")
    assert phone.locator("#same-device").inner_text() == text("wallet.same_device")
    assert phone.locator(".qr svg").is_visible()
    shots(phone, "wallet-en")


def _linked(
    server: RunningServer, payments: Payments, bank: Bank, subject: str, anchor: str
) -> tuple[Holder, str]:
    """A person who linked a deposit account and a CBDC wallet at the bank (outside the
    browser); their wallet account id."""
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    bank.redeem(person.decide(person.log_in(page, anchor), "approve")["code"], pkce)
    return person, wallet


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_refused_transfer_is_explained_on_the_consent_page(
    phone: Page,
    shots: Shots,
    server: RunningServer,
    bank: Bank,
    payments: Payments,
    lang: str,
) -> None:
    taro, taro_wallet = _linked(server, payments, bank, "taro", JP_SUBSTANTIAL)
    _, pierre_wallet = _linked(server, payments, bank, "pierre", EU_HIGH)
    url = bank.authorization_url([transfer(taro_wallet, pierre_wallet, "5000")], Pkce.generate())
    phone.goto(server.url(f"/?lang={lang}"))  # the language cookie, as a person's choice
    phone.goto(url)
    log_in(phone, server, taro, JP_SUBSTANTIAL)
    check_page(phone, lang=lang)
    refusal = phone.locator(".refusal")
    assert refusal.inner_text() == text("policy.reasons.no_common_anchor_set", lang)
    assert phone.locator("h2", has_text=text("policy.denied_heading", lang)).is_visible()
    assert phone.locator("button[value=approve]").count() == 0  # nothing to allow
    client = "テスト銀行" if lang == "ja" else "Test Bank"
    assert phone.locator("#denied-next").inner_text() == text(
        "policy.denied_next", lang, client=client
    )
    back = phone.locator("button[value=deny]")
    assert back.inner_text() == text("policy.return_button", lang, client=client)
    shots(phone, f"consent-refused-{lang}")
    tab_to(phone, "button[value=deny]")
    phone.keyboard.press("Enter")
    answer = callback_parameters(phone)
    assert answer["error"] == "access_denied"


# ------------------------------------------------------------------------------------- errors


def test_error_pages_say_what_happened_and_what_to_do_next(
    phone: Page, shots: Shots, server: RunningServer
) -> None:
    cases = [
        (
            "/authorize?client_id=bank&request_uri=urn:ietf:params:oauth:request_uri:unknown",
            "invalid_request_uri",
        ),
        ("/interaction/no-such-login", "interaction_gone"),
        ("/no/such/page", "not_found"),
    ]
    for path, key in cases:
        response = phone.goto(server.url(path))
        assert response is not None and response.status in (400, 404)
        check_page(phone, lang="en")
        assert phone.locator("h1").inner_text() == text("errors.heading")
        assert phone.locator("#error-message").inner_text() == text(f"errors.{key}")
        assert phone.locator("#error-next").inner_text() == text(f"errors.next.{key}")
        shots(phone, f"error-{key}")
        phone.click("#switch-language")
        check_page(phone, lang="ja")
        assert phone.locator("#error-message").inner_text() == text(f"errors.{key}", "ja")
        assert phone.locator("#error-next").inner_text() == text(f"errors.next.{key}", "ja")
        shots(phone, f"error-{key}-ja")
        phone.click("#switch-language")
    # The unknown page leads home.
    phone.click(f"text={text('errors.home')}")
    phone.wait_for_url(server.url("/"))
    check_page(phone, lang="en")
    shots(phone, "home")


# ------------------------------------------------------------------ first-party login pages


@pytest.mark.parametrize(
    ("path", "prefix"),
    [("/auditor/login", "auditor.login"), ("/my/login", "my_links.login")],
    ids=["auditor", "my-links"],
)
def test_auditor_and_my_links_login_pages_lead_to_the_services_login(
    phone: Page, shots: Shots, server: RunningServer, path: str, prefix: str
) -> None:
    phone.goto(server.url(path))
    check_page(phone, lang="en")
    assert phone.locator("h1").inner_text() == text(f"{prefix}.heading")
    shots(phone, "login")
    phone.click("#switch-language")
    check_page(phone, lang="ja")
    assert phone.locator("h1").inner_text() == text(f"{prefix}.heading", "ja")
    shots(phone, "login-ja")
    tab_to(phone, "button.primary")
    phone.keyboard.press("Enter")
    phone.wait_for_selector("button.anchor")
    check_page(phone, lang="ja")
    assert phone.locator(".anchor-name").count() == 3
    shots(phone, "service-login-ja")


def test_a_holder_sees_and_removes_a_link_on_my_links(
    phone: Page, shots: Shots, server: RunningServer, bank: Bank, payments: Payments
) -> None:
    hanako, _ = _linked(server, payments, bank, "hanako", JP_HIGH)
    phone.goto(server.url("/my/links"))
    phone.wait_for_url(server.url("/my/login"))
    phone.click("button.primary")
    phone.wait_for_selector("button.anchor")
    log_in(phone, server, hanako, JP_HIGH)
    phone.click("button[value=approve]")
    phone.wait_for_url(server.url("/my/links"))
    check_page(phone, lang="en")
    assert phone.locator("h1").inner_text() == text("my_links.list.heading")
    item = phone.locator("li.my-link")
    assert item.count() == 1
    assert "hanako savings" in item.inner_text() and "hanako wallet" in item.inner_text()
    shots(phone, "links")
    phone.click("#switch-language")
    check_page(phone, lang="ja")
    assert phone.locator("h1").inner_text() == text("my_links.list.heading", "ja")
    shots(phone, "links-ja")
    phone.click("#switch-language")
    phone.wait_for_selector("html[lang=en]")  # the English page, not the Japanese one leaving

    remove = tab_to(phone, "li.my-link button")
    assert remove["text"] == text("my_links.list.remove")
    phone.keyboard.press("Enter")
    phone.wait_for_selector("form[action='/my/links/remove'] button.primary")
    check_page(phone, lang="en")
    assert phone.locator("h1").inner_text() == text("my_links.confirm.heading")
    shots(phone, "confirm")
    phone.click("form[action='/my/links/remove'] button.primary")
    notice = phone.locator("#removed-notice")
    notice.wait_for()
    assert notice.inner_text() == text("my_links.list.removed")
    assert phone.locator("#no-links").inner_text() == text("my_links.list.empty")
    check_page(phone, lang="en")
    shots(phone, "removed")


def test_the_auditor_console_on_a_desktop_screen_and_a_phone(
    desktop: Page, shots: Shots, server: RunningServer, payments: Payments
) -> None:
    auditor = Holder(server, payments, "auditor-1")
    desktop.goto(server.url("/auditor/login"))
    desktop.click("button.primary")
    desktop.wait_for_selector("button.anchor")
    log_in(desktop, server, auditor, JP_HIGH)
    desktop.click("button[value=approve]")
    reference = desktop.locator("#auditor-reference")
    reference.wait_for()
    check_page(desktop, lang="en")
    assert desktop.locator("h1").inner_text() == text("auditor.forbidden.heading")
    shots(desktop, "not-designated")

    designations.add(
        server.services.db, reference.inner_text(), "Browser auditor", now=int(time.time())
    )
    server.services.audit.integrate_pending()
    desktop.goto(server.url("/auditor/"))
    check_page(desktop, lang="en")
    assert desktop.locator("h1").inner_text() == text("auditor.overview.heading")
    assert int(desktop.locator("#checkpoint-size").inner_text()) > 0
    assert desktop.locator("figure.chart svg").count() == 2
    shots(desktop, "overview")
    for target in ("entries", "health"):
        desktop.click(f".console-nav a[href='/auditor/{target}']")
        desktop.wait_for_url(server.url(f"/auditor/{target}"))
        check_page(desktop, lang="en")
        shots(desktop, target)
    assert desktop.locator("#health-result.ok").count() == 1

    # Entries as sentences, times in the browser's zone (the page's script rewrote the UTC
    # text; the browser is put in Tokyo's zone), the raw entry one click away, and the filter
    # used from the form.
    cdp = desktop.context.new_cdp_session(desktop)
    cdp.send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    desktop.goto(server.url("/auditor/entries"))
    login = desktop.locator("tr[data-kind=login][data-outcome=succeeded]").first
    sentence = login.locator("p.sentence").inner_text()
    assert sentence.startswith("Login at ") and " succeeded — holder " in sentence, sentence
    stamp = login.locator("time")
    utc_text = stamp.get_attribute("title") or ""
    utc_at = datetime.strptime(utc_text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    tokyo = utc_at.astimezone(timezone(timedelta(hours=9)))
    shown = stamp.inner_text()
    assert shown == tokyo.strftime("%Y-%m-%d %H:%M:%S GMT+9"), (shown, utc_text)
    assert stamp.get_attribute("datetime") == utc_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = login.locator("details.raw")
    assert not raw.locator("pre").is_visible()
    raw.locator("summary").click()
    assert '"kind":"login"' in raw.locator("pre").inner_text()
    shots(desktop, "entries-raw-open")
    desktop.click("details.filters summary")
    desktop.check("input[name=kind][value=login]")
    desktop.check("input[name=outcome][value=succeeded]")
    desktop.click("#entries-filter button[type=submit]")
    desktop.wait_for_url("**/auditor/entries?kind=login&outcome=succeeded**")
    check_page(desktop, lang="en")
    kinds = desktop.locator("#entries-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind + '/' + r.dataset.outcome)"
    )
    assert kinds and set(kinds) == {"login/succeeded"}, kinds
    shots(desktop, "entries-filtered")
    desktop.goto(server.url("/auditor/entries?kind=login&outcome=succeeded&lang=ja"))
    check_page(desktop, lang="ja")
    ja_sentence = desktop.locator("p.sentence").first.inner_text()
    assert "でのログインに成功" in ja_sentence, ja_sentence
    ja_time = desktop.locator("#entries-table time").first.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (JST|GMT\+9)", ja_time), ja_time
    shots(desktop, "entries-filtered-ja")
    desktop.goto(server.url("/auditor/entries?from=2026-02-30&lang=en"))
    assert desktop.locator("#filter-refused").inner_text() == text(
        "auditor.filter.refused.bad_date", parameter="from"
    )
    shots(desktop, "entries-refused-filter")

    # The same pages on a phone: one column, nothing wider than the screen.
    desktop.set_viewport_size({"width": 390, "height": 844})
    for path in (
        "/auditor/",
        "/auditor/entries",
        "/auditor/entries?lang=ja",
        "/auditor/health",
        "/auditor/?lang=ja",
    ):
        desktop.goto(server.url(path))
        check_page(desktop)
        assert_no_horizontal_scroll(desktop)
        shots(desktop, f"phone-{path.strip('/').replace('/', '-').replace('?', '-') or 'overview'}")


# ------------------------------------------------------------------------- demo landing page


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_root_page_in_demo_mode_lists_every_part_of_the_demo(
    phone: Page, shots: Shots, guard: OriginGuard, tmp_path: Path, payments: Payments, lang: str
) -> None:
    overrides = {"service": {"mode": "demo"}, "demo": {"parties_url": PARTIES}}
    with _server(tmp_path, payments, overrides) as server:
        guard.allow(server.issuer)
        phone.goto(server.url(f"/?lang={lang}"))
        check_page(phone, lang=lang)
        assert phone.locator("h1").inner_text() == text("landing.heading", lang)
        for key, href in (
            ("wallet", f"{PARTIES}/wallet/"),
            ("bank", f"{PARTIES}/bank/"),
            ("ledger", f"{PARTIES}/ledger/"),
            ("auditor", "/auditor/"),
            ("my_links", "/my/links"),
            ("discovery", "/.well-known/openid-configuration"),
            ("jwks", "/jwks"),
        ):
            part = phone.locator(f"#part-{key}")
            assert part.locator("a").get_attribute("href") == href
            assert part.locator("a").inner_text() == text(f"landing.parts.{key}.name", lang)
            assert part.locator("p").inner_text() == text(f"landing.parts.{key}.sentence", lang)
        assert phone.locator("#demo-anchors li").count() == 3
        shots(phone, f"landing-{lang}")
        # A link of the service's own works from here (the parties are not running in this test).
        phone.click("#part-auditor a")
        phone.wait_for_url(server.url("/auditor/login"))
        check_page(phone, lang=lang)


# ------------------------------------------------------------------ issue 10: who, not me, logout


def test_consent_says_who_logged_in_and_logout_ends_the_session(
    phone: Page, shots: Shots, server: RunningServer, bank: Bank, payments: Payments
) -> None:
    """The consent page leads with who logged in; after approving, the end-session endpoint asks
    before logging out (ja/en), and afterwards the same browser is asked to log in again."""
    phone.goto(login_url(bank))
    phone.click(anchor_button(phone, JP_HIGH))
    phone.wait_for_selector("#same-device")
    holder = Holder(server, payments, "yamada")  # family_name "yamada", given_name "Test"
    wallet = WalletApp(server, holder.wallet, holder.credential(JP_HIGH))
    present_from_phone(phone, server, wallet, same_device=True)  # the SSO session to end below
    check_page(phone, lang="en")
    assert phone.locator("#who .who-name").inner_text() == "yamada T."
    assert phone.locator("#who button").inner_text() == text("consent.not_me")
    shots(phone, "consent-who")
    phone.click("button[value=approve]")
    assert callback_parameters(phone)["code"]

    phone.goto(server.url("/logout"))
    check_page(phone, lang="en")
    assert phone.locator("h1").inner_text() == text("end_session.confirm.heading")
    shots(phone, "logout-confirm")
    phone.click("#switch-language")
    check_page(phone, lang="ja")
    shots(phone, "logout-confirm-ja")
    phone.click("button[value=logout]")
    phone.wait_for_selector("#logged-out")
    check_page(phone, lang="ja")
    shots(phone, "logged-out-ja")

    phone.goto(login_url(bank))  # no session any more: the anchors again, not consent
    check_page(phone)
    assert phone.locator("button.anchor").count() > 0
