"""A demo person logs in at the service through the demo eKYC bank's OpenID Provider (anchor
``demo-ekyc-bank``, kind ``oidc``) and links their accounts, all over real HTTP.

The service runs with config/demo.toml's declaration of the anchor (its issuer moved to the test's
port) and the demo bank's client with the key ``trustanchor.demo.prepare`` makes; the demo
parties' app (bank, ledger, wallet, the eKYC bank's provider) runs on its own origin. The
provider authenticates the service by ``private_key_jwt`` against the JWKS the service publishes
for it (``/upstream/demo-ekyc-bank/jwks.json``), fetched at use time.

Runs on SQLite and PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from support.credentials import Issuer, Wallet
from support.ecosystem import WalletApp
from support.html import parse
from support.payments import ANCHOR_SETS
from support.server import RunningServer, free_port, running_server, serving, test_settings

from trustanchor.config import load_settings
from trustanchor.demo import ekyc_op
from trustanchor.demo.bank.desk import link_details
from trustanchor.demo.ekyc_customers import load_customers
from trustanchor.demo.parties_app import create_app
from trustanchor.demo.people import person
from trustanchor.demo.prepare import prepare
from trustanchor.demo.site import DemoSite

REPO = Path(__file__).resolve().parents[2]
DEMO = load_settings(REPO / "config" / "demo.toml", environ={})


def ekyc_anchor(parties_url: str) -> dict[str, Any]:
    """config/demo.toml's ``demo-ekyc-bank`` declaration, its issuer on the test's port."""
    (declaration,) = [a for a in DEMO.anchors if a["id"] == ekyc_op.ANCHOR_ID]
    declaration = copy.deepcopy(declaration)
    assert declaration["oidc"]["issuer"] == "http://127.0.0.1:8001/ekyc-bank"
    declaration["oidc"]["issuer"] = parties_url + ekyc_op.ISSUER_PATH
    declaration["anchor_sets"] = ["jp-cbdc"]
    return declaration


def bank_client(keys_dir: Path, parties_url: str) -> dict[str, Any]:
    (declaration,) = [c for c in DEMO.clients if c["client_id"] == "demo-bank"]
    declaration = {k: v for k, v in declaration.items() if k != "jwks_file"}
    declaration["jwks"] = json.loads((keys_dir / "clients" / "demo-bank.jwks.json").read_text())
    declaration["redirect_uris"] = [f"{parties_url}/bank/callback"]
    declaration["post_logout_redirect_uris"] = [f"{parties_url}/bank/"]
    return declaration


@dataclass
class Demo:
    server: RunningServer
    site: DemoSite
    app: Any


@pytest.fixture
def demo(tmp_path: Path, database_url: str) -> Iterator[Demo]:
    keys_dir = tmp_path / "demo-keys"
    prepare(keys_dir)
    parties_port = free_port()
    parties_url = f"http://127.0.0.1:{parties_port}"
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ekyc_anchor(parties_url)],
        clients=[bank_client(keys_dir, parties_url)],
        overrides={"fetcher": {"http_hosts": ["127.0.0.1"], "private_hosts": ["127.0.0.1"]}},
    )
    settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
    with running_server(settings) as server:
        site = DemoSite(
            service_url=server.issuer,
            parties_url=parties_url,
            keys_dir=keys_dir,
            state_dir=tmp_path / "parties",
        )
        app = create_app(site)
        with serving(app, parties_port):
            yield Demo(server, site, app)
        app.extensions["demo_ekyc_op_stop"].set()
        app.extensions["demo_engine"].dispose()


class Browser:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.session = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.follow(self.session.get(url, allow_redirects=False, timeout=10))

    def follow(self, response: requests.Response) -> requests.Response:
        for _ in range(10):
            if response.status_code not in (302, 303):
                return response
            location = urljoin(response.url, response.headers["Location"])
            response = self.session.get(location, allow_redirects=False, timeout=10)
        raise AssertionError("too many redirects")

    def submit(
        self, page: requests.Response, action_suffix: str, **extra: str
    ) -> requests.Response:
        form = parse(page.text).form_with(action_suffix)
        url = urljoin(page.url, form.action)
        return self.session.post(
            url, data={**form.fields, **extra}, allow_redirects=False, timeout=10
        )

    def log_in_at_the_bank_op(
        self, service_login: requests.Response, login_id: str, password: str
    ) -> requests.Response:
        """From the service's login page: choose the eKYC bank, sign in there, agree; the
        service's next page."""
        assert service_login.url.startswith(self.demo.server.issuer), service_login.url
        text = parse(service_login.text).text
        assert "Demo eKYC Bank" in text
        started = self.submit(service_login, "/upstream", anchor=ekyc_op.ANCHOR_ID)
        assert started.status_code == 303, started.text
        issuer = self.demo.site.party(ekyc_op.ISSUER_PATH)
        assert started.headers["Location"].startswith(f"{issuer}/authorize?")
        assert "request_uri=" in started.headers["Location"]  # the provider has PAR: pushed
        bank_login = self.get(started.headers["Location"])
        assert bank_login.status_code == 200, bank_login.text
        assert "trustanchor service never sees" in bank_login.text  # the upstream's own page
        consent = self.submit(bank_login, "/login", login_id=login_id, password=password)
        assert consent.status_code == 200, consent.text
        back = self.submit(consent, "/consent", decision="approve")
        assert back.status_code == 302, back.text
        callback = back.headers["Location"]
        assert callback.startswith(self.demo.server.url(f"/upstream/{ekyc_op.ANCHOR_ID}/callback?"))
        assert parse_qs(urlsplit(callback).query)["iss"] == [issuer]
        return self.get(callback)

    def decide(self, consent: requests.Response) -> requests.Response:
        assert any(f.action.endswith("/consent") for f in parse(consent.text).forms), consent.text
        answer = self.submit(consent, "/consent", decision="approve")
        assert answer.status_code == 303, answer.text
        assert answer.headers["Location"].startswith(self.demo.site.party("/bank/callback?"))
        return self.follow(answer)


def test_hanako_logs_in_through_the_demo_ekyc_bank_and_links_her_accounts(demo: Demo) -> None:
    hanako = person("hanako")
    (customer,) = [c for c in load_customers() if c.person.id == "hanako"]
    browser = Browser(demo)
    welcome = browser.get(demo.site.party("/bank/"))
    service_login = browser.follow(browser.submit(welcome, "/bank/login"))
    consent = browser.log_in_at_the_bank_op(service_login, customer.login_id, customer.password)
    assert "You were verified by Demo eKYC Bank at assurance level “high”." in consent.text
    assert "山田 花" in consent.text  # the name the bank verified
    home = browser.decide(consent)
    assert home.url == demo.site.party("/bank/")
    assert "Hello, Hanako Yamada" in parse(home.text).text

    started = browser.submit(browser.get(demo.site.party("/bank/")), "/bank/link")
    link_consent = browser.follow(started)  # logged in at the service already: straight to consent
    result = browser.decide(link_consent)
    assert re.search(r'<dd id="decision" class="ok">Allowed</dd>', result.text), result.text
    desk = demo.app.extensions["demo_bank"]
    approved = re.search(r'<pre class="json" id="approved"[^>]*>(.*?)</pre>', result.text, re.S)
    assert approved is not None
    assert json.loads(html.unescape(approved.group(1))) == link_details(
        desk.account_id(hanako, "bank_deposit"), desk.account_id(hanako, "cbdc_wallet")
    )
    assert desk.active_link(hanako) is not None


def test_a_wrong_bank_password_never_reaches_the_service(demo: Demo) -> None:
    browser = Browser(demo)
    welcome = browser.get(demo.site.party("/bank/"))
    service_login = browser.follow(browser.submit(welcome, "/bank/login"))
    started = browser.submit(service_login, "/upstream", anchor=ekyc_op.ANCHOR_ID)
    bank_login = browser.get(started.headers["Location"])
    refused = browser.submit(bank_login, "/login", login_id="hanako", password="not-it")
    assert refused.status_code == 401
    assert "not right" in refused.text


# -- identity joins across anchor kinds ------------------------------------------------------------


STEP_UP_MAX_AGE = 2  # seconds: the test waits this long instead of shifting clocks


@dataclass
class JoinDemo(Demo):
    wallet_issuer: Issuer


@pytest.fixture
def join_demo(tmp_path: Path, database_url: str) -> Iterator[JoinDemo]:
    """The service with the smartphone credential anchor (a test-side issuer) and the eKYC bank
    in the jp-cbdc set, whose step-up above 100,000 JPY asks for a high login at most
    ``STEP_UP_MAX_AGE`` seconds old. (Not a shifted clock: the demo bank's client assertions
    are made on the real one.)"""
    keys_dir = tmp_path / "demo-keys"
    prepare(keys_dir)
    parties_port = free_port()
    parties_url = f"http://127.0.0.1:{parties_port}"
    issuer = Issuer.generate(issuer="https://demo-pid.test/jp")
    wallet_anchor = {
        "id": "jp-national-id",
        "kind": "sd_jwt_vc",
        "display_name": {"en": "My Number Card (demo)", "ja": "マイナンバーカード（デモ）"},
        "assurance_level": "high",
        "anchor_sets": ["jp-cbdc"],
        "sd_jwt_vc": {
            "issuer": issuer.issuer,
            "jwks": issuer.jwks(),
            "vct": [issuer.vct],
            "subject_claim": "sub",
            "claims": {
                "given_name": "given_name",
                "family_name": "family_name",
                "birthdate": "birthdate",
            },
            "trust_framework": "test",
            "status_check": "off",
        },
    }
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[wallet_anchor, ekyc_anchor(parties_url)],
        clients=[bank_client(keys_dir, parties_url)],
        overrides={"fetcher": {"http_hosts": ["127.0.0.1"], "private_hosts": ["127.0.0.1"]}},
    )
    anchor_sets = copy.deepcopy(ANCHOR_SETS)
    (jp_set,) = [s for s in anchor_sets if s["id"] == "jp-cbdc"]
    jp_set["policy"]["step_up"][0]["max_age"] = STEP_UP_MAX_AGE
    settings = dataclasses.replace(settings, anchor_sets=tuple(anchor_sets))
    with running_server(settings) as server:
        site = DemoSite(
            service_url=server.issuer,
            parties_url=parties_url,
            keys_dir=keys_dir,
            state_dir=tmp_path / "parties",
        )
        app = create_app(site)
        with serving(app, parties_port):
            yield JoinDemo(server, site, app, issuer)
        app.extensions["demo_ekyc_op_stop"].set()
        app.extensions["demo_engine"].dispose()


def log_in_with_wallet(
    browser: Browser, demo: JoinDemo, service_login: requests.Response, person_id: str
) -> requests.Response:
    """From the service's login page, with the person's smartphone credential (same device)."""
    who = person(person_id)
    wallet = Wallet.generate()
    credential = demo.wallet_issuer.issue(
        wallet,
        claims={
            "sub": who.sub,
            "given_name": who.given_name,
            "family_name": who.family_name,
            "birthdate": who.birthdate,
        },
        disclosable={"given_name", "family_name", "birthdate"},
        iat=int(time.time()) - 60,
    )
    wallet_page = browser.follow(browser.submit(service_login, "/wallet", anchor="jp-national-id"))
    assert wallet_page.status_code == 200, wallet_page.text
    links = parse(wallet_page.text).links
    phone = WalletApp(demo.server, wallet, credential)
    answer = phone.respond(phone.request_object(links["same-device"].replace("&amp;", "&")))
    assert answer.status_code == 200, answer.text
    return browser.follow(browser.get(answer.json()["redirect_uri"]))  # same-device return


def sign_in_and_link(browser: Browser, demo: JoinDemo, person_id: str) -> None:
    welcome = browser.get(demo.site.party("/bank/"))
    service_login = browser.follow(browser.submit(welcome, "/bank/login"))
    browser.decide(log_in_with_wallet(browser, demo, service_login, person_id))
    home = browser.get(demo.site.party("/bank/"))
    linked = browser.decide(browser.follow(browser.submit(home, "/bank/link")))
    assert re.search(r'<dd id="decision" class="ok">Allowed</dd>', linked.text), linked.text


def test_a_step_up_through_the_ekyc_bank_joins_the_wallet_holder(join_demo: JoinDemo) -> None:
    """Hanako logged in with her smartphone credential long ago; a transfer above 100,000 JPY
    asks for a fresh high login, which she makes at her bank's eKYC provider. That identity is
    new to the service and joins her (the policy's name-and-birthdate rule: the bank's verified
    name and birth date are hers), so the transfer from her linked wallet is allowed."""
    demo = join_demo
    taro, hanako = Browser(demo), Browser(demo)
    sign_in_and_link(taro, demo, "taro")
    sign_in_and_link(hanako, demo, "hanako")
    (customer,) = [c for c in load_customers() if c.person.id == "hanako"]

    time.sleep(STEP_UP_MAX_AGE + 1)  # her wallet login is too old for the step-up now
    home = hanako.get(demo.site.party("/bank/"))
    asked = hanako.follow(
        hanako.submit(home, "/bank/transfer", payee="taro", amount="150000", reference="")
    )
    shown = html.unescape(asked.text)
    assert "For amounts above JPY 100,000, the rules of " in shown, shown  # why: the threshold
    login_again = hanako.follow(hanako.submit(asked, "/step-up"))
    consent = hanako.log_in_at_the_bank_op(login_again, customer.login_id, customer.password)
    assert "You were verified by Demo eKYC Bank at assurance level “high”." in consent.text
    assert "Send JPY 150,000" in html.unescape(consent.text), consent.text
    result = hanako.decide(consent)
    assert re.search(r'<dd id="decision" class="ok">Allowed</dd>', result.text), result.text
