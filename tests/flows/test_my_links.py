"""Issue 4, the holders' self-service page for account links (/my/links) over real HTTP: a person
links their deposit account and CBDC wallet through the bank, then opens /my/links and logs in
through the service's own login (a first-party client: PAR, /authorize, wallet login with the
same credential at the same anchor, consent, callback redeemed in-process), sees the link and
removes it; the bank's token that relied on it is inactive at introspection. Another person can
neither see nor remove it, a removal without the session's CSRF token is refused, logout ends
the session, and the page renders in Japanese.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from markupsafe import escape
from support.html import parse
from support.payments import JP_HIGH, JP_SUBSTANTIAL, Bank, Holder, Payments, link
from support.rp import Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.clock import SystemClock
from trustanchor.web.i18n import catalog


@pytest.fixture
def payments() -> Payments:
    return Payments()


@pytest.fixture
def server(tmp_path: Path, database_url: str, payments: Payments) -> Iterator[RunningServer]:
    with payments.running(tmp_path, database_url) as running:
        yield running


@pytest.fixture
def bank(server: RunningServer, payments: Payments) -> Bank:
    return Bank(server, payments)


def linked_person(
    server: RunningServer, payments: Payments, bank: Bank, subject: str, anchor_id: str
) -> tuple[Holder, dict[str, Any]]:
    """A person whose deposit account and wallet the bank registered and who linked them; the
    bank's tokens for that link."""
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    answer = person.decide(person.log_in(page, anchor_id), "approve")
    return person, bank.redeem(answer["code"], pkce)


def log_in_to_my_links(
    server: RunningServer, person: Holder, anchor_id: str, *, lang: str = "en"
) -> requests.Response:
    """/my/links → its login page → the first-party login through ``anchor_id`` → the list."""
    anonymous = person.browser.get(server.url("/my/links"))
    assert anonymous.status_code == 303 and anonymous.headers["Location"] == "/my/login"
    login_page = person.open(server.url(f"/my/login?lang={lang}"))
    started = person.browser.submit(login_page.text, "/my/login")
    assert started.status_code == 303, started.text
    assert started.headers["Location"].startswith(server.url("/authorize?client_id=")), started
    consent = person.log_in(person.open(started.headers["Location"]), anchor_id)
    approved = person.browser.submit(consent.text, "/consent", decision="approve")
    assert approved.status_code == 303, approved.text
    assert approved.headers["Location"].startswith(server.url("/my/callback?"))
    page = person.browser.follow(approved)
    assert page.status_code == 200, page.text
    assert page.url == server.url("/my/links")
    return page


def link_ids(page: requests.Response) -> list[str]:
    return re.findall(r'id="link-(lnk_[A-Za-z0-9_-]+)"', page.text)


def text_of(key: str, lang: str = "en", **values: object) -> str:
    text = catalog(lang)[key]
    return str(escape(text.format(**values) if values else text))  # as the templates escape


def csrf_of(page: requests.Response) -> str:
    return parse(page.text).form_with("/my/logout").fields["csrf"]


def introspection(server: RunningServer, payments: Payments) -> RelyingParty:
    return RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")


def active(ledger: RelyingParty, token: str) -> bool:
    response = ledger.post("/introspect", {"token": token})
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def remove(person: Holder, server: RunningServer, **form: str) -> requests.Response:
    return person.browser.session.post(
        server.url("/my/links/remove"), data=form, allow_redirects=False, timeout=10
    )


# ---------------------------------------------------------------------------------------------


def test_a_holder_sees_their_link_and_removing_it_revokes_the_dependent_token(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, tokens = linked_person(server, payments, bank, "taro", JP_HIGH)
    ledger = introspection(server, payments)
    assert active(ledger, tokens["access_token"])

    page = log_in_to_my_links(server, taro, JP_HIGH)
    [link_id] = link_ids(page)
    assert [x["link_id"] for x in bank.api("GET", "/links").json()["links"]] == [link_id]
    for shown in ("taro savings", "taro wallet", "Test Bank", text_of("my_links.status.ok")):
        assert shown in page.text
    assert text_of("my_links.status.flagged") not in page.text

    confirm = taro.open(server.url(f"/my/links/remove?link={link_id}"))
    assert text_of("my_links.confirm.consequence") in confirm.text
    assert (
        text_of("my_links.confirm.question", deposit="taro savings", wallet="taro wallet")
        in confirm.text
    )
    removed = taro.browser.submit(confirm.text, "/my/links/remove")
    assert removed.status_code == 303 and removed.headers["Location"] == "/my/links?notice=removed"
    after = taro.browser.follow(removed)
    assert text_of("my_links.list.removed") in after.text
    assert link_ids(after) == [] and text_of("my_links.list.empty") in after.text

    assert not active(ledger, tokens["access_token"])
    assert bank.api("GET", "/links").json()["links"] == []
    refreshed = bank.rp.post(
        "/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    # Removing it again: it is no longer an active link of theirs.
    again = remove(taro, server, csrf=csrf_of(after), link=link_id)
    assert again.status_code == 404


def test_another_person_can_neither_see_nor_remove_a_link(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, taro_tokens = linked_person(server, payments, bank, "taro", JP_HIGH)
    hanako, _ = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    links = {x["deposit_account"]: x["link_id"] for x in bank.api("GET", "/links").json()["links"]}
    assert len(links) == 2

    page = log_in_to_my_links(server, hanako, JP_SUBSTANTIAL)
    [own] = link_ids(page)
    taros = next(link_id for link_id in links.values() if link_id != own)
    assert "hanako savings" in page.text
    assert "taro" not in page.text and taros not in page.text

    peek = hanako.browser.get(server.url(f"/my/links/remove?link={taros}"))
    assert peek.status_code == 404 and "taro" not in peek.text
    forged = remove(hanako, server, csrf=csrf_of(page), link=taros)
    assert forged.status_code == 404
    assert text_of("my_links.not_found") in forged.text

    # Nothing changed: both links stay, taro's token still works.
    assert sorted(x["link_id"] for x in bank.api("GET", "/links").json()["links"]) == sorted(
        links.values()
    )
    assert active(introspection(server, payments), taro_tokens["access_token"])
    assert link_ids(log_in_to_my_links(server, taro, JP_HIGH)) == [taros]


def test_removal_without_the_sessions_csrf_token_is_refused(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, tokens = linked_person(server, payments, bank, "taro", JP_HIGH)
    page = log_in_to_my_links(server, taro, JP_HIGH)
    [link_id] = link_ids(page)

    missing = remove(taro, server, link=link_id)
    assert missing.status_code == 400 and text_of("errors.csrf") in missing.text
    wrong = remove(taro, server, csrf="A" * 43, link=link_id)
    assert wrong.status_code == 400
    # A CSRF token of another session of the same person does not do either.
    other_browser = Holder(server, payments, "taro")
    other_browser.wallet = taro.wallet
    other = log_in_to_my_links(server, other_browser, JP_HIGH)
    assert link_ids(other) == [link_id]
    assert remove(taro, server, csrf=csrf_of(other), link=link_id).status_code == 400

    assert [x["link_id"] for x in bank.api("GET", "/links").json()["links"]] == [link_id]
    assert active(introspection(server, payments), tokens["access_token"])


def test_logout_ends_the_session(server: RunningServer, payments: Payments, bank: Bank) -> None:
    taro, tokens = linked_person(server, payments, bank, "taro", JP_HIGH)
    page = log_in_to_my_links(server, taro, JP_HIGH)
    [link_id] = link_ids(page)
    session = str(taro.browser.session.cookies.get("ta_my"))
    csrf = csrf_of(page)

    out = taro.browser.submit(page.text, "/my/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/my/login?notice=logged_out"
    assert text_of("my_links.login.logged_out") in taro.browser.follow(out).text

    # The old session id, replayed, is over: no list, no removal.
    replayed = requests.get(
        server.url("/my/links"), cookies={"ta_my": session}, allow_redirects=False, timeout=10
    )
    assert replayed.status_code == 303 and replayed.headers["Location"] == "/my/login"
    forged = requests.post(
        server.url("/my/links/remove"),
        data={"csrf": csrf, "link": link_id},
        cookies={"ta_my": session},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 303 and forged.headers["Location"] == "/my/login"
    assert active(introspection(server, payments), tokens["access_token"])


def test_the_page_renders_in_japanese_without_scripts_or_external_assets(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    log_in_to_my_links(server, taro, JP_HIGH, lang="ja")
    page = taro.open(server.url("/my/links?lang=ja"))
    assert '<html lang="ja">' in page.text
    for key in ("my_links.list.heading", "my_links.fields.deposit", "my_links.status.ok"):
        assert text_of(key, "ja") in page.text
    assert "テスト銀行" in page.text  # the intermediary's Japanese display name
    label = text_of(
        "my_links.list.remove_label", "ja", deposit="taro savings", wallet="taro wallet"
    )
    assert f'aria-label="{label}"' in page.text
    [link_id] = link_ids(page)
    confirm = taro.open(server.url(f"/my/links/remove?link={link_id}&lang=ja"))
    assert text_of("my_links.confirm.consequence", "ja") in confirm.text
    for html in (page.text, confirm.text):
        # No inline script or style: only the service's own local-time script file.
        scripts = re.findall(r"<script[^>]*>", html)
        assert set(scripts) <= {'<script src="/static/local-time.js" defer>'}, scripts
        assert "style=" not in html
        assert not re.search(r'(src|href)="(https?:)?//', html)
    assert page.headers["Cache-Control"] == "no-store"

    landing = requests.get(server.url("/?lang=ja"), timeout=10)
    assert (
        'href="/my/links"' in landing.text and text_of("my_links.index_link", "ja") in landing.text
    )
