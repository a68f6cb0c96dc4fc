"""Issue 10 item 8b: every answer under /interaction/ and /wallet/ (login, wallet and consent
pages, the status poll, the request object, the response endpoint, the same-device return page
and their refusals) and every first-party page (/my, /auditor, /logout) carries
``Cache-Control: no-store`` and ``Pragma: no-cache``: they are about one person and one login,
and no shared cache, browser cache or back button may serve them again.

The whole same-device login is walked over HTTP by a browser and a phone (each a requests
Session); every answer either of them receives is collected and checked. SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from support.ecosystem import CREDENTIAL_ID, Browser
from support.html import parse
from support.rp import Pkce
from support.stage import Stage

FIRST_PARTY_PAGES = ("/my/login", "/auditor/login", "/auditor/", "/logout")


def collecting(session: requests.Session, seen: list[requests.Response]) -> None:
    """Every answer this session receives is appended to ``seen`` (requests' response hook)."""

    def keep(response: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
        seen.append(response)
        return response

    session.hooks["response"].append(keep)


def path_of(response: requests.Response) -> str:
    return urlsplit(response.url).path


def test_interaction_wallet_and_first_party_answers_are_no_store(stage: Stage) -> None:
    seen: list[requests.Response] = []
    person = stage.person()
    browser = person.browser
    collecting(browser.session, seen)
    phone = requests.Session()
    collecting(phone, seen)

    # The browser: login page, anchor choice, wallet page, its status poll.
    url = stage.bank.authorization_url(stage.bank.request_uri(Pkce.generate()))
    login_page = browser.follow(browser.get(url))
    assert login_page.status_code == 200
    wallet_page = browser.follow(
        browser.submit(login_page.text, "/wallet", anchor=stage.ecosystem.anchor_id)
    )
    assert wallet_page.status_code == 200
    links = parse(wallet_page.text).links
    interaction_path = path_of(login_page)
    assert browser.get(stage.server.url(interaction_path + "/status")).status_code == 200

    # The phone: the request object by GET and by POST (a refusal: no wallet_nonce twice),
    # then the presentation; the answer names the same-device return page.
    query = parse_qs(urlsplit(links["same-device"].replace("&amp;", "&")).query)
    request_uri = query["request_uri"][0]
    fetched = phone.get(request_uri, timeout=10)
    assert fetched.status_code == 200
    refused_post = phone.post(
        request_uri, data=[("wallet_nonce", "a"), ("wallet_nonce", "b")], timeout=10
    )
    assert refused_post.status_code == 400
    claims = json.loads(base64.urlsafe_b64decode(fetched.text.split(".")[1] + "=="))
    credential = stage.ecosystem.credential(person.wallet)
    vp = person.wallet.present(
        credential, nonce=claims["nonce"], aud=claims["client_id"], iat=int(time.time())
    )
    answer = phone.post(
        claims["response_uri"],
        data={"vp_token": json.dumps({CREDENTIAL_ID: [vp]}), "state": claims["state"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    done = answer.json()["redirect_uri"]
    refused_response = phone.post(claims["response_uri"], data={"state": "x"}, timeout=10)
    assert refused_response.status_code == 400

    # The return page: in the person's own browser (back to the interaction), then again (a
    # refusal page); the page another browser would be sent to ("continue where you started").
    consent = browser.follow(browser.get(done))
    assert consent.status_code == 200
    assert browser.get(done).status_code == 400
    elsewhere = Browser(stage.server)
    collecting(elsewhere.session, seen)
    assert elsewhere.get(stage.server.url("/wallet/elsewhere")).status_code == 200

    # Consent answered; the interaction is then gone (a refusal page).
    decision = browser.submit(consent.text, "/consent", decision="approve")
    assert decision.status_code == 303
    assert browser.get(stage.server.url(interaction_path)).status_code in (400, 404, 410)

    # First-party pages.
    for page in FIRST_PARTY_PAGES:
        browser.get(stage.server.url(page))

    checked = [
        r
        for r in seen
        if path_of(r).startswith(("/interaction/", "/wallet/", "/my/", "/auditor/", "/logout"))
    ]
    cached = [
        (
            r.request.method,
            path_of(r),
            r.status_code,
            r.headers.get("Cache-Control"),
            r.headers.get("Pragma"),
        )
        for r in checked
        if r.headers.get("Cache-Control") != "no-store" or r.headers.get("Pragma") != "no-cache"
    ]
    assert cached == []
    visited = {(r.request.method, path_of(r).split("/")[1], r.status_code) for r in checked}
    # What was walked: pages and refusals on each side (so the check above covered them).
    for expected in [
        ("GET", "interaction", 200),
        ("POST", "interaction", 303),
        ("GET", "wallet", 200),
        ("POST", "wallet", 200),
        ("POST", "wallet", 400),
        ("GET", "wallet", 303),
        ("GET", "wallet", 400),
        ("GET", "my", 200),
        ("GET", "auditor", 200),
    ]:
        assert expected in visited, expected
    assert len({path_of(r) for r in checked if path_of(r).startswith("/logout")}) == 1
