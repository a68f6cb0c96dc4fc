"""The language switch in every page's header (issue 5), over real HTTP: it leads to the same page
in the other language, keeps the parameters that say where the person is (auditor paging, the
pushed request an /authorize error is about) and never repeats a protocol parameter such as a
one-time code or state (the wallet's response_code is kept on the page that shows it to another
device, where it is not used up); a page answering a form has no switch (its address cannot be
shown again)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests
from support.credentials import Wallet
from support.ecosystem import BANK_REDIRECT, Browser, Ecosystem, WalletApp
from support.html import parse
from support.rp import Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.clock import SystemClock
from trustanchor.web.i18n import catalog


def switch_of(html: str) -> str | None:
    found = re.search(r'<a class="lang" id="switch-language" href="([^"]*)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_switch_keeps_the_place_and_drops_protocol_parameters(server: RunningServer) -> None:
    page = requests.get(server.url("/?window=7d&code=one-time&state=s&lang=en"), timeout=10)
    assert switch_of(page.text) == "?window=7d&lang=ja"
    japanese = requests.get(server.url("/auditor/callback?code=c&state=s&lang=ja"), timeout=10)
    assert switch_of(japanese.text) == "?lang=en"


def test_an_authorize_error_page_switches_to_the_same_error(server: RunningServer) -> None:
    query = "client_id=bank&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aunknown"
    english = requests.get(server.url(f"/authorize?{query}"), timeout=10)
    assert english.status_code == 400
    switch = switch_of(english.text)
    assert switch == f"?{query}&lang=ja"
    japanese = requests.get(server.url("/authorize" + switch), timeout=10)
    assert '<html lang="ja">' in japanese.text
    assert catalog("ja")["errors.invalid_request_uri"] in japanese.text


def test_a_page_answering_a_form_has_no_switch(server: RunningServer) -> None:
    answer = requests.post(server.url("/interaction/unknown/wallet"), data={}, timeout=10)
    assert answer.status_code == 400
    assert catalog("en")["errors.csrf"] in answer.text
    assert switch_of(answer.text) is None


def test_the_continue_on_the_other_device_page_switches_language(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    bank = RelyingParty(server, ecosystem.bank, SystemClock(), redirect_uri=BANK_REDIRECT)
    browser = Browser(server)
    login = browser.follow(browser.get(bank.authorization_url(bank.request_uri(Pkce.generate()))))
    wallet_page = browser.follow(browser.submit(login.text, "/wallet", anchor=ecosystem.anchor_id))
    wallet = Wallet.generate()
    phone = WalletApp(server, wallet, ecosystem.credential(wallet))
    answer = phone.respond(
        phone.request_object(parse(wallet_page.text).links["same-device"].replace("&amp;", "&"))
    )
    # The phone's own browser follows the redirect_uri: not the browser that started the login.
    on_phone = requests.Session()
    done = on_phone.get(answer.json()["redirect_uri"], timeout=10)
    assert catalog("en")["wallet.done_elsewhere"] in done.text
    # The code is used up there; the page it lands on carries none, so switching works.
    assert done.url == server.url("/wallet/elsewhere")
    switch = switch_of(done.text)
    assert switch is not None and "response_code=" not in switch
    again = on_phone.get(server.url(urlsplit(done.url).path) + switch, timeout=10)
    assert '<html lang="ja">' in again.text
    assert catalog("ja")["wallet.done_elsewhere"] in again.text
    # The browser that started the login goes on by its poll, not by the used-up code.
    assert browser.get(answer.json()["redirect_uri"]).status_code == 400
