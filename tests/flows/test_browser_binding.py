"""Issue 10: the browser that started an interaction is the one that finishes it, the consent page
says who logged in, and the SSO session starts only from a login approved in that browser.

Over real HTTP, with the login interaction's helpers. SECURITY-CASES, "Holders, sessions and
cross-device logins": an interaction id learned from a URL, a screenshot or a log is useless
without the browser's own secret; deny at consent → no SSO session.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from support.credentials import Wallet
from support.ecosystem import Browser, Ecosystem
from support.html import parse
from support.server import RunningServer
from test_login_interaction import (
    callback,
    fetch_request,
    is_consent_page,
    is_login_page,
    issue,
    open_wallet,
    post_presentation,
    presentation,
    start,
    wallet_login,
)

COOKIE = "ta_interaction"  # http issuer in tests: no __Host- prefix
SESSION = "ta_session"


def _answer_qr(
    server: RunningServer, ecosystem: Ecosystem, link: str, *, given: str, family: str
) -> requests.Response:
    """Someone's phone answers the QR code shown in a browser, with their own credential."""
    request = fetch_request(server, parse_qs(urlsplit(link).query)["request_uri"][0])
    phone = Wallet.generate()
    credential = ecosystem.issuer.issue(
        phone,
        claims={
            "sub": f"person-{family.lower()}",
            "given_name": given,
            "family_name": family,
            "birthdate": "1985-01-01",
        },
        disclosable={"given_name", "family_name", "birthdate"},
        iat=int(time.time()) - 60,
    )
    answer = post_presentation(
        request, presentation(ecosystem, request, wallet=phone, credential=credential)
    )
    assert answer.status_code == 200, answer.text
    return answer


def test_the_interaction_id_alone_opens_nothing(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """Someone who learns the interaction URL (and even copies the form's CSRF token) gets
    nothing: not the page, not a deny, and no SSO session carrying the person's login."""
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login)
    form = parse(consent.text).form_with("/consent")
    for cookie in (None, login.interaction_id):
        stranger = Browser(server)
        if cookie is not None:
            stranger.session.cookies.set(COOKIE, cookie)
        assert stranger.get(server.url(login.path)).status_code == 400
        denied = stranger.session.post(
            server.url(form.action),
            data={**form.fields, "decision": "deny"},
            allow_redirects=False,
            timeout=10,
        )
        assert denied.status_code == 400 and "Location" not in denied.headers
        assert SESSION not in stranger.session.cookies
        # The stranger's next authorization request finds no session: a login page. (The
        # planted cookie goes first: with its empty domain it would shadow the one we set.)
        stranger.session.cookies.clear()
        assert is_login_page(start(server, ecosystem, stranger).page)
    # The person's own browser still holds the consent page.
    assert is_consent_page(login.browser.get(server.url(login.path)))


def test_the_binding_cookie_is_a_secret_of_its_own(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    secret = login.browser.session.cookies.get(COOKIE)
    assert secret and secret != login.interaction_id and len(secret) >= 43
    csrf = parse(login.page.text).form_with("/cancel").fields["csrf"]
    assert csrf not in (secret, hashlib.sha256(secret.encode()).hexdigest())
    assert secret not in login.page.text
    first = login.browser.session.get(server.url(login.path), allow_redirects=False, timeout=10)
    assert secret not in first.text and secret not in first.headers.get("Location", "")
    # A second interaction in the same browser shares the secret; both stay usable.
    second = start(server, ecosystem, login.browser)
    assert login.browser.session.cookies.get(COOKIE) == secret
    assert is_login_page(login.browser.get(server.url(login.path)))
    assert is_login_page(login.browser.get(server.url(second.path)))


def test_a_deny_at_consent_starts_no_sso_session(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login)
    params = callback(login.browser.submit(consent.text, "/consent", decision="deny"))
    assert params["error"] == "access_denied"
    assert SESSION not in login.browser.session.cookies
    assert is_login_page(start(server, ecosystem, login.browser).page)


def test_consent_leads_with_who_logged_in(server: RunningServer, ecosystem: Ecosystem) -> None:
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login)
    who = consent.text.index('id="who"')
    assert who < consent.text.index("<h1")
    assert "Yamada T." in consent.text  # family name and initial, never the whole name
    assert "Taro" not in consent.text
    assert "You were verified by National ID (test)" in consent.text
    assert consent.text.index("You were verified by") < consent.text.index("<h1")
    assert "Not you? Start again" in consent.text


def test_answer_first_on_a_qr_code_is_shown_and_can_be_refused(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """Cross-device 'answer first': someone else answers the QR code shown in the person's
    browser. The consent page shows who answered; 'not you?' abandons the interaction, nothing is
    granted and no session starts."""
    login = start(server, ecosystem)
    page = open_wallet(login, ecosystem.anchor_id)
    _answer_qr(server, ecosystem, page.link, given="Jiro", family="Suzuki")
    consent = login.browser.get(server.url(login.path))
    assert is_consent_page(consent)
    assert "Suzuki J." in consent.text
    params = callback(login.browser.submit(consent.text, "/not-me"))
    assert params["error"] == "access_denied"
    assert "code" not in params
    assert SESSION not in login.browser.session.cookies
    assert login.browser.get(server.url(login.path)).status_code == 400


def test_not_me_on_an_sso_login_ends_that_session(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """A shared computer: the next person sees the previous one's name at consent, says 'not
    me', and the previous person's session is over."""
    browser = Browser(server)
    first = start(server, ecosystem, browser)
    consent = wallet_login(server, ecosystem, first)
    assert callback(browser.submit(consent.text, "/consent", decision="approve"))["code"]
    again = start(server, ecosystem, browser)
    assert is_consent_page(again.page)
    assert "Yamada T." in again.page.text
    assert "still logged in from earlier" in again.page.text
    params = callback(browser.submit(again.page.text, "/not-me"))
    assert params["error"] == "access_denied"
    assert is_login_page(start(server, ecosystem, browser).page)


@pytest.mark.parametrize("same_device", [True, False], ids=["same-device", "cross-device"])
def test_every_login_ends_the_browsers_earlier_session(
    server: RunningServer, ecosystem: Ecosystem, same_device: bool
) -> None:
    """A login finished in this interaction replaces whoever was logged in in this browser: the
    earlier session ends. Returned to this browser, the login gets a new session (new secret);
    answered on another device, none."""
    browser = Browser(server)
    first = start(server, ecosystem, browser)
    consent = wallet_login(server, ecosystem, first)
    callback(browser.submit(consent.text, "/consent", decision="approve"))
    old = browser.session.cookies.get(SESSION)
    assert old
    relogin = start(server, ecosystem, browser, prompt="login")
    phone = Wallet.generate()
    consent = wallet_login(
        server,
        ecosystem,
        relogin,
        same_device=same_device,
        wallet=phone,
        credential=issue(ecosystem, phone),
    )
    callback(browser.submit(consent.text, "/consent", decision="approve"))
    if same_device:
        new = browser.session.cookies.get(SESSION)
        assert new and new != old
        assert is_consent_page(start(server, ecosystem, browser).page)
    else:
        assert is_login_page(start(server, ecosystem, browser).page)
    # The old cookie (say, copied from this computer earlier) opens nothing any more.
    thief = Browser(server)
    thief.session.cookies.set(SESSION, old)
    assert is_login_page(start(server, ecosystem, thief).page)


def test_a_login_answered_on_another_device_starts_no_sso_session(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """The person scans the QR code with their own phone and the browser continues by the
    status poll. The request is answered, but nothing tells this from a QR code relayed to a
    victim's phone: the browser keeps no login for later requests (docs/HOLDER-INTEGRITY.md,
    "Relay")."""
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login, same_device=False)
    assert is_consent_page(consent)
    assert callback(login.browser.submit(consent.text, "/consent", decision="approve"))["code"]
    assert SESSION not in login.browser.session.cookies
    assert is_login_page(start(server, ecosystem, login.browser).page)


def test_a_login_returned_to_this_browser_starts_an_sso_session(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """The wallet on the browser's own phone sends the person back with its one-time response
    code: the login was answered here, and later requests reuse it."""
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login, same_device=True)
    assert callback(login.browser.submit(consent.text, "/consent", decision="approve"))["code"]
    assert login.browser.session.cookies.get(SESSION)
    assert is_consent_page(start(server, ecosystem, login.browser).page)


def test_a_same_device_return_in_another_browser_does_not_make_the_login_local(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """A relay: the victim's phone answers the QR code shown in the attacker's browser and
    follows the wallet's return link in its own browser. That browser is told to continue where
    the login started; the attacker's browser gets this one request's login by the poll, and
    no session."""
    attacker = start(server, ecosystem)
    page = open_wallet(attacker, ecosystem.anchor_id)
    answer = _answer_qr(server, ecosystem, page.link, given="Jiro", family="Suzuki")
    victims_phone = Browser(server)
    back = victims_phone.follow(victims_phone.get(answer.json()["redirect_uri"]))
    assert back.status_code == 200 and not is_consent_page(back)
    assert SESSION not in victims_phone.session.cookies
    consent = attacker.browser.get(server.url(attacker.path))
    assert is_consent_page(consent) and "Suzuki J." in consent.text
    callback(attacker.browser.submit(consent.text, "/consent", decision="approve"))
    assert SESSION not in attacker.browser.session.cookies
    assert is_login_page(start(server, ecosystem, attacker.browser).page)
