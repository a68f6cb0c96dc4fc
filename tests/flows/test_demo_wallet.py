"""The demo wallet against the real service over real HTTP.

The service runs with the demo's trust anchors (config/demo.toml's declarations, keys made by
trustanchor.demo.prepare in a temporary directory) and its same-device link pointing at the demo
wallet (``interaction.wallet_link_base``). The demo people's credentials are issued by
``prepare_wallet``, exactly as ``python -m trustanchor.demo.prepare`` does.

- the wallet's core (trustanchor.demo.holder) logs Hanako in: request object by reference,
  DCQL, presentation, the redirect back into the browser, consent, tokens;
- the wallet's pages, served on their own port like the demo parties' app, walk the same login
  from the service's same-device link, and from a QR code's link pasted into the wallet; Decline
  reaches the service's login page as a failure;
- Flask's test client drives the confirm page itself: what it shows, CSRF, Japanese, refusals.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from support.ecosystem import BANK_REDIRECT, Ecosystem
from support.html import parse
from support.rp import Pkce, RelyingParty
from support.server import RunningServer, free_port, running_server, serving, test_settings

from trustanchor.clock import SystemClock
from trustanchor.config import load_settings
from trustanchor.demo import prepare, wallet_pages
from trustanchor.demo.holder import HeldCredential, Holder, HolderError, TrustedVerifier
from trustanchor.demo.issuer import (
    IssuedCredential,
    credential_path,
    holder_key_path,
    load_ec_private_key,
)
from trustanchor.demo.people import person
from trustanchor.demo.site import DemoSite
from trustanchor.domain.identity import Authentication
from trustanchor.openid4vp.transaction_data import operation_digest
from trustanchor.randomness import SystemRandomness
from trustanchor.storage.tables import interactions

REPO = Path(__file__).resolve().parents[2]
DEMO = load_settings(REPO / "config" / "demo.toml", environ={})


@dataclass
class DemoWorld:
    server: RunningServer
    site: DemoSite
    ecosystem: Ecosystem

    @property
    def bank(self) -> RelyingParty:
        return RelyingParty(
            self.server, self.ecosystem.bank, SystemClock(), redirect_uri=BANK_REDIRECT
        )

    def credentials(self, person_id: str) -> list[HeldCredential]:
        stored = IssuedCredential.load(credential_path(self.site.state_dir, person_id))
        return [
            HeldCredential.parse(
                stored.credential,
                load_ec_private_key(holder_key_path(self.site.keys_dir, person_id)),
                credential_id=person_id,
                anchor_id=stored.anchor,
                issuer_name=stored.issuer_name,
            )
        ]


def demo_anchor_declarations(keys_dir: Path) -> list[dict[str, Any]]:
    """config/demo.toml's anchors with the JWKS that prepare wrote under ``keys_dir``."""
    anchors = []
    for declaration in DEMO.anchors:
        if declaration["kind"] != "sd_jwt_vc":  # the demo's x509 and oidc anchors: not the wallet's
            continue
        table = dict(declaration["sd_jwt_vc"])
        del table["jwks_file"]
        jwks_file = keys_dir / "anchors" / f"{declaration['id']}.jwks.json"
        table["jwks"] = json.loads(jwks_file.read_text())
        anchors.append({**declaration, "sd_jwt_vc": table})
    return anchors


def wallet_app(site: DemoSite) -> Flask:
    """A tiny stand-in for the demo parties' app: just the wallet blueprint."""
    app = Flask(__name__)
    app.register_blueprint(wallet_pages.blueprint, url_prefix="/wallet")
    wallet_pages.init_app(app, site)
    return app


@contextmanager
def demo_world(
    tmp_path: Path,
    database_url: str,
    *,
    anchor_sets: tuple[dict[str, Any], ...] = DEMO.anchor_sets,
    clients: Callable[[Ecosystem], list[dict[str, Any]]] = Ecosystem.client_declarations,
) -> Iterator[DemoWorld]:
    keys_dir, state_dir = tmp_path / "demo-keys", tmp_path / "demo-state"
    prepare.prepare(keys_dir)
    service_port, wallet_port = free_port(), free_port()
    wallet_url = f"http://127.0.0.1:{wallet_port}"
    ecosystem = Ecosystem()
    settings = dataclasses.replace(
        test_settings(
            tmp_path,
            database_url,
            port=service_port,
            anchors=demo_anchor_declarations(keys_dir),
            clients=clients(ecosystem),
            overrides={"interaction": {"wallet_link_base": f"{wallet_url}/wallet/authorize"}},
        ),
        anchor_sets=anchor_sets,
    )
    prepare.prepare_wallet(
        settings,
        keys_dir=keys_dir,
        state_dir=state_dir,
        clock=SystemClock(),
        randomness=SystemRandomness(),
    )
    site = DemoSite(
        service_url=settings.issuer,
        parties_url=wallet_url,
        keys_dir=keys_dir,
        state_dir=state_dir,
    )
    with running_server(settings) as server, serving(wallet_app(site), wallet_port):
        yield DemoWorld(server, site, ecosystem)


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[DemoWorld]:
    with demo_world(tmp_path, database_url) as running:
        yield running


def start_login(world: DemoWorld, browser: requests.Session, *, anchor: str) -> dict[str, Any]:
    """The bank pushes a request; the browser opens it and picks the anchor. Returns what the
    service's wallet page offers: the same-device link, the continue link and the PKCE pair."""
    pkce = Pkce.generate()
    request_uri = world.bank.request_uri(pkce, scope="openid profile")
    login = browser.get(world.bank.authorization_url(request_uri), timeout=10)
    assert login.status_code == 200, login.text
    form = parse(login.text).form_with("/wallet")
    started = browser.post(
        world.server.url(form.action),
        data={**form.fields, "anchor": anchor},
        timeout=10,
    )
    assert started.status_code == 200, started.text
    links = parse(started.text).links
    return {
        "same_device": links["same-device"].replace("&amp;", "&"),
        "continue": world.server.url(links["continue"]),
        "pkce": pkce,
    }


def finish_at_the_bank(
    world: DemoWorld, browser: requests.Session, consent: requests.Response, pkce: Pkce
) -> dict[str, Any]:
    """Approve on the consent page; redeem the code; the ID token's claims."""
    assert consent.status_code == 200, consent.text
    form = parse(consent.text).form_with("/consent")
    decision = browser.post(
        world.server.url(form.action),
        data={**form.fields, "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    assert decision.status_code == 303, decision.text
    location = decision.headers["Location"]
    assert location.startswith(BANK_REDIRECT + "?")
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = world.bank.redeem(code, pkce.verifier)
    assert tokens.status_code == 200, tokens.text
    jwks = KeySet.import_key_set(requests.get(world.server.url("/jwks"), timeout=10).json())
    id_token = jose_jwt.decode(tokens.json()["id_token"], jwks, algorithms=["ES256"])
    return dict(id_token.claims)


def the_service(world: DemoWorld) -> TrustedVerifier:
    return TrustedVerifier(
        client_id=world.server.issuer,
        display_name={"en": "trustanchor"},
        origin=world.server.issuer,
        jwks_uri=world.server.url("/jwks"),
    )


def test_the_holder_core_logs_hanako_in(world: DemoWorld) -> None:
    browser = requests.Session()
    login = start_login(world, browser, anchor="jp-national-id")
    link = login["same_device"]
    assert link.startswith(world.site.party("/wallet/authorize?"))

    with requests.Session() as phone_http:
        holder = Holder(
            http=phone_http,
            clock=SystemClock(),
            randomness=SystemRandomness(),
            verifiers=[the_service(world)],
            allow_http_loopback=True,
        )
        request = holder.fetch_request(link)
        assert request.client_id == world.server.issuer
        assert request.response_uri == world.server.url("/wallet/response")
        proposal = holder.propose(request, world.credentials("hanako"))
        (match,) = proposal.matches
        # The service asks for the subject and the profile claims its anchor maps; not the
        # address (scope address was not requested), which therefore stays hidden.
        assert set(match.claim_names) == {"sub", "given_name", "family_name", "birthdate"}
        redirect_uri = holder.present(proposal)
    assert redirect_uri is not None and redirect_uri.startswith(world.server.url("/wallet/done/"))

    # The browser follows the redirect_uri the wallet got: back into the interaction, consent.
    back = browser.get(redirect_uri, allow_redirects=False, timeout=10)
    assert back.status_code == 303
    consent = browser.get(world.server.url(back.headers["Location"]), timeout=10)
    claims = finish_at_the_bank(world, browser, consent, login["pkce"])
    assert claims["acr"] == "urn:trustanchor:acr:high"
    assert claims["aud"] == world.ecosystem.bank.client_id

    # The presentation was single-use: a second answer to the same request is refused.
    with requests.Session() as phone_http:
        again = Holder(
            http=phone_http,
            clock=SystemClock(),
            randomness=SystemRandomness(),
            verifiers=[the_service(world)],
            allow_http_loopback=True,
        )
        with pytest.raises(HolderError) as refused:
            again.fetch_request(link)
    assert refused.value.reason == "request_unavailable"


def test_the_wallet_pages_log_hanako_in_from_the_same_device_link(world: DemoWorld) -> None:
    browser = requests.Session()  # one browser: the service's pages and the wallet's
    login = start_login(world, browser, anchor="jp-national-id")
    opened = browser.get(login["same_device"], timeout=10)
    assert opened.status_code == 200
    page = parse(opened.text)
    picker = page.form_with("/wallet/person")
    assert {value for _, value in picker.buttons} == {"hanako", "taro", "erika", "aiko"}
    chose = browser.post(
        world.site.party("/wallet/person"),
        data={**picker.fields, "person": "hanako"},
        allow_redirects=False,
        timeout=10,
    )
    assert chose.status_code == 303
    assert chose.headers["Location"].startswith("/wallet/authorize?")
    confirm = browser.get(world.site.party(chose.headers["Location"]), timeout=10)
    assert confirm.status_code == 200, confirm.text
    assert "trustanchor (demo login service)" in confirm.text
    assert "My Number Card (demo)" in confirm.text
    for shown in ("花子", "山田", person("hanako").birthdate, person("hanako").sub):
        assert shown in confirm.text
    assert "Chiyoda" not in confirm.text  # the address is not asked for, so not shown
    form = parse(confirm.text).form_with("/wallet/respond")
    assert form.buttons == [("decision", "confirm"), ("decision", "decline")]
    shared = browser.post(
        world.site.party("/wallet/respond"),
        data={**form.fields, "decision": "confirm"},
        allow_redirects=False,
        timeout=10,
    )
    assert shared.status_code == 303, shared.text
    assert shared.headers["Location"].startswith(world.server.url("/wallet/done/"))
    back = browser.get(shared.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 303
    consent = browser.get(world.server.url(back.headers["Location"]), timeout=10)
    claims = finish_at_the_bank(world, browser, consent, login["pkce"])
    assert claims["acr"] == "urn:trustanchor:acr:high"


def test_a_qr_link_pasted_into_the_wallet_and_a_decline(world: DemoWorld) -> None:
    browser = requests.Session()
    login = start_login(world, browser, anchor="eu-pid")
    wallet = requests.Session()  # another device: the phone
    home = wallet.get(world.site.party("/wallet/"), timeout=10)
    picker = parse(home.text).form_with("/wallet/person")
    wallet.post(
        world.site.party("/wallet/person"), data={**picker.fields, "person": "erika"}, timeout=10
    )
    scan = parse(wallet.get(world.site.party("/wallet/scan"), timeout=10).text)
    form = scan.form_with("/wallet/scan")
    pasted = wallet.post(
        world.site.party("/wallet/scan"),
        data={**form.fields, "url": login["same_device"]},
        allow_redirects=False,
        timeout=10,
    )
    assert pasted.status_code == 303
    confirm = wallet.get(world.site.party(pasted.headers["Location"]), timeout=10)
    assert "EU PID wallet (demo)" in confirm.text and "Mustermann" in confirm.text
    form = parse(confirm.text).form_with("/wallet/respond")
    declined = wallet.post(
        world.site.party("/wallet/respond"),
        data={**form.fields, "decision": "decline"},
        timeout=10,
    )
    assert declined.status_code == 200
    assert 'id="outcome"' in declined.text and "you declined" in declined.text
    # The person's browser learns it from the service: the login failed, and says so.
    status = browser.get(login["continue"].split("?")[0].rstrip("/") + "/status", timeout=10).json()
    assert status == {"done": True, "state": "failed"}
    login_page = browser.get(login["continue"], timeout=10)
    assert login_page.status_code == 200 and 'role="alert"' in login_page.text
    assert "you declined to share it in your wallet" in login_page.text


def test_the_confirm_page_with_flask_test_client(world: DemoWorld) -> None:
    browser = requests.Session()
    login = start_login(world, browser, anchor="jp-national-id")
    link = urlsplit(login["same_device"])
    app = wallet_app(world.site)
    client = app.test_client()

    home = client.get("/wallet/?lang=ja")
    assert home.status_code == 200
    assert home.headers["Cache-Control"] == "no-store"
    csp = home.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and f"form-action 'self' {world.server.issuer}" in csp
    assert "これは誰のスマートフォンですか？" in home.text
    assert '<html lang="ja">' in home.text
    token = parse(home.text).form_with("/wallet/person").fields["csrf"]

    # Without the CSRF token nothing changes.
    refused = client.post("/wallet/person", data={"person": "hanako"})
    assert refused.status_code == 403
    assert 'data-reason="form_expired"' in refused.text
    chose = client.post("/wallet/person", data={"person": "hanako", "csrf": token})
    assert chose.status_code == 303

    cards = client.get("/wallet/?lang=en")
    assert "Hanako Yamada" in cards.text and "Chiyoda" in cards.text  # her whole credential
    assert "<script" not in cards.text

    confirm = client.get(f"/wallet/authorize?{link.query}&lang=en")
    assert confirm.status_code == 200, confirm.text
    page = parse(confirm.text)
    form = page.form_with("/wallet/respond")
    assert form.fields["person"] == "hanako" and form.fields["csrf"] == token
    assert form.fields["client_id"] == world.server.issuer
    assert ("decision", "confirm") in form.buttons and ("decision", "decline") in form.buttons
    assert 'id="verifier"' in confirm.text and "trustanchor (demo login service)" in confirm.text
    for label in ("Personal identifier", "Given name", "Family name", "Date of birth"):
        assert f"<dt>{label}</dt>" in confirm.text
    assert "<dt>Address</dt>" not in confirm.text
    # The language switch keeps the request.
    switch = [
        a for a in page.text.split('"') if a.startswith("/wallet/authorize?") and "lang=ja" in a
    ]
    assert switch and "request_uri=" in switch[0]

    # A tampered request object is refused on confirmation, in words.
    header, payload, signature = form.fields["request"].split(".")
    tampered = client.post(
        "/wallet/respond",
        data={
            **form.fields,
            "decision": "confirm",
            "request": f"{header}.{payload}.{signature[::-1]}",
        },
    )
    assert 'data-reason="bad_signature"' in tampered.text
    assert "The request&#39;s signature is not valid" in tampered.text
    # A form posted with another token than the wallet's cookie (a cross-site post) is refused.
    forged = {**form.fields, "csrf": "x" * 43, "decision": "confirm"}
    assert client.post("/wallet/respond", data=forged).status_code == 403

    shared = client.post("/wallet/respond", data={**form.fields, "decision": "confirm"})
    assert shared.status_code == 303
    assert shared.headers["Location"].startswith(world.server.url("/wallet/done/"))


def test_the_wrong_persons_phone_explains_itself(world: DemoWorld) -> None:
    browser = requests.Session()
    login = start_login(world, browser, anchor="jp-national-id")
    client = wallet_app(world.site).test_client()
    token = parse(client.get("/wallet/").text).form_with("/wallet/person").fields["csrf"]
    client.post("/wallet/person", data={"person": "erika", "csrf": token})
    answer = client.get("/wallet/authorize?" + urlsplit(login["same_device"]).query)
    assert answer.status_code == 200
    assert 'data-reason="no_matching_credential"' in answer.text
    assert "Is this the right person" in answer.text
    bad = client.post(
        "/wallet/scan", data={"csrf": token, "url": "https://example.com/?" + urlencode({"a": 1})}
    )
    assert bad.status_code == 400 and "not a wallet request" in bad.text


def test_demo_site_dataclass_is_what_the_wallet_reads(world: DemoWorld) -> None:
    app = wallet_app(dataclasses.replace(world.site, service_url="http://127.0.0.1:1"))
    state = app.extensions[wallet_pages.EXTENSION]
    verifier = state.verifier()
    assert verifier.client_id == "http://127.0.0.1:1"
    assert verifier.jwks_uri == "http://127.0.0.1:1/jwks"
    assert app.extensions[wallet_pages.SITE_EXTENSION].service_url == "http://127.0.0.1:1"


# -- dynamic linking: the wallet shows the payment and signs it (docs/DYNAMIC-LINKING.md) ------

LINKING_SETS = tuple(
    {**s, "policy": {**s["policy"], "dynamic_linking": ["value_transfer"]}}
    if s["id"] == "jp-cbdc"
    else s
    for s in DEMO.anchor_sets
)


def paying_bank(ecosystem: Ecosystem) -> list[dict[str, Any]]:
    """The ecosystem's bank, allowed to register accounts and ask for transfers."""
    bank, *others = ecosystem.client_declarations()
    return [
        {
            **bank,
            "scope": "openid profile accounts",
            "authorization_details_types": ["account_link", "value_transfer"],
        },
        *others,
    ]


@pytest.fixture
def linking_world(tmp_path: Path, database_url: str) -> Iterator[DemoWorld]:
    with demo_world(
        tmp_path, database_url, anchor_sets=LINKING_SETS, clients=paying_bank
    ) as running:
        yield running


def register(world: DemoWorld, reference: str, label: str) -> str:
    token = world.bank.post("/token", {"grant_type": "client_credentials", "scope": "accounts"})
    assert token.status_code == 200, token.text
    answer = requests.post(
        world.server.url("/accounts"),
        json={"reference": reference, "kind": "cbdc_wallet", "label": label},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["account_id"])


def test_the_wallet_shows_the_payment_signs_it_and_can_switch_person(
    linking_world: DemoWorld,
) -> None:
    world = linking_world
    debtor = register(world, "hanako-wallet", "Hanako's wallet")
    creditor = register(world, "shop-wallet", "Kissa Sakura")
    entry = {
        "type": "value_transfer",
        "instructed_amount": {"currency": "JPY", "amount": "5000"},
        "debtor_account": debtor,
        "creditor_account": creditor,
        "remittance_reference": "INV-2026-0001",
    }
    pkce = Pkce.generate()
    request_uri = world.bank.request_uri(
        pkce, scope="openid", authorization_details=json.dumps([entry])
    )
    browser = requests.Session()
    login = browser.get(world.bank.authorization_url(request_uri), timeout=10)
    form = parse(login.text).form_with("/wallet")
    started = browser.post(
        world.server.url(form.action), data={**form.fields, "anchor": "jp-national-id"}, timeout=10
    )
    links = parse(started.text).links
    query = urlsplit(links["same-device"].replace("&amp;", "&")).query

    client = wallet_app(world.site).test_client()
    token = parse(client.get("/wallet/").text).form_with("/wallet/person").fields["csrf"]
    client.post("/wallet/person", data={"person": "taro", "csrf": token})
    as_taro = client.get(f"/wallet/authorize?{query}&lang=en")
    assert as_taro.status_code == 200, as_taro.text
    assert parse(as_taro.text).form_with("/wallet/respond").fields["person"] == "taro"
    # The payment leads the share screen, in words (payee label, its bank, masked account).
    assert "Approve this payment?" in as_taro.text
    assert '<p class="payment-amount" id="payment-amount-1"><strong>JPY 5,000</strong></p>' in (
        as_taro.text
    )
    for shown in ("Kissa Sakura", "Test Bank", "…" + creditor[-4:], "INV-2026-0001"):
        assert f"<dd>{shown}</dd>" in as_taro.text or f">{shown}</dd>" in as_taro.text
    assert debtor not in as_taro.text and creditor not in as_taro.text  # masked only

    # Not Taro's phone after all: switch person right here; the request is fetched again.
    switch = parse(as_taro.text).form_with("/wallet/person")
    assert switch.fields["request_uri"] and ("person", "hanako") in switch.buttons
    moved = client.post("/wallet/person", data={**switch.fields, "person": "hanako"})
    assert moved.status_code == 303
    as_hanako = client.get(moved.headers["Location"] + "&lang=ja")
    confirm = parse(as_hanako.text).form_with("/wallet/respond")
    assert confirm.fields["person"] == "hanako"
    assert "この支払いを承認しますか？" in as_hanako.text and "5,000円" in as_hanako.text

    shared = client.post("/wallet/respond", data={**confirm.fields, "decision": "confirm"})
    assert shared.status_code == 303, shared.text
    with world.server.services.db.reader() as conn:
        rows = conn.execute(
            select(interactions.c.authentication).where(interactions.c.state == "consent")
        ).all()
    [authentication] = [Authentication.from_json(row.authentication) for row in rows]
    assert authentication.signed_operations == (operation_digest(entry),)
