"""Issue 10, item 5: logout ends the SSO session, over real HTTP.

SECURITY-CASES.md, "Holders, sessions and cross-device logins": "logout on any first-party page
or the end-session endpoint → SSO ended". A person logs in through a real client (PAR, wallet
login, consent, code redeemed for an ID token); then

- logging out of ``/my`` or ``/auditor`` ends the browser's SSO session (row ended, cookie deleted
  with the attributes it was set with): the next authorization request in that browser asks for
  a login again instead of landing on consent as the previous person;
- OpenID Connect RP-Initiated Logout 1.0 at ``/logout`` (listed in discovery as
  ``end_session_endpoint``; ID tokens carry ``sid``): an ``id_token_hint`` naming this browser's
  session (also an expired one) ends it without asking and returns to the client's registered
  ``post_logout_redirect_uri`` with ``state``; without a hint, or with a hint for another session
  or person, the person confirms first (a GET never ends the session, the confirmation needs the
  form's CSRF token); an unregistered URI or another client's is never followed.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests
from markupsafe import escape
from sqlalchemy import func, select
from support.clock import ShiftableClock
from support.credentials import Wallet
from support.ecosystem import BANK_REDIRECT, Browser, Ecosystem, Party
from support.html import parse
from support.person import Person
from support.rp import Pkce, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.storage.tables import audit_leaves as audit_leaves_table
from trustanchor.web.i18n import catalog

BANK_LOGOUT = "https://bank.example/logged-out"
SHOP_REDIRECT = "https://shop.example/callback"
SHOP_LOGOUT = "https://shop.example/bye"
SSO_COOKIE = "ta_session"


class AnotherSubject(Ecosystem):
    """The same anchor and clients, issuing credentials of another person."""

    def __init__(self, ecosystem: Ecosystem) -> None:
        super().__init__(ecosystem.issuer, ecosystem.bank, ecosystem.ledger, ecosystem.anchor_id)

    def credential(self, wallet: Wallet, *, subject: str = "", iat: int | None = None) -> str:
        return super().credential(wallet, subject="person-0002", iat=iat)


@dataclass
class World:
    server: RunningServer
    clock: ShiftableClock
    ecosystem: Ecosystem
    bank: RelyingParty
    shop: RelyingParty

    def person(self) -> Person:
        return Person(self.server, self.ecosystem)

    def url(self, path: str, **params: str) -> str:
        return self.server.url(path) + (f"?{urlencode(params)}" if params else "")


@contextmanager
def running_world(tmp_path: Path, database_url: str, *, post_logout: bool) -> Iterator[World]:
    """The ecosystem's bank and ledger plus a second client (``shop``); with ``post_logout``
    the bank and the shop each register a post_logout_redirect_uri."""
    ecosystem = Ecosystem()
    shop = Party("shop")
    bank, ledger = ecosystem.client_declarations()
    shop_declaration: dict[str, Any] = {
        "client_id": shop.client_id,
        "client_name": {"en": "Test Shop", "ja": "テストショップ"},
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": shop.jwks,
        "redirect_uris": [SHOP_REDIRECT],
        "scope": "openid profile",
    }
    if post_logout:
        bank = {**bank, "post_logout_redirect_uris": [BANK_LOGOUT]}
        shop_declaration["post_logout_redirect_uris"] = [SHOP_LOGOUT]
    clock = ShiftableClock()
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=[bank, ledger, shop_declaration],
    )
    with running_server(settings, clock=clock) as server:
        yield World(
            server=server,
            clock=clock,
            ecosystem=ecosystem,
            bank=RelyingParty(server, ecosystem.bank, clock, redirect_uri=BANK_REDIRECT),
            shop=RelyingParty(server, shop, clock, redirect_uri=SHOP_REDIRECT),
        )


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    with running_world(tmp_path, database_url, post_logout=False) as running:
        yield running


@pytest.fixture
def rp_world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """Clients with registered post_logout_redirect_uris."""
    with running_world(tmp_path, database_url, post_logout=True) as running:
        yield running


# ------------------------------------------------------------------------------------ helpers


def tokens_of(world: World, person: Person, rp: RelyingParty | None = None) -> dict[str, Any]:
    """Log in (or reuse the SSO session) and consent at ``rp``; the tokens it redeems."""
    rp = rp or world.bank
    pkce = Pkce.generate()
    url = rp.authorization_url(rp.request_uri(pkce, scope="openid"))
    answer = person.authorize(url, redirect_uri=rp.redirect_uri)
    redeemed = rp.redeem(answer["code"], pkce.verifier)
    assert redeemed.status_code == 200, redeemed.text
    tokens: dict[str, Any] = redeemed.json()
    return tokens


def id_token_of(world: World, person: Person, rp: RelyingParty | None = None) -> str:
    return str(tokens_of(world, person, rp)["id_token"])


def verified_claims(world: World, token: str) -> dict[str, Any]:
    """The ID token checked as a client checks it: our published key, our issuer, its audience."""
    jwks = jwt.PyJWKSet.from_dict(requests.get(world.url("/jwks"), timeout=10).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["ES256", "EdDSA"],
        audience=world.bank.client_id,
        issuer=world.server.issuer,
        options={"verify_exp": False},
    )
    return claims


def next_page(world: World, browser: Browser, rp: RelyingParty | None = None) -> str:
    """A new authorization request of ``rp`` in ``browser``: "login" (the anchor list) or
    "consent" (the SSO session was taken over)."""
    rp = rp or world.bank
    page = browser.follow(browser.get(rp.authorization_url(rp.request_uri(Pkce.generate()))))
    assert page.status_code == 200, page.text
    actions = [form.action for form in parse(page.text).forms]
    if any(action.endswith("/consent") for action in actions):
        return "consent"
    assert any(action.endswith("/wallet") for action in actions), actions
    return "login"


def stolen(world: World, cookie: str) -> Browser:
    """Another browser presenting a copied SSO cookie (the row, not only the cookie, must end)."""
    browser = Browser(world.server)
    browser.session.cookies.set(SSO_COOKIE, cookie)
    return browser


def sso_cookie(person: Person) -> str:
    value = person.browser.session.cookies.get(SSO_COOKIE)
    assert value, "the login set no SSO cookie"
    return str(value)


def deletes_sso_cookie(response: requests.Response) -> None:
    """The answer deletes the SSO cookie with the attributes it was set with."""
    [header] = [
        value
        for value in response.raw.headers.getlist("Set-Cookie")
        if value.startswith(f"{SSO_COOKIE}=")
    ]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"expires", "path", "httponly", "samesite"} <= attributes, header
    assert "Path=/;" in header + ";" and "SameSite=Lax" in header, header
    assert header.startswith(f"{SSO_COOKIE}=;") or header.startswith(f'{SSO_COOKIE}="";'), header


def logout(browser: Browser, world: World, **params: str) -> requests.Response:
    return browser.get(world.url("/logout", **params))


def text_of(key: str, lang: str = "en", **values: object) -> str:
    text = catalog(lang)[key]
    return str(escape(text.format(**values) if values else text))


def first_party_login(world: World, person: Person, area: str) -> requests.Response:
    """Log in to ``/my`` or ``/auditor`` through the service's own login; the page it lands on."""
    page = person.browser.get(world.url(f"/{area}/login"))
    assert page.status_code == 200, page.text
    started = person.browser.submit(page.text, f"/{area}/login")
    assert started.status_code == 303, started.text
    answer = person.authorize(
        started.headers["Location"], redirect_uri=world.url(f"/{area}/callback")
    )
    done = person.browser.get(world.url(f"/{area}/callback", **answer))
    assert done.status_code == 303, done.text
    return person.browser.follow(done)


# ------------------------------------------------------------------------ first-party pages


def test_logout_at_my_links_ends_the_sso_session(world: World) -> None:
    person = world.person()
    links = first_party_login(world, person, "my")
    assert links.url == world.url("/my/links"), links.url
    cookie = sso_cookie(person)
    # The SSO session works: a client's request in this browser lands on consent.
    assert next_page(world, person.browser) == "consent"

    out = person.browser.submit(links.text, "/my/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/my/login?notice=logged_out"

    # A shared PC's next user: the next authorization request asks for a login again ...
    assert next_page(world, person.browser) == "login"
    # ... because the session itself is over (a copy of the cookie opens nothing) ...
    assert next_page(world, stolen(world, cookie)) == "login"
    # ... and the cookie is gone too.
    deletes_sso_cookie(out)
    assert person.browser.session.cookies.get(SSO_COOKIE) is None


def test_logout_at_the_auditor_console_ends_the_sso_session(world: World) -> None:
    person = world.person()
    forbidden = first_party_login(world, person, "auditor")  # not designated: 403 with logout
    assert forbidden.status_code == 403, forbidden.text
    cookie = sso_cookie(person)
    assert next_page(world, person.browser) == "consent"

    out = person.browser.submit(forbidden.text, "/auditor/logout")
    assert out.status_code == 303
    assert out.headers["Location"] == "/auditor/login?notice=logged_out"

    assert next_page(world, person.browser) == "login"
    assert next_page(world, stolen(world, cookie)) == "login"
    deletes_sso_cookie(out)
    assert person.browser.session.cookies.get(SSO_COOKIE) is None


def test_first_party_logout_without_the_csrf_token_ends_nothing(world: World) -> None:
    person = world.person()
    first_party_login(world, person, "my")
    forged = person.browser.session.post(
        world.url("/my/logout"), data={"csrf": "A" * 43}, allow_redirects=False, timeout=10
    )
    assert forged.status_code == 400
    assert next_page(world, person.browser) == "consent"


# ---------------------------------------------------------------- discovery and ID tokens


def test_discovery_lists_the_end_session_endpoint(world: World) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        document = requests.get(world.url(path), timeout=10).json()
        assert document["end_session_endpoint"] == world.url("/logout")
        # Only what is implemented: no front- or back-channel logout.
        assert not any(name.startswith(("frontchannel", "backchannel")) for name in document)


def test_id_tokens_carry_the_sso_sessions_sid(world: World) -> None:
    taro = world.person()
    first = verified_claims(world, id_token_of(world, taro))
    again = verified_claims(world, id_token_of(world, taro))  # SSO: the same session
    other_browser = world.person()
    other = verified_claims(world, id_token_of(world, other_browser))
    assert isinstance(first["sid"], str) and len(first["sid"]) >= 16
    assert again["sid"] == first["sid"]
    assert other["sid"] != first["sid"]


# ------------------------------------------------------------------- RP-Initiated Logout


def test_a_matching_id_token_hint_ends_the_session_and_returns_with_state(rp_world: World) -> None:
    person = rp_world.person()
    hint = id_token_of(rp_world, person)
    cookie = sso_cookie(person)
    state = secrets.token_urlsafe(12)

    out = logout(
        person.browser,
        rp_world,
        id_token_hint=hint,
        post_logout_redirect_uri=BANK_LOGOUT,
        state=state,
    )
    assert out.status_code == 303, out.text
    assert out.headers["Location"] == f"{BANK_LOGOUT}?state={state}"
    assert out.headers["Cache-Control"] == "no-store"
    deletes_sso_cookie(out)
    assert next_page(rp_world, person.browser) == "login"
    assert next_page(rp_world, stolen(rp_world, cookie)) == "login"


def test_an_expired_id_token_hint_still_ends_its_session(rp_world: World) -> None:
    person = rp_world.person()
    hint = id_token_of(rp_world, person)
    cookie = sso_cookie(person)
    rp_world.clock.shift(rp_world.server.settings.tokens.id_token_lifetime + 60)
    assert verified_claims(rp_world, hint)["exp"] < rp_world.clock.now()
    assert next_page(rp_world, person.browser) == "consent"  # the SSO session outlives the token

    # RP-Initiated Logout by POST, the way a client's form sends it.
    out = person.browser.session.post(
        rp_world.url("/logout"),
        data={"id_token_hint": hint, "post_logout_redirect_uri": BANK_LOGOUT, "state": "s1"},
        allow_redirects=False,
        timeout=10,
    )
    assert out.status_code == 303, out.text
    assert out.headers["Location"] == f"{BANK_LOGOUT}?state=s1"
    deletes_sso_cookie(out)
    assert next_page(rp_world, stolen(rp_world, cookie)) == "login"


def test_a_cross_site_post_without_the_cookie_is_asked_again_as_a_get(rp_world: World) -> None:
    """A client's cross-site POST does not carry the SameSite=Lax cookie: the endpoint must not
    answer "logged out" for a session it could not see."""
    person = rp_world.person()
    hint = id_token_of(rp_world, person)
    posted = requests.post(
        rp_world.url("/logout"),
        data={"id_token_hint": hint, "post_logout_redirect_uri": BANK_LOGOUT, "state": "s2"},
        allow_redirects=False,
        timeout=10,
    )
    assert posted.status_code == 303
    location = posted.headers["Location"]
    assert location.startswith("/logout?") and "id_token_hint=" in location
    assert next_page(rp_world, person.browser) == "consent"  # nothing ended yet
    # The top-level GET that follows carries the cookie and ends the session.
    out = person.browser.get(rp_world.url(location))
    assert out.status_code == 303 and out.headers["Location"] == f"{BANK_LOGOUT}?state=s2"
    assert next_page(rp_world, person.browser) == "login"


def test_an_unregistered_or_other_clients_post_logout_redirect_uri_is_not_followed(
    rp_world: World,
) -> None:
    person = rp_world.person()
    tokens = tokens_of(rp_world, person)
    hint = tokens["id_token"]
    refused: list[dict[str, str]] = [
        # Another client's registered URI, with the bank's hint.
        {"id_token_hint": hint, "post_logout_redirect_uri": SHOP_LOGOUT},
        # Another client's registered URI, named by client_id.
        {"client_id": rp_world.shop.client_id, "post_logout_redirect_uri": BANK_LOGOUT},
        # Not exactly the registered URI.
        {"id_token_hint": hint, "post_logout_redirect_uri": BANK_LOGOUT + "/"},
        {"id_token_hint": hint, "post_logout_redirect_uri": BANK_LOGOUT + "?next=x"},
        {"client_id": rp_world.bank.client_id, "post_logout_redirect_uri": "https://evil.example/"},
        # No client to check the URI against.
        {"post_logout_redirect_uri": BANK_LOGOUT},
        # client_id and hint disagree.
        {
            "id_token_hint": hint,
            "client_id": rp_world.shop.client_id,
            "post_logout_redirect_uri": SHOP_LOGOUT,
        },
        # A hint that is not an ID token of ours (signature broken; an access token).
        {"id_token_hint": hint[:-4] + "AAAA", "post_logout_redirect_uri": BANK_LOGOUT},
        {"id_token_hint": tokens["access_token"], "post_logout_redirect_uri": BANK_LOGOUT},
        # A client that is not registered.
        {"client_id": "no-such-client", "post_logout_redirect_uri": BANK_LOGOUT},
    ]
    for params in refused:
        page = logout(person.browser, rp_world, **params)
        assert page.status_code == 400, (params, page.text)
        assert "Location" not in page.headers, params
        assert page.headers["Cache-Control"] == "no-store"
        assert text_of("end_session.refused.not_returned") in page.text
        # Still logged in, and told so, with the way out offered on the page.
        assert parse(page.text).form_with("/logout/confirm").fields["csrf"]
    assert next_page(rp_world, person.browser) == "consent"

    # A repeated parameter is refused too.
    repeated = person.browser.get(
        rp_world.url("/logout") + "?" + urlencode([("state", "a"), ("state", "b")])
    )
    assert repeated.status_code == 400 and "Location" not in repeated.headers
    assert next_page(rp_world, person.browser) == "consent"


def test_without_a_hint_the_person_confirms_and_only_the_csrf_post_ends_the_session(
    rp_world: World,
) -> None:
    person = rp_world.person()
    id_token_of(rp_world, person)
    cookie = sso_cookie(person)

    page = logout(
        person.browser,
        rp_world,
        client_id=rp_world.bank.client_id,
        post_logout_redirect_uri=BANK_LOGOUT,
        state="s3",
    )
    assert page.status_code == 200, page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert text_of("end_session.confirm.asked_by", client="Test Bank") in page.text
    form = parse(page.text).form_with("/logout/confirm")
    assert form.method == "post" and form.fields["csrf"]
    assert "Set-Cookie" not in page.headers
    # The GET ended nothing, and neither does the bare endpoint.
    assert logout(person.browser, rp_world).status_code == 200
    assert next_page(rp_world, person.browser) == "consent"

    # The confirmation without this browser's CSRF token is refused.
    for csrf in (None, "A" * 43):
        data = {**form.fields, "decision": "logout"}
        if csrf is None:
            del data["csrf"]
        else:
            data["csrf"] = csrf
        forged = person.browser.session.post(
            rp_world.url("/logout/confirm"), data=data, allow_redirects=False, timeout=10
        )
        assert forged.status_code == 400 and "Location" not in forged.headers
    # The right token from another browser (no cookie) does not do it either.
    elsewhere = requests.post(
        rp_world.url("/logout/confirm"),
        data={**form.fields, "decision": "logout"},
        allow_redirects=False,
        timeout=10,
    )
    assert elsewhere.status_code == 400
    assert next_page(rp_world, person.browser) == "consent"

    # Staying logged in returns to the client and ends nothing.
    stay = person.browser.submit(page.text, "/logout/confirm", decision="stay")
    assert stay.status_code == 303 and stay.headers["Location"] == f"{BANK_LOGOUT}?state=s3"
    assert next_page(rp_world, person.browser) == "consent"

    done = person.browser.submit(page.text, "/logout/confirm", decision="logout")
    assert done.status_code == 303 and done.headers["Location"] == f"{BANK_LOGOUT}?state=s3"
    deletes_sso_cookie(done)
    assert next_page(rp_world, person.browser) == "login"
    assert next_page(rp_world, stolen(rp_world, cookie)) == "login"


def test_a_hint_for_another_session_or_person_asks_for_confirmation(world: World) -> None:
    taro = world.person()
    taros_hint = id_token_of(world, taro)
    # The same person in a second browser: another session, another sid.
    second = world.person()
    second.wallet = taro.wallet
    id_token_of(world, second)
    # Someone else entirely (another subject at the anchor).
    hanako = Person(world.server, AnotherSubject(world.ecosystem))
    hanakos_hint = id_token_of(world, hanako, world.shop)

    for person, hint in ((second, taros_hint), (taro, hanakos_hint)):
        page = logout(person.browser, world, id_token_hint=hint)
        assert page.status_code == 200, page.text
        assert parse(page.text).form_with("/logout/confirm").fields["csrf"]
        assert next_page(world, person.browser) == "consent"
    # Taro's own hint in Taro's browser still ends Taro's session only.
    out = logout(taro.browser, world, id_token_hint=taros_hint)
    assert out.status_code == 200 and text_of("end_session.done.logged_out") in out.text
    assert next_page(world, taro.browser) == "login"
    assert next_page(world, second.browser) == "consent"
    assert next_page(world, hanako.browser) == "consent"


def audit_leaves(world: World) -> int:
    with world.server.services.db.reader() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_leaves_table)).scalar_one())


def test_without_a_session_the_endpoint_says_logged_out_and_may_return(rp_world: World) -> None:
    before = audit_leaves(rp_world)
    browser = Browser(rp_world.server)
    page = logout(browser, rp_world)
    assert page.status_code == 200 and text_of("end_session.done.logged_out") in page.text
    back = logout(
        browser,
        rp_world,
        client_id=rp_world.shop.client_id,
        post_logout_redirect_uri=SHOP_LOGOUT,
        state="s4",
    )
    assert back.status_code == 303 and back.headers["Location"] == f"{SHOP_LOGOUT}?state=s4"
    # Anyone may call the endpoint, so it is no way to grow the audit log: refused requests and
    # confirmations write nothing either.
    for _ in range(20):
        logout(browser, rp_world, post_logout_redirect_uri=BANK_LOGOUT)  # refused: no client
        logout(browser, rp_world, id_token_hint="e30.e30.AAAA")
        browser.session.post(rp_world.url("/logout/confirm"), data={"decision": "logout"})
    assert audit_leaves(rp_world) == before


def test_the_logout_pages_in_japanese(world: World) -> None:
    person = world.person()
    id_token_of(world, person)
    page = logout(person.browser, world, client_id=world.bank.client_id, ui_locales="ja")
    assert '<html lang="ja">' in page.text
    assert text_of("end_session.confirm.asked_by", "ja", client="テスト銀行") in page.text
    assert text_of("end_session.grants_stay", "ja") in page.text
    done = person.browser.submit(page.text, "/logout/confirm", decision="logout")
    assert done.status_code == 200
    assert '<html lang="ja">' in done.text
    assert text_of("end_session.done.logged_out", "ja") in done.text
    for html in (page.text, done.text):
        assert "<script" not in html and "style=" not in html
