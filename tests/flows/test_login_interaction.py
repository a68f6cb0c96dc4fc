"""The login interaction as a person and their phone see it, over real HTTP: refused
presentations explained in plain words (English and Japanese), the interaction bound to its
browser, consent and cancel, single sign-on with prompt / max_age / acr_values, and the pages
themselves (language, labelled buttons, no external resources, CSP).

The helpers at the top are shared with test_wallet_endpoints.py (which imports them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from requests_oauth2client import AuthorizationRequest, OAuth2Client, PrivateKeyJwt
from support.credentials import Issuer, Wallet
from support.ecosystem import BANK_REDIRECT, CREDENTIAL_ID, Browser, Ecosystem
from support.html import parse
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.anchors.sd_jwt_vc import REASONS
from trustanchor.storage import wallet_repo
from trustanchor.web.i18n import catalog

SUBSTANTIAL_ANCHOR = "jp-residence-card"
ACR_HIGH = "urn:trustanchor:acr:high"
ACR_SUBSTANTIAL = "urn:trustanchor:acr:substantial"

# ---------------------------------------------------------------------------- shared helpers


def rp_client(server: RunningServer, ecosystem: Ecosystem) -> OAuth2Client:
    return OAuth2Client.from_discovery_endpoint(
        server.url("/.well-known/openid-configuration"),
        issuer=server.issuer,
        testing=True,  # http on 127.0.0.1
        auth=PrivateKeyJwt(ecosystem.bank.client_id, ecosystem.bank.private_jwk, aud=server.issuer),
        redirect_uri=BANK_REDIRECT,
        id_token_signed_response_alg="ES256",
    )


def pushed(
    server: RunningServer, ecosystem: Ecosystem, **params: Any
) -> tuple[AuthorizationRequest, str]:
    """PAR as the bank; returns the request and the URL to send the browser to."""
    client = rp_client(server, ecosystem)
    request = client.authorization_request(scope="openid profile", **params)
    return request, str(client.pushed_authorization_request(request).uri)


@dataclass
class Login:
    browser: Browser
    request: AuthorizationRequest
    interaction_id: str
    page: requests.Response  # what the browser shows after /authorize

    @property
    def path(self) -> str:
        return f"/interaction/{self.interaction_id}"


def start(
    server: RunningServer, ecosystem: Ecosystem, browser: Browser | None = None, **params: Any
) -> Login:
    browser = browser or Browser(server)
    request, url = pushed(server, ecosystem, **params)
    first = browser.get(url)
    assert first.status_code == 303, first.text
    location = first.headers["Location"]
    assert "/interaction/" in location, location
    interaction_id = location.rsplit("/", 1)[1]
    return Login(browser, request, interaction_id, browser.follow(first))


@dataclass
class WalletPage:
    page: requests.Response
    link: str  # the same-device link (same content as the QR code)

    @property
    def request_uri(self) -> str:
        return parse_qs(urlsplit(self.link).query)["request_uri"][0]

    @property
    def transaction_id(self) -> str:
        return self.request_uri.rsplit("/", 1)[1]


def open_wallet(login: Login, anchor_id: str) -> WalletPage:
    """Choose an anchor on the login page: the browser lands on the QR code page."""
    page = login.browser.follow(login.browser.submit(login.page.text, "/wallet", anchor=anchor_id))
    assert page.status_code == 200, page.text
    link = parse(page.text).links["same-device"].replace("&amp;", "&")
    return WalletPage(page, link)


def fetch_request(server: RunningServer, request_uri: str) -> dict[str, Any]:
    """The phone fetches and verifies the request object (independent JOSE library)."""
    response = requests.get(request_uri, timeout=10)
    assert response.status_code == 200, response.text
    jwks = requests.get(server.url("/jwks"), timeout=10).json()
    token = jose_jwt.decode(response.text, KeySet.import_key_set(jwks), algorithms=["ES256"])
    return dict(token.claims)


def issue(
    ecosystem: Ecosystem,
    wallet: Wallet,
    *,
    issuer: Issuer | None = None,
    subject: str = "person-0001",
    **overrides: Any,
) -> str:
    """A credential like the ecosystem's, optionally from another issuer key, vct or exp."""
    return (issuer or ecosystem.issuer).issue(
        wallet,
        claims={
            "sub": subject,
            "given_name": "Taro",
            "family_name": "Yamada",
            "birthdate": "1990-04-01",
        },
        disclosable={"given_name", "family_name", "birthdate"},
        iat=int(time.time()) - 60,
        **overrides,
    )


def presentation(
    ecosystem: Ecosystem,
    request: dict[str, Any],
    *,
    wallet: Wallet | None = None,
    credential: str | None = None,
    nonce: str | None = None,
    aud: str | None = None,
    iat: int | None = None,
) -> str:
    wallet = wallet or Wallet.generate()
    return wallet.present(
        credential or issue(ecosystem, wallet),
        nonce=nonce or request["nonce"],
        aud=aud or request["client_id"],
        iat=iat if iat is not None else int(time.time()),
    )


def post_response(response_uri: str, data: Any, **kwargs: Any) -> requests.Response:
    return requests.post(response_uri, data=data, timeout=10, **kwargs)


def post_presentation(request: dict[str, Any], vp: str) -> requests.Response:
    import json

    return post_response(
        request["response_uri"],
        {"vp_token": json.dumps({CREDENTIAL_ID: [vp]}), "state": request["state"]},
    )


def wallet_login(
    server: RunningServer,
    ecosystem: Ecosystem,
    login: Login,
    *,
    same_device: bool = True,
    **presentation_args: Any,
) -> requests.Response:
    """Anchor → QR page → the wallet presents → the consent page. ``same_device``: the wallet
    on the browser's own phone sends the person back through the ``redirect_uri`` of its answer
    (the same-device return: the login may start an SSO session); otherwise a phone answered the
    QR code and the browser continues by the status poll's link (no SSO session)."""
    wallet_page = open_wallet(login, ecosystem.anchor_id)
    request = fetch_request(server, wallet_page.request_uri)
    answer = post_presentation(request, presentation(ecosystem, request, **presentation_args))
    assert answer.status_code == 200, answer.text
    if same_device:
        consent = login.browser.follow(login.browser.get(answer.json()["redirect_uri"]))
    else:
        consent = login.browser.get(server.url(login.path))
    assert consent.status_code == 200
    return consent


def callback(response: requests.Response) -> dict[str, str]:
    """The query of a redirect to the bank, one value per name."""
    assert response.status_code == 303, response.text
    location = response.headers["Location"]
    assert location.startswith(BANK_REDIRECT + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert all(len(v) == 1 for v in query.values())
    return {k: v[0] for k, v in query.items()}


def is_login_page(response: requests.Response) -> bool:
    """The list of anchors (possibly empty), with its cancel button; not the QR page."""
    page = parse(response.text)
    return (
        response.status_code == 200
        and any(f.action.endswith("/cancel") for f in page.forms)
        and not any(f.action.endswith("/consent") for f in page.forms)
        and "same-device" not in page.links
    )


def is_consent_page(response: requests.Response) -> bool:
    return response.status_code == 200 and any(
        f.action.endswith("/consent") for f in parse(response.text).forms
    )


def status(login: Login, server: RunningServer) -> Any:
    return login.browser.get(server.url(login.path + "/status")).json()


# ---------------------------------------------------------------------------- this module's server


class OffsetClock:
    """Real time plus a settable offset, so max_age can run out without sleeping."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, ecosystem: Ecosystem, clock: OffsetClock
) -> Iterator[RunningServer]:
    """The flow server plus a second anchor of 'substantial' assurance (same issuer)."""
    substantial = {
        **ecosystem.anchor_declaration(),
        "id": SUBSTANTIAL_ANCHOR,
        "display_name": {"en": "Residence card (test)", "ja": "在留カード（テスト）"},
        "assurance_level": "substantial",
    }
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration(), substantial],
        clients=ecosystem.client_declarations(),
    )
    with running_server(settings, clock=clock) as running:
        yield running


# ---------------------------------------------------------------------------- refused presentations


def _nonce_mismatch(ecosystem: Ecosystem, request: dict[str, Any]) -> str:
    return presentation(ecosystem, request, nonce="n" * 32)


def _wrong_audience(ecosystem: Ecosystem, request: dict[str, Any]) -> str:
    return presentation(ecosystem, request, aud="https://another-verifier.example")


def _unregistered_key(ecosystem: Ecosystem, request: dict[str, Any]) -> str:
    wallet = Wallet.generate()
    rogue = Issuer.generate(
        issuer=ecosystem.issuer.issuer, kid="rogue-key", vct=ecosystem.issuer.vct
    )
    return presentation(
        ecosystem, request, wallet=wallet, credential=issue(ecosystem, wallet, issuer=rogue)
    )


def _same_kid_other_key(ecosystem: Ecosystem, request: dict[str, Any]) -> str:
    wallet = Wallet.generate()
    rogue = Issuer.generate(
        issuer=ecosystem.issuer.issuer, kid=ecosystem.issuer.kid, vct=ecosystem.issuer.vct
    )
    return presentation(
        ecosystem, request, wallet=wallet, credential=issue(ecosystem, wallet, issuer=rogue)
    )


def _vct_not_accepted(ecosystem: Ecosystem, request: dict[str, Any]) -> str:
    wallet = Wallet.generate()
    credential = issue(ecosystem, wallet, vct="urn:example:jp:library-card:1")
    return presentation(ecosystem, request, wallet=wallet, credential=credential)


def _expired(ecosystem: Ecosystem, request: dict[str, Any]) -> str:
    wallet = Wallet.generate()
    credential = issue(ecosystem, wallet, exp=int(time.time()) - 3600)
    return presentation(ecosystem, request, wallet=wallet, credential=credential)


REFUSALS = [
    pytest.param(
        _nonce_mismatch,
        "kb_nonce_mismatch",
        "made for a different login attempt",
        "別のログイン操作のために作られたもの",
        id="kb-nonce-not-ours",
    ),
    pytest.param(
        _wrong_audience,
        "kb_wrong_audience",
        "made for a different service",
        "別のサービス向けに作られたもの",
        id="kb-aud-wrong",
    ),
    pytest.param(
        _unregistered_key,
        "unknown_issuer_key",
        "signed with a key this issuer has not registered",
        "この発行者の登録していない鍵で署名",
        id="issuer-key-not-among-anchor-keys",
    ),
    pytest.param(
        _same_kid_other_key,
        "issuer_signature_invalid",
        "is not valid for this issuer",
        "署名がこの発行者のものとして正しくありません",
        id="issuer-key-impostor-same-kid",
    ),
    pytest.param(
        _vct_not_accepted,
        "vct_not_accepted",
        "this type of credential is not accepted here",
        "この種類の証明書はここでは受け付けていません",
        id="vct-not-accepted",
    ),
    pytest.param(
        _expired,
        "credential_expired",
        "the credential has expired",
        "証明書の有効期限が切れています",
        id="credential-expired",
    ),
]


@pytest.mark.parametrize(("make", "reason", "english", "japanese"), REFUSALS)
def test_refused_presentation_is_explained_and_login_stays_open(
    server: RunningServer,
    ecosystem: Ecosystem,
    make: Any,
    reason: str,
    english: str,
    japanese: str,
) -> None:
    login = start(server, ecosystem)
    wallet_page = open_wallet(login, ecosystem.anchor_id)
    request = fetch_request(server, wallet_page.request_uri)

    answer = post_presentation(request, make(ecosystem, request))

    # The wallet: 400, JSON, a machine-readable code.
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {"error": "invalid_request", "error_description": reason}
    # The browser's poll ends; the interaction is still waiting for a login.
    assert status(login, server) == {"done": True, "state": "failed"}
    page = login.browser.get(server.url(login.path))
    assert is_login_page(page)
    assert "Your credential was not accepted: " in page.text
    assert english in page.text
    page_ja = login.browser.session.get(
        server.url(login.path), headers={"Accept-Language": "ja"}, timeout=10
    )
    assert is_login_page(page_ja)
    assert '<html lang="ja">' in page_ja.text
    assert "証明書は受け付けられませんでした：" in page_ja.text
    assert japanese in page_ja.text


def test_after_a_refusal_the_person_can_try_again(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    first = open_wallet(login, ecosystem.anchor_id)
    request = fetch_request(server, first.request_uri)
    assert post_presentation(request, _nonce_mismatch(ecosystem, request)).status_code == 400
    login.page = login.browser.get(server.url(login.path))
    consent = wallet_login(server, ecosystem, login)
    assert is_consent_page(consent)


# ---------------------------------------------------------------------------- bound to the browser


def test_another_browser_cannot_open_the_interaction(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    stranger = Browser(server)
    page = stranger.get(server.url(login.path))
    assert page.status_code == 400
    assert "This login has expired or was already finished." in page.text
    assert stranger.get(server.url(login.path + "/status")).json() == {
        "done": True,
        "state": "gone",
    }
    # The person's own browser is unaffected.
    assert is_login_page(login.browser.get(server.url(login.path)))


@pytest.mark.parametrize("csrf", ["", "forged-token", None], ids=["empty", "wrong", "missing"])
def test_login_forms_without_the_right_csrf_token_do_nothing(
    server: RunningServer, ecosystem: Ecosystem, csrf: str | None
) -> None:
    login = start(server, ecosystem)
    for suffix, extra in (("/wallet", {"anchor": ecosystem.anchor_id}), ("/cancel", {})):
        form = parse(login.page.text).form_with(suffix)
        data = {**form.fields, **extra}
        if csrf is None:
            del data["csrf"]
        else:
            data["csrf"] = csrf
        answer = login.browser.session.post(
            server.url(form.action), data=data, allow_redirects=False, timeout=10
        )
        assert answer.status_code == 400
        assert "The form was not accepted" in answer.text
    # Nothing happened: no wallet transaction, not cancelled.
    assert status(login, server) == {"done": False, "state": "login"}
    assert is_login_page(login.browser.get(server.url(login.path)))


def test_a_form_posted_from_another_browser_is_refused(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """A valid CSRF token alone is not enough: the interaction cookie must come with it."""
    login = start(server, ecosystem)
    form = parse(login.page.text).form_with("/cancel")
    answer = requests.post(
        server.url(form.action), data=form.fields, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 400
    assert is_login_page(login.browser.get(server.url(login.path)))


def test_consent_without_the_right_csrf_token_does_nothing(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login)
    form = parse(consent.text).form_with("/consent")
    answer = login.browser.session.post(
        server.url(form.action),
        data={"csrf": "forged", "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert is_consent_page(login.browser.get(server.url(login.path)))


# ---------------------------------------------------------------------------- consent and cancel


def test_denying_consent_returns_access_denied_with_state_and_iss(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login)
    params = callback(login.browser.submit(consent.text, "/consent", decision="deny"))
    assert params["error"] == "access_denied"
    assert params["state"] == login.request.state
    assert params["iss"] == server.issuer
    assert "code" not in params


def test_approving_twice_yields_exactly_one_code(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login)
    first = callback(login.browser.submit(consent.text, "/consent", decision="approve"))
    assert first["code"] and first["state"] == login.request.state
    assert first["iss"] == server.issuer
    again = login.browser.submit(consent.text, "/consent", decision="approve")
    assert again.status_code == 400
    assert "Location" not in again.headers


def test_parallel_approvals_yield_exactly_one_code(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login)
    results: list[requests.Response] = []
    barrier = threading.Barrier(4)

    def approve() -> None:
        barrier.wait()
        results.append(login.browser.submit(consent.text, "/consent", decision="approve"))

    threads = [threading.Thread(target=approve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(303) == 1, statuses
    assert all(s in (303, 400, 503) for s in statuses), statuses
    assert [callback(r)["code"] for r in results if r.status_code == 303]


def test_cancel_on_the_login_page_returns_access_denied_with_iss(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    params = callback(login.browser.submit(login.page.text, "/cancel"))
    assert params["error"] == "access_denied"
    assert params["iss"] == server.issuer
    assert params["state"] == login.request.state
    # The interaction is over.
    assert login.browser.get(server.url(login.path)).status_code == 400


# ---------------------------------------------------------------------------- sessions


def _login_and_approve(
    server: RunningServer, ecosystem: Ecosystem, browser: Browser, **params: Any
) -> dict[str, str]:
    login = start(server, ecosystem, browser, **params)
    assert is_login_page(login.page)
    consent = wallet_login(server, ecosystem, login)
    return callback(browser.submit(consent.text, "/consent", decision="approve"))


def test_second_request_from_the_same_browser_skips_the_wallet(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    browser = Browser(server)
    _login_and_approve(server, ecosystem, browser)
    again = start(server, ecosystem, browser)
    assert is_consent_page(again.page)
    params = callback(browser.submit(again.page.text, "/consent", decision="approve"))
    assert params["code"]


def test_prompt_login_asks_for_the_wallet_again(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    browser = Browser(server)
    _login_and_approve(server, ecosystem, browser)
    assert is_login_page(start(server, ecosystem, browser, prompt="login").page)


def test_max_age_exceeded_asks_for_the_wallet_again(
    server: RunningServer, ecosystem: Ecosystem, clock: OffsetClock
) -> None:
    browser = Browser(server)
    _login_and_approve(server, ecosystem, browser)
    clock.offset += 20
    assert is_consent_page(start(server, ecosystem, browser, max_age=600).page)
    assert is_login_page(start(server, ecosystem, browser, max_age=10).page)


def test_max_age_zero_is_prompt_login(server: RunningServer, ecosystem: Ecosystem) -> None:
    browser = Browser(server)
    _login_and_approve(server, ecosystem, browser)
    assert is_login_page(start(server, ecosystem, browser, max_age=0).page)


def test_acr_values_the_session_does_not_meet_ask_for_another_login(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    browser = Browser(server)
    login = start(server, ecosystem, browser, acr_values=ACR_SUBSTANTIAL)
    assert "Residence card (test)" in login.page.text
    assert "National ID (test)" not in login.page.text
    wallet_page = open_wallet(login, SUBSTANTIAL_ANCHOR)
    request = fetch_request(server, wallet_page.request_uri)
    answer = post_presentation(request, presentation(ecosystem, request))
    assert answer.status_code == 200
    consent = browser.follow(browser.get(answer.json()["redirect_uri"]))  # same-device return
    callback(browser.submit(consent.text, "/consent", decision="approve"))

    step_up = start(server, ecosystem, browser, acr_values=ACR_HIGH)
    assert is_login_page(step_up.page)
    assert "National ID (test)" in step_up.page.text
    assert "Residence card (test)" not in step_up.page.text
    # The same level again is satisfied by the session.
    assert is_consent_page(start(server, ecosystem, browser, acr_values=ACR_SUBSTANTIAL).page)


def test_prompt_none_without_a_session_is_login_required(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    browser = Browser(server)
    request, url = pushed(server, ecosystem, prompt="none")
    params = callback(browser.get(url))
    assert params == {"error": "login_required", "state": request.state, "iss": server.issuer}


def test_prompt_none_with_a_session_is_consent_required(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """Consents are not remembered yet, so even a logged-in browser cannot skip the consent
    page: prompt=none must answer consent_required (OIDC Core 3.1.2.6)."""
    browser = Browser(server)
    _login_and_approve(server, ecosystem, browser)
    request, url = pushed(server, ecosystem, prompt="none")
    params = callback(browser.get(url))
    assert params == {"error": "consent_required", "state": request.state, "iss": server.issuer}


def _subject(
    server: RunningServer, ecosystem: Ecosystem, login: Login, approved: requests.Response
) -> str:
    """Redeem the code the bank got and read the ID token's subject."""
    callback(approved)
    client = rp_client(server, ecosystem)
    response = login.request.validate_callback(approved.headers["Location"])
    token = client.authorization_code(response, validate=False)
    jwks = KeySet.import_key_set(requests.get(server.url("/jwks"), timeout=5).json())
    claims = jose_jwt.decode(str(token.id_token), jwks, algorithms=["ES256"]).claims
    return str(claims["sub"])


def test_a_new_login_replaces_the_browser_session(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """prompt=login with someone else's credential: later single sign-on is that person, not
    the first one."""
    browser = Browser(server)
    taro = start(server, ecosystem, browser)
    consent = wallet_login(server, ecosystem, taro)
    first = _subject(
        server, ecosystem, taro, browser.submit(consent.text, "/consent", decision="approve")
    )
    hanako = start(server, ecosystem, browser, prompt="login")
    phone = Wallet.generate()
    credential = issue(ecosystem, phone, subject="person-0002")
    consent = wallet_login(server, ecosystem, hanako, wallet=phone, credential=credential)
    second = _subject(
        server, ecosystem, hanako, browser.submit(consent.text, "/consent", decision="approve")
    )
    sso = start(server, ecosystem, browser)
    assert is_consent_page(sso.page)
    third = _subject(
        server, ecosystem, sso, browser.submit(sso.page.text, "/consent", decision="approve")
    )
    assert first != second
    assert third == second


# ---------------------------------------------------------------------------- the pages


class _Audit(HTMLParser):
    """Collects what a page points at and whether its buttons have a name."""

    def __init__(self) -> None:
        super().__init__()
        self.html_lang: str | None = None
        self.urls: list[str] = []
        self.buttons: list[str] = []
        self._button: list[str] | None = None
        self._aria: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_lang = a.get("lang")
        for name in ("src", "href", "action", "formaction", "poster", "data"):
            if name in a:
                self.urls.append(a[name])
        if tag == "button":
            self._button, self._aria = [], a.get("aria-label", "")

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            self.buttons.append(("".join(self._button) + self._aria).strip())
            self._button = None


def _check_page(server: RunningServer, response: requests.Response, lang: str) -> None:
    assert response.headers["Content-Type"].startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    audit = _Audit()
    audit.feed(response.text)
    assert audit.html_lang == lang
    assert all(audit.buttons), audit.buttons
    for url in audit.urls:
        if url.startswith(("http://", "https://", "//")):
            assert url.startswith(server.issuer + "/"), f"external URL {url}"
        else:
            assert ":" not in url.split("/")[0] or url.startswith("openid4vp:"), url


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_page_is_self_contained_labelled_and_in_the_persons_language(
    server: RunningServer, ecosystem: Ecosystem, lang: str
) -> None:
    browser = Browser(server)
    browser.session.headers["Accept-Language"] = "ja-JP,ja;q=0.9" if lang == "ja" else "en"
    login = start(server, ecosystem, browser)
    _check_page(server, login.page, lang)
    wallet_page = open_wallet(login, ecosystem.anchor_id)
    _check_page(server, wallet_page.page, lang)
    request = fetch_request(server, wallet_page.request_uri)
    answer = post_presentation(request, presentation(ecosystem, request))
    elsewhere = requests.Session()
    elsewhere.headers["Accept-Language"] = browser.session.headers["Accept-Language"]
    _check_page(server, elsewhere.get(answer.json()["redirect_uri"], timeout=10), lang)
    consent = browser.get(server.url(login.path))
    _check_page(server, consent, lang)
    _check_page(server, Browser(server).session.get(server.url(login.path), timeout=10), "en")
    error = browser.get(server.url("/interaction/unknown-interaction"))
    assert error.status_code == 400
    _check_page(server, error, lang)
    _check_page(server, browser.get(server.url("/")), lang)
    if lang == "ja":
        assert "テスト銀行が次のことを求めています" in consent.text
        assert "許可する" in consent.text
        assert "本人確認に使うトラストアンカーを選んでください" in login.page.text
        assert "マイナンバーカード（テスト）" in login.page.text
    else:
        assert "Test Bank would like to:" in consent.text


def test_lang_parameter_switches_to_japanese(server: RunningServer, ecosystem: Ecosystem) -> None:
    login = start(server, ecosystem)
    assert '<html lang="en">' in login.page.text
    page = login.browser.get(server.url(login.path + "?lang=ja"))
    assert '<html lang="ja">' in page.text
    assert "テスト銀行が本人確認を求めています" in page.text
    # The choice sticks (cookie) for the next page of this browser.
    assert '<html lang="ja">' in login.browser.get(server.url(login.path)).text


def test_status_endpoint_answers_json(server: RunningServer, ecosystem: Ecosystem) -> None:
    login = start(server, ecosystem)
    answer = login.browser.get(server.url(login.path + "/status"))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {"done": False, "state": "login"}


# ---------------------------------------------------------------------------- reason catalogs

# Reasons the login service itself records (beyond the anchor verifier's).
SERVICE_REASONS = (
    "anchor_suspended",
    "wallet_error",
    "wallet_declined",
    "wallet_refused_transaction_data",
    "wallet_response_invalid",
    "interaction_gone",
    "generic",
)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_refusal_reason_has_plain_words(lang: str) -> None:
    texts = catalog(lang)
    missing = [r for r in (*REASONS, *SERVICE_REASONS) if not texts.get(f"reasons.{r}")]
    assert missing == []
    if lang == "ja":
        english = catalog("en")
        untranslated = [r for r in REASONS if texts[f"reasons.{r}"] == english[f"reasons.{r}"]]
        assert untranslated == []
        assert all(not texts[f"reasons.{r}"].isascii() for r in REASONS)


# ------------------------------------------------------------------------- attempts per login


def test_one_interaction_opens_at_most_max_attempts_login_transactions(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """Each attempt is a row (and, for an upstream provider, a pushed request there): one
    anonymous interaction must not amplify into any number of them (attack session, issue 11).
    The bound holds whatever the method; the person is told to start again."""
    from trustanchor.services.login_choice import MAX_ATTEMPTS

    login = start(server, ecosystem)
    for _ in range(MAX_ATTEMPTS):
        open_wallet(login, ecosystem.anchor_id)
    refused = login.browser.submit(login.page.text, "/wallet", anchor=ecosystem.anchor_id)
    assert refused.status_code == 429
    assert "tried too many times" in refused.text
    with server.services.db.reader() as conn:
        assert wallet_repo.count_for_interaction(conn, login.interaction_id) == MAX_ATTEMPTS
