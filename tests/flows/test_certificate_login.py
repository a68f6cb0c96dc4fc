"""Certificate login (anchor kind ``x509``, docs/CERTIFICATE-LOGIN.md) end to end over real HTTP,
on SQLite and PostgreSQL: a person's card app (tests/support/card_app.py: the request checked
with joserfc, challenge signatures made by hand with pyca over a test JPKI built with pyca's
builders) answers the service's challenge; the anchor's CRLs come from a real HTTP server.

Enrolment with both certificates, a later login with the authentication certificate only (same
holder, enrolment claims kept), single use of a transaction, another interaction's challenge,
the same-device return only in the bound browser, a declined answer, a suspended anchor, an
unknown certificate without signature (enrolment required, then success), and an anchor set
mixing kinds: accounts linked and money sent between a holder verified through the x509 anchor
and one verified through the SD-JWT VC anchor of the same set.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from sqlalchemy import select
from support.card_app import CardApp, CrlServer, fetcher_overrides, x509_anchor_declaration
from support.ecosystem import BANK_REDIRECT, Browser
from support.html import parse
from support.jpki import Card, TestPKI
from support.payments import (
    ANCHOR_SETS,
    JP_HIGH,
    JP_SET,
    JP_SUBSTANTIAL,
    Bank,
    Holder,
    Payments,
    link,
    transfer,
)
from support.person import authorization_response
from support.rp import Pkce
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.anchors import revocation, x509_chain, x509_challenge, x509_claims
from trustanchor.services import certificate_login, login_completion
from trustanchor.storage.tables import identities, wallet_transactions
from trustanchor.web.i18n import catalog

X509 = "jp-jpki"
LOGIN_ONLY = "jp-jpki-login-only"  # an x509 anchor without a signature profile
VERIFIED_CLAIMS = {
    "userinfo": {
        "verified_claims": {
            "verification": {"trust_framework": None},
            "claims": {"name": None, "birthdate": None, "address": None},
        }
    }
}


@pytest.fixture
def pki() -> TestPKI:
    return TestPKI.generate(now=int(time.time()))


@pytest.fixture
def crls(pki: TestPKI) -> Iterator[CrlServer]:
    with CrlServer(pki).running() as running:
        yield running


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, payments: Payments, pki: TestPKI, crls: CrlServer
) -> Iterator[RunningServer]:
    """The payments ecosystem (anchor sets jp-cbdc and eu-wallets, SD-JWT VC anchors) plus an
    x509 anchor in jp-cbdc: one anchor set mixing kinds."""
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[
            *(a.declaration() for a in payments.anchors.values()),
            x509_anchor_declaration(pki, crls.urls, anchor_id=X509, anchor_sets=[JP_SET]),
            _without_signature(x509_anchor_declaration(pki, crls.urls, anchor_id=LOGIN_ONLY)),
        ],
        clients=payments.clients(),
        overrides=fetcher_overrides(),
    )
    settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
    with running_server(settings) as running:
        yield running


def _without_signature(declaration: dict[str, Any]) -> dict[str, Any]:
    declaration["x509"].pop("signature")
    declaration["display_name"] = {"en": "Card login only (test)", "ja": "カードログインのみ"}
    return declaration


@pytest.fixture
def bank(server: RunningServer, payments: Payments) -> Bank:
    return Bank(server, payments)


# ---------------------------------------------------------------------------- helpers


@dataclasses.dataclass
class QrPage:
    page: requests.Response
    link: str

    @property
    def enrolment(self) -> bool:
        return 'id="enrolment"' in self.page.text


class CardHolder:
    """A person with a browser and a card app (the two certificates of one card)."""

    def __init__(self, server: RunningServer, card: Card, browser: Browser | None = None) -> None:
        self.server = server
        self.browser = browser or Browser(server)
        self.app = CardApp(server, card)

    def open(self, url: str) -> requests.Response:
        page = self.browser.follow(self.browser.get(url))
        assert page.status_code == 200, page.text
        return page

    def choose(self, login_page: requests.Response, anchor_id: str = X509) -> QrPage:
        """Choose the x509 anchor on the login page: the QR code page."""
        chosen = self.browser.submit(login_page.text, "/certificate", anchor=anchor_id)
        assert chosen.status_code == 303, chosen.text
        page = self.browser.follow(chosen)
        assert page.status_code == 200, page.text
        assert "<svg" in page.text  # the QR code, rendered server-side
        link = parse(page.text).links["same-device"].replace("&amp;", "&")
        assert link.startswith("trustanchor-certificate://?client_id=")
        return QrPage(page, link)

    def login_page(self, interaction_path: str) -> requests.Response:
        return self.open(self.server.url(interaction_path))

    def log_in(
        self, login_page: requests.Response, *, same_device: bool = True
    ) -> requests.Response:
        """Log in as a card app does: answer what is asked; asked to enrol (unknown
        certificate), choose the anchor again and answer with both certificates. The card app
        on this browser's phone sends the person back (``same_device``: the login may start an
        SSO session); otherwise the browser continues from the interaction page."""
        path = _path(login_page)
        qr = self.choose(login_page)
        answer = self.app.answer(self.app.request(qr.link))
        if answer.status_code == 400:
            assert answer.json()["error_description"] == certificate_login.ENROLMENT_REQUIRED
            qr = self.choose(self.login_page(path))
            assert qr.enrolment
            answer = self.app.answer(self.app.request(qr.link))
        assert answer.status_code == 200, answer.text
        if same_device:
            return self.open(answer.json()["redirect_uri"])
        return self.login_page(path)

    def decide(self, page: requests.Response, decision: str = "approve") -> dict[str, str]:
        response = self.browser.submit(page.text, "/consent", decision=decision)
        assert response.status_code == 303, response.text
        return authorization_response(response.headers["Location"], BANK_REDIRECT, self.server)


def _path(page: requests.Response) -> str:
    """The interaction path of a page the browser shows (its cancel form's action)."""
    action = parse(page.text).form_with("/cancel").action
    return action.rsplit("/", 1)[0]


def is_consent(page: requests.Response) -> bool:
    return any(form.action.endswith("/consent") for form in parse(page.text).forms)


def start(bank: Bank, holder: CardHolder, **params: Any) -> tuple[requests.Response, Pkce]:
    """The bank pushes a plain login request; the person's browser shows the login page."""
    pkce = Pkce.generate()
    extra = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    url = bank.rp.authorization_url(bank.rp.request_uri(pkce, **extra))
    return holder.open(url), pkce


def userinfo(server: RunningServer, access_token: str) -> dict[str, Any]:
    response = requests.get(
        server.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def subject_of(tokens: dict[str, Any]) -> str:
    return str(jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"])


def stored_identities(server: RunningServer, anchor_id: str = X509) -> list[Any]:
    with server.services.db.reader() as conn:
        query = select(identities).where(identities.c.anchor_id == anchor_id)
        return list(conn.execute(query).all())


def refusal(answer: requests.Response) -> str:
    assert answer.status_code == 400, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["error"] == "invalid_request" and "redirect_uri" not in body
    return str(body["error_description"])


def poll(holder: CardHolder, path: str) -> dict[str, Any]:
    response = holder.browser.get(holder.server.url(f"{path}/status"))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------------------- enrolment


def test_enrolment_with_both_certificates_then_login_with_the_authentication_one(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    card = pki.person(label="taro", name="山田 太郎", birthdate="19800102")
    taro = CardHolder(server, card)
    page, pkce = start(bank, taro, claims=VERIFIED_CLAIMS)
    path = _path(page)
    assert "My Number Card (test)" in page.text

    qr = taro.choose(page)
    assert qr.enrolment  # verified claims asked for: the signature certificate too
    request = taro.app.request(qr.link)
    assert request["certificates"] == ["authentication", "signature"]
    assert request["algs"] == ["RS256"]
    assert request["client_name"] == "Test Bank"
    assert request["anchor"]["id"] == X509
    assert request["response_uri"] == server.url("/certificate/response")
    assert len(request["nonce"]) >= 43  # 256 bits, base64url
    answer = taro.app.answer(request)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    assert poll(taro, path) == {"done": True, "state": "consent"}

    consent = taro.login_page(path)
    assert is_consent(consent)
    assert "My Number Card (test)" in consent.text and "山田 太…" in consent.text
    tokens = bank.redeem(taro.decide(consent)["code"], pkce)
    first_subject = subject_of(tokens)
    verified = userinfo(server, tokens["access_token"])["verified_claims"]
    assert verified["verification"]["trust_framework"] == "jp_aml"
    assert verified["verification"]["evidence"][0]["type"] == "electronic_signature"
    assert verified["claims"] == {
        "name": "山田 太郎",
        "birthdate": "1980-01-02",
        "address": {"formatted": "東京都千代田区霞が関1-1-1"},
    }
    [enrolled] = stored_identities(server)
    assert enrolled.claims["name"] == "山田 太郎"

    # Later, in another browser: a plain login asks for the authentication certificate only.
    again = CardHolder(server, card)
    page, pkce = start(bank, again)
    qr = again.choose(page)
    assert not qr.enrolment
    request = again.app.request(qr.link)
    assert request["certificates"] == ["authentication"]
    answer = again.app.answer(request)
    assert answer.status_code == 200, answer.text
    consent = again.login_page(_path(page))
    assert is_consent(consent) and "山田 太…" in consent.text  # the name kept from enrolment
    tokens = bank.redeem(again.decide(consent)["code"], pkce)
    assert subject_of(tokens) == first_subject  # the same holder
    [identity] = stored_identities(server)
    assert identity.id == enrolled.id and identity.holder_id == enrolled.holder_id
    assert dict(identity.claims) == dict(enrolled.claims)  # not wiped by the later login
    assert identity.verified_at == enrolled.verified_at


def test_an_unknown_certificate_without_signature_must_enrol_then_succeeds(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    hanako = CardHolder(server, pki.person(label="hanako", name="佐藤 花子"))
    page, pkce = start(bank, hanako)
    path = _path(page)
    qr = hanako.choose(page)
    assert not qr.enrolment
    request = hanako.app.request(qr.link)
    assert request["certificates"] == ["authentication"]

    assert refusal(hanako.app.answer(request)) == "certificate_enrolment_required"
    assert stored_identities(server) == []  # nothing recorded for an unknown certificate
    assert poll(hanako, path) == {"done": True, "state": "failed"}
    login_page = hanako.login_page(path)
    assert "this card&#39;s certificate is not registered here yet" in login_page.text
    japanese = hanako.browser.get(server.url(f"{path}?lang=ja"))
    assert "このカードの電子証明書はまだ登録されていません" in japanese.text

    qr = hanako.choose(login_page)
    assert qr.enrolment
    request = hanako.app.request(qr.link)
    assert request["certificates"] == ["authentication", "signature"]
    # The app must sign with both: the authentication certificate alone is refused again.
    answer = hanako.app.answer(request, ["authentication"])
    assert refusal(answer) == "signature_certificate_missing"

    qr = hanako.choose(hanako.login_page(path))
    assert qr.enrolment  # still enrolling after a failed enrolment
    answer = hanako.app.answer(hanako.app.request(qr.link))
    assert answer.status_code == 200, answer.text
    consent = hanako.login_page(path)
    assert is_consent(consent) and "佐藤 花…" in consent.text
    bank.redeem(hanako.decide(consent)["code"], pkce)
    [identity] = stored_identities(server)
    assert identity.claims["name"] == "佐藤 花子"


def test_a_signature_certificate_not_asked_for_is_refused(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    person = CardHolder(server, pki.person(label="jiro"))
    page, _ = start(bank, person)
    request = person.app.request(person.choose(page).link)
    assert request["certificates"] == ["authentication"]
    answer = person.app.answer(request, ["authentication", "signature"])
    assert refusal(answer) == "signature_not_requested"
    assert stored_identities(server) == []


def test_an_anchor_without_a_signature_profile_logs_in_with_the_authentication_one(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    """Login only: never an enrolment (no signature certificate to ask for), so an unknown
    authentication certificate logs in as a new holder, without claims."""
    person = CardHolder(server, pki.person(label="login-only"))
    page, pkce = start(bank, person, claims=VERIFIED_CLAIMS)
    qr = person.choose(page, LOGIN_ONLY)
    assert not qr.enrolment
    request = person.app.request(qr.link)
    assert request["certificates"] == ["authentication"]
    answer = person.app.answer(request)
    assert answer.status_code == 200, answer.text
    consent = person.login_page(_path(page))
    assert is_consent(consent)
    tokens = bank.redeem(person.decide(consent)["code"], pkce)
    assert "verified_claims" not in userinfo(server, tokens["access_token"])
    [identity] = stored_identities(server, LOGIN_ONLY)
    assert dict(identity.claims) == {}


# ---------------------------------------------------------------------------- one-time use


def test_a_transaction_is_used_once(server: RunningServer, bank: Bank, pki: TestPKI) -> None:
    person = CardHolder(server, pki.person(label="saburo"))
    page, _ = start(bank, person, claims=VERIFIED_CLAIMS)
    qr = person.choose(page)
    request = person.app.request(qr.link)
    form = {
        "state": request["state"],
        "authentication": person.app.challenge(request, "authentication"),
        "signature": person.app.challenge(request, "signature"),
    }
    first = requests.post(request["response_uri"], data=form, timeout=10)
    assert first.status_code == 200, first.text
    replay = requests.post(request["response_uri"], data=form, timeout=10)
    assert refusal(replay) == "unknown, expired or already used state"
    # The request object is gone with the transaction.
    uri = request["response_uri"].replace("/response", f"/request/{request['state']}")
    assert requests.get(uri, timeout=10).status_code == 404


def test_a_malformed_answer_uses_up_the_transaction(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    person = CardHolder(server, pki.person(label="shiro"))
    page, _ = start(bank, person)
    path = _path(page)
    request = person.app.request(person.choose(page).link)
    token = person.app.challenge(request, "authentication")
    twice = requests.post(
        request["response_uri"],
        data=[("state", request["state"]), ("authentication", token), ("authentication", token)],
        timeout=10,
    )
    assert refusal(twice) == "repeated_parameter"
    assert refusal(person.app.answer(request)) == "unknown, expired or already used state"
    assert "the card app&#39;s answer was not understood" in person.login_page(path).text


def test_an_answer_to_another_interactions_challenge_is_refused(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    """The card app signs the challenge of interaction A (its nonce and txn) and the answer is
    posted for interaction B, or B's nonce with A's txn: refused, and B's attempt used up."""
    card = pki.person(label="goro")
    first, second = CardHolder(server, card), CardHolder(server, card)
    page_a, _ = start(bank, first, claims=VERIFIED_CLAIMS)
    page_b, _ = start(bank, second, claims=VERIFIED_CLAIMS)
    request_a = first.app.request(first.choose(page_a).link)
    request_b = second.app.request(second.choose(page_b).link)
    assert request_a["nonce"] != request_b["nonce"]

    # A's whole challenge, posted with B's state.
    answer = first.app.answer(request_a, state=request_b["state"])
    assert refusal(answer) == "challenge_nonce_mismatch"
    assert poll(second, _path(page_b)) == {"done": True, "state": "failed"}
    assert stored_identities(server) == []

    # B's nonce with A's txn (another attempt of B's interaction).
    request_b2 = second.app.request(second.choose(second.login_page(_path(page_b))).link)
    mixed = second.app.answer(request_b2, txn=request_a["state"])
    assert refusal(mixed) == "challenge_txn_mismatch"
    # A's own transaction is untouched and still works.
    assert first.app.answer(request_a).status_code == 200
    assert poll(first, _path(page_a)) == {"done": True, "state": "consent"}
    assert poll(second, _path(page_b)) == {"done": True, "state": "failed"}


def test_an_answer_with_another_audience_is_refused(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    person = CardHolder(server, pki.person(label="rokuro"))
    page, _ = start(bank, person, claims=VERIFIED_CLAIMS)
    request = person.app.request(person.choose(page).link)
    answer = person.app.answer(request, aud="https://other-verifier.example")
    assert refusal(answer) == "challenge_wrong_audience"
    assert stored_identities(server) == []


# ---------------------------------------------------------------------------- same device


def _answered(server: RunningServer, bank: Bank, pki: TestPKI) -> tuple[CardHolder, str, str]:
    person = CardHolder(server, pki.person(label="same-device"))
    page, _ = start(bank, person, claims=VERIFIED_CLAIMS)
    request = person.app.request(person.choose(page).link)
    answer = person.app.answer(request)
    assert answer.status_code == 200, answer.text
    redirect_uri = str(answer.json()["redirect_uri"])
    assert redirect_uri.startswith(
        server.url(f"/certificate/done/{request['state']}?response_code=")
    )
    return person, _path(page), redirect_uri


def test_same_device_return_resumes_the_login_once_in_the_bound_browser(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    person, path, redirect_uri = _answered(server, bank, pki)
    back = person.browser.get(redirect_uri)
    assert back.status_code == 303 and back.headers["Location"] == path
    assert is_consent(person.browser.follow(back))
    used = person.browser.get(redirect_uri)
    assert used.status_code == 400
    assert "This link from your card app has expired or was already used" in used.text


def test_a_return_link_opened_elsewhere_is_used_up_there(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    """On another device the page says to continue where the login started, and the link is
    used up: forwarded to the browser that showed the QR code, it makes nothing local."""
    person, path, redirect_uri = _answered(server, bank, pki)
    phone_browser = Browser(server)
    elsewhere = phone_browser.follow(phone_browser.get(redirect_uri))
    assert elsewhere.status_code == 200 and elsewhere.url == server.url("/certificate/elsewhere")
    assert "Continue on the device where you started" in elsewhere.text
    assert path not in elsewhere.text
    assert person.browser.get(redirect_uri).status_code == 400
    assert poll(person, path) == {"done": True, "state": "consent"}


def test_same_device_return_needs_the_response_code(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    person, path, redirect_uri = _answered(server, bank, pki)
    bare = redirect_uri.split("?")[0]
    for url in (bare, bare + "?response_code=" + "A" * 43, redirect_uri + "&response_code=x"):
        refused = person.browser.get(url)
        assert refused.status_code == 400, url
        assert "Location" not in refused.headers
    # A wallet's return page knows nothing of a certificate transaction.
    wallet_done = person.browser.get(redirect_uri.replace("/certificate/done/", "/wallet/done/"))
    assert wallet_done.status_code == 400
    assert poll(person, path) == {"done": True, "state": "consent"}


# ---------------------------------------------------------------------------- declined, suspended


def test_a_declined_answer_is_acknowledged_and_shown(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    person = CardHolder(server, pki.person(label="declines"))
    page, _ = start(bank, person)
    path = _path(page)
    request = person.app.request(person.choose(page).link)
    answer = person.app.decline(request)
    assert answer.status_code == 200 and answer.json() == {}
    assert poll(person, path) == {"done": True, "state": "failed"}
    assert "you declined in the card app" in person.login_page(path).text
    japanese = person.browser.get(server.url(f"{path}?lang=ja"))
    assert "カードアプリで操作を取りやめました" in japanese.text
    assert refusal(person.app.answer(request)) == "unknown, expired or already used state"


def test_a_suspended_anchor_refuses_the_request_and_the_answer(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    person = CardHolder(server, pki.person(label="suspended"))
    page, _ = start(bank, person)
    path = _path(page)
    first = person.choose(page)
    second = person.choose(person.login_page(path))
    request = person.app.request(second.link)
    server.services.anchors.set_status(X509, "suspended", server.services.clock.now())

    uri = parse_request_uri(first.link)
    refused = requests.get(uri, timeout=10)
    assert refused.status_code == 404
    assert refused.json() == {
        "error": "invalid_request_uri",
        "error_description": "anchor_suspended",
    }
    assert refusal(person.app.answer(request)) == "anchor_suspended"
    login_page = person.browser.get(server.url(path))
    assert f'value="{X509}"' not in login_page.text  # no longer offered
    assert f'value="{LOGIN_ONLY}"' in login_page.text
    assert "this trust anchor is suspended at the moment" in login_page.text
    # The QR page of a suspended anchor sends the person back to the list.
    qr = person.browser.get(first.page.url)
    assert qr.status_code == 303 and qr.headers["Location"] == path


def parse_request_uri(link: str) -> str:
    return parse_qs(urlsplit(link).query)["request_uri"][0]


def test_ids_that_are_not_ours_and_other_methods_transactions_open_nothing(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    """A NUL byte, markup or an overlong id: a clean 4xx, never a 500. A certificate
    transaction opens nothing at the wallet's endpoints, nor another interaction's QR page."""
    person = CardHolder(server, pki.person(label="ids"))
    page, _ = start(bank, person)
    path = _path(page)
    qr = person.choose(page)
    txn = parse_request_uri(qr.link).rsplit("/", 1)[1]
    for bad in ("%00", "a%00b", "%3Cscript%3E", "x" * 65):
        fetched = requests.get(server.url(f"/certificate/request/{bad}"), timeout=10)
        assert fetched.status_code in (400, 404)
        done = requests.get(server.url(f"/certificate/done/{bad}?response_code=x"), timeout=10)
        assert done.status_code == 400
        assert person.browser.get(server.url(f"{path}/certificate/{bad}")).status_code == 400
    assert requests.get(server.url(f"/wallet/request/{txn}"), timeout=10).status_code == 404
    assert person.browser.get(server.url(f"{path}/wallet/{txn}")).status_code == 400
    other = CardHolder(server, pki.person(label="ids-other"))
    other_page, _ = start(bank, other)
    assert (
        other.browser.get(server.url(f"{_path(other_page)}/certificate/{txn}")).status_code == 400
    )
    assert person.browser.get(qr.page.url).status_code == 200


# ---------------------------------------------------------------------------- counter seam


def test_an_answer_on_behalf_of_another_client_is_refused(
    server: RunningServer, bank: Bank, pki: TestPKI
) -> None:
    """The counter channel (services/counter_login.py) calls receive with the authenticated
    terminal's client id: it must be the client of the interaction, else refused (and used up)."""
    person = CardHolder(server, pki.person(label="counter"))
    page, _ = start(bank, person, claims=VERIFIED_CLAIMS)
    request = person.app.request(person.choose(page).link)
    form = {
        "state": [request["state"]],
        "authentication": [person.app.challenge(request, "authentication")],
        "signature": [person.app.challenge(request, "signature")],
    }
    presence = login_completion.Presence("in_person", {"branch": "b1", "operator": "op"})
    with pytest.raises(certificate_login.CertificateRequestRefused) as refused:
        certificate_login.receive(
            server.services, form, presence=presence, on_behalf_of="another-terminal"
        )
    assert refused.value.description == "counter_client_mismatch"
    with pytest.raises(certificate_login.CertificateRequestRefused):
        certificate_login.receive(server.services, form, presence=presence, on_behalf_of=None)
    assert stored_identities(server) == []
    with server.services.db.reader() as conn:
        row = conn.execute(
            select(wallet_transactions).where(wallet_transactions.c.id == request["state"])
        ).one()
    assert row.consumed_at is not None and row.outcome["reason"] == "counter_client_mismatch"


# ---------------------------------------------------------------------------- mixed-kind set


def test_link_and_transfer_between_holders_of_an_anchor_set_mixing_kinds(
    server: RunningServer, bank: Bank, payments: Payments, pki: TestPKI
) -> None:
    """Taro is verified through the x509 anchor, Hanako through the SD-JWT VC anchor; both
    anchors are in jp-cbdc: each links their accounts, and money moves both ways."""
    taro = CardHolder(server, pki.person(label="mixed-taro", name="山田 太郎"))
    taro_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    taro_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    pkce = Pkce.generate()
    page = taro.open(bank.authorization_url([link(taro_deposit, taro_wallet)], pkce))
    consent = taro.log_in(page)
    assert "Link your deposit account “Taro savings” with your CBDC wallet “Taro wallet”" in (
        parse(consent.text).text
    )
    tokens = bank.redeem(taro.decide(consent)["code"], pkce)
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["anchor_set"] == JP_SET

    hanako = Holder(server, payments, "hanako")
    hanako_deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    hanako_wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    pkce = Pkce.generate()
    page = hanako.open(bank.authorization_url([link(hanako_deposit, hanako_wallet)], pkce))
    bank.redeem(hanako.decide(hanako.log_in(page, JP_HIGH), "approve")["code"], pkce)

    # Taro (x509) sends to Hanako (SD-JWT VC): his browser's session goes straight to consent.
    pkce = Pkce.generate()
    consent = taro.open(
        bank.authorization_url([transfer(taro_wallet, hanako_wallet, "5000")], pkce)
    )
    text = parse(consent.text).text
    assert "Send JPY 5,000 from “Taro wallet”" in text
    assert f"The recipient was verified by {JP_HIGH} (test) at assurance level “high”" in text
    tokens = bank.redeem(taro.decide(consent)["code"], pkce)
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["authorization_details"] == [transfer(taro_wallet, hanako_wallet, "5000")]
    assert access["anchor_set"] == JP_SET

    # Hanako (SD-JWT VC) sends to Taro (x509).
    pkce = Pkce.generate()
    consent = hanako.open(
        bank.authorization_url([transfer(hanako_wallet, taro_wallet, "3000")], pkce)
    )
    text = parse(consent.text).text
    assert "The recipient was verified by My Number Card (test) at assurance level “high”" in text
    tokens = bank.redeem(hanako.decide(consent, "approve")["code"], pkce)
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["authorization_details"] == [transfer(hanako_wallet, taro_wallet, "3000")]
    assert access["anchor_set"] == JP_SET


# ---------------------------------------------------------------------------- joins across kinds

HANAKO = {"family_name": "佐藤", "given_name": "花子", "birthdate": "1980-01-02"}


def _step_up_to_the_card(
    server: RunningServer, bank: Bank, payments: Payments, card: Card
) -> tuple[Holder, CardHolder, Pkce, requests.Response]:
    """Hanako (SD-JWT VC, substantial) asks to send 200,000 JPY: the set wants a high login,
    and she chooses the x509 anchor; her card app's request and the step-up login page."""
    hanako = Holder(server, payments, "hanako")
    hanako.claims[JP_SUBSTANTIAL] = dict(HANAKO)
    deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    pkce = Pkce.generate()
    page = hanako.open(bank.authorization_url([link(deposit, wallet)], pkce))
    bank.redeem(hanako.decide(hanako.log_in(page, JP_SUBSTANTIAL), "approve")["code"], pkce)
    taro = Holder(server, payments, "taro")
    taro_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    taro_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    pkce = Pkce.generate()
    page = taro.open(bank.authorization_url([link(taro_deposit, taro_wallet)], pkce))
    bank.redeem(taro.decide(taro.log_in(page, JP_HIGH), "approve")["code"], pkce)

    pkce = Pkce.generate()
    consent = hanako.open(bank.authorization_url([transfer(wallet, taro_wallet, "200000")], pkce))
    assert "A stronger login is needed" in parse(consent.text).text
    login_page = hanako.step_up(consent)
    return hanako, CardHolder(server, card, hanako.browser), pkce, login_page


def test_a_step_up_with_the_persons_own_card_joins_their_holder(
    server: RunningServer, bank: Bank, payments: Payments, pki: TestPKI
) -> None:
    """Identity joins across kinds: the card's signature certificate (asked for, as the join
    rule compares names and birth date) proves the same person; the new x509 identity joins
    Hanako's holder and the transfer goes ahead at high."""
    card = pki.person(label="hanako-join", name="佐藤 花子", birthdate="19800102")
    hanako, phone, pkce, login_page = _step_up_to_the_card(server, bank, payments, card)
    path = _path(login_page)
    qr = phone.choose(login_page)
    assert qr.enrolment
    request = phone.app.request(qr.link)
    assert request["certificates"] == ["authentication", "signature"]
    answer = phone.app.answer(request)
    assert answer.status_code == 200, answer.text
    consent = phone.login_page(path)
    assert "Send JPY 200,000" in parse(consent.text).text
    tokens = bank.redeem(hanako.decide(consent, "approve")["code"], pkce)
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["acr"] == "urn:trustanchor:acr:high"
    with server.services.db.reader() as conn:
        holders = {
            row.anchor_id: row.holder_id
            for row in conn.execute(select(identities.c.anchor_id, identities.c.holder_id))
        }
    assert holders[X509] == holders[JP_SUBSTANTIAL]


def test_a_step_up_with_someone_elses_card_joins_nothing(
    server: RunningServer, bank: Bank, payments: Payments, pki: TestPKI
) -> None:
    card = pki.person(label="mallory-card", name="江藤 真理", birthdate="19900304")
    _, phone, _, login_page = _step_up_to_the_card(server, bank, payments, card)
    path = _path(login_page)
    request = phone.app.request(phone.choose(login_page).link)
    assert refusal(phone.app.answer(request)) == "identity_mismatch"
    assert stored_identities(server) == []
    assert "Send JPY 200,000" not in parse(phone.login_page(path).text).text


# ---------------------------------------------------------------------------- words


REASON_TABLES = (
    certificate_login.REASONS,
    x509_chain.REASONS,
    x509_challenge.REASONS,
    x509_claims.REASONS,
    revocation.REASONS,
)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_certificate_login_reason_has_plain_words(lang: str) -> None:
    texts = catalog(lang)
    reasons = [reason for table in REASON_TABLES for reason in table]
    assert [r for r in reasons if not texts.get(f"reasons.{r}")] == []
    if lang == "ja":
        assert all(not texts[f"reasons.{r}"].isascii() for r in reasons)
