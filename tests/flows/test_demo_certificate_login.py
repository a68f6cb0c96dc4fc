"""Certificate login in the demo, over HTTP, against the demo exactly as ``python -m
trustanchor.demo`` starts it (on free ports, with its own keys and state): the demo JPKI CA's
My Number Cards, the phone's card app, the branch counter terminal and the jp-jpki anchor of
config/demo.toml, with the service fetching the demo CA's CRLs from the parties' app.

- Hanako links her accounts at the online bank logging in with her card (autopilot style: the
  card app's own code answers the same-device link; the first answer with the authentication
  certificate only is refused as an unknown card, the second enrols both certificates);
- Taro's card is on the CRL: refused, and nothing is linked;
- Ume has no smartphone: at the branch's counter the staff start the link, the terminal's card
  reader answers with her card and her PIN, she approves on the terminal; then she sends money
  to Taro and the ledger executes it;
- a card that is not the customer's (Hanako's, put on the reader for Ume) links nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from cryptography import x509
from support.server import REPO, free_port

from trustanchor.demo.autopilot import AutopilotError
from trustanchor.demo.bank.desk import link_details
from trustanchor.demo.branch import open_branch
from trustanchor.demo.card_app import DEMO_AUTH_PIN, DEMO_SIGN_PASSWORD, CardApp, CardError
from trustanchor.demo.card_autopilot import approve_with_card
from trustanchor.demo.jpki_ca import load_pki
from trustanchor.demo.parties_state import open_bank, parties_engine
from trustanchor.demo.people import person
from trustanchor.demo.phone import service_verifier
from trustanchor.demo.site import DemoSite

START_TIMEOUT = 120.0


@dataclass
class RunningDemo:
    site: DemoSite
    log: Path


def demo_config(tmp_path: Path) -> Path:
    """config/demo.toml with the keys under ``tmp_path`` (the checkout's keys/demo untouched)."""
    directory = tmp_path / "config"
    directory.mkdir()
    keys = tmp_path / "keys"
    text = (REPO / "config" / "demo.toml").read_text("utf-8")
    text = text.replace('keys_dir = "../keys/demo"', f'keys_dir = "{keys}"')
    text = text.replace('"../keys/demo/', f'"{keys}/')
    (directory / "demo.toml").write_text(text, "utf-8")
    return directory / "demo.toml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    tmp_path = tmp_path_factory.mktemp("certificate-demo")
    service_port, parties_port = free_port(), free_port()
    state, log = tmp_path / "state", tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTANCHOR_")}
    command = [
        sys.executable,
        "-m",
        "trustanchor.demo",
        "--config",
        str(demo_config(tmp_path)),
        "--service-port",
        str(service_port),
        "--parties-port",
        str(parties_port),
        "--state-dir",
        str(state),
    ]
    with log.open("wb") as output:
        launcher = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    site = DemoSite(
        f"http://127.0.0.1:{service_port}",
        f"http://127.0.0.1:{parties_port}",
        tmp_path / "keys",
        state,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "The demo is running" not in log.read_text("utf-8", errors="replace"):
            assert launcher.poll() is None, log.read_text("utf-8", errors="replace")
            assert time.monotonic() < deadline, log.read_text("utf-8", errors="replace")
            time.sleep(0.5)
        yield RunningDemo(site, log)
    finally:
        launcher.terminate()
        try:
            launcher.wait(timeout=20)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait(timeout=5)


class _Forms(HTMLParser):
    """Forms (action, inputs, named buttons) and links by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.links: dict[str, str] = {}
        self._current: tuple[str, dict[str, str], dict[str, str]] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = (values.get("action", ""), {}, {})
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and "name" in values:
            if values.get("type") != "radio":
                self._current[1][values["name"]] = values.get("value", "")
        elif tag == "button" and self._current is not None and "name" in values:
            self._current[2][values.get("value", "")] = values["name"]
        elif tag == "a" and "id" in values:
            self.links[values["id"]] = values.get("href", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def form(self, action_suffix: str, **having: str) -> tuple[str, dict[str, str]]:
        for action, fields, _buttons in self.forms:
            if action.endswith(action_suffix) and all(
                fields.get(k) == v for k, v in having.items()
            ):
                return action, dict(fields)
        raise AssertionError(f"no form ending {action_suffix} with {having}")


class Terminal:
    """The branch's counter terminal: its browser (across both origins) and its staff."""

    def __init__(self, demo: RunningDemo, operator: str = "staff-0412") -> None:
        self.site = demo.site
        self.browser = requests.Session()
        self.browser.trust_env = False
        signin = self.follow(self.browser.get(self.site.party("/branch/"), timeout=10))
        target, fields = _Forms(signin.text).form("/branch/signin")
        answer = self.post(urljoin(signin.url, target), {**fields, "operator": operator})
        assert answer.status_code == 200 and "staff-0412" in answer.text, answer.text

    def follow(self, response: requests.Response) -> requests.Response:
        for _ in range(12):
            if response.status_code not in (302, 303):
                return response
            target = urljoin(response.url, response.headers["Location"])
            response = self.browser.get(target, allow_redirects=False, timeout=10)
        raise AssertionError("too many redirects")

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        return self.follow(self.browser.post(url, data=data, allow_redirects=False, timeout=10))

    def submit(self, page: requests.Response, action: str, **extra: str) -> requests.Response:
        target, fields = _Forms(page.text).form(action)
        return self.post(urljoin(page.url, target), {**fields, **extra})

    def operation(self, purpose: str, customer: str, card: str, **extra: str) -> requests.Response:
        """Start ``purpose`` for ``customer`` at the counter, read ``card`` with the demo PINs,
        approve on the service's consent page; the branch's operation page."""
        home = self.follow(self.browser.get(self.site.party("/branch/"), timeout=10))
        target, fields = _Forms(home.text).form(f"/branch/{purpose}", customer=customer)
        login = self.post(urljoin(home.url, target), {**fields, **extra})
        assert login.url.startswith(self.site.service_url), login.url
        assert 'value="approve"' not in login.text, "a counter login is never reused (no SSO)"
        target, fields = _Forms(login.text).form("/certificate", anchor="jp-jpki")
        certificate = self.post(urljoin(login.url, target), fields)
        assert certificate.status_code == 200, certificate.text
        link = _Forms(certificate.text).links["same-device"]
        reader = self.follow(self.browser.get(link, allow_redirects=False, timeout=10))
        assert reader.url.startswith(self.site.party("/branch/reader")), reader.url
        asked = [p for p in ("authentication", "signature") if f'data-profile="{p}"' in reader.text]
        assert asked == ["authentication", "signature"], reader.text  # KYC-registered accounts
        consent = self.submit(
            reader, "/branch/reader", card=card, pin=DEMO_AUTH_PIN, password=DEMO_SIGN_PASSWORD
        )
        assert consent.url.startswith(self.site.service_url), (consent.url, consent.text)
        if 'value="approve"' not in consent.text:
            return consent
        target, fields = _Forms(consent.text).form("/consent")
        return self.post(urljoin(consent.url, target), {**fields, "decision": "approve"})


def test_hanako_links_her_accounts_with_her_card(demo: RunningDemo) -> None:
    engine = parties_engine(demo.site.state_dir)
    try:
        desk, _ = open_bank(demo.site, engine)
        hanako = person("hanako")
        tokens = desk.link_accounts(hanako, lambda url: approve_with_card(demo.site, hanako, url))
        assert tokens.anchor_set == "jp-cbdc"
        assert tokens.authorization_details[0]["type"] == "account_link"
        assert desk.active_link(hanako) is not None
    finally:
        engine.dispose()
    log = demo.log.read_text("utf-8")
    assert "reason=certificate_enrolment_required" in log  # the first answer: an unknown card
    assert "login through anchor jp-jpki: ok" in log


def test_a_revoked_card_is_refused(demo: RunningDemo) -> None:
    engine = parties_engine(demo.site.state_dir)
    try:
        desk, _ = open_bank(demo.site, engine)
        taro = person("taro")
        deposit = desk.account_id(taro, "bank_deposit")
        wallet = desk.account_id(taro, "cbdc_wallet")
        started = desk.client.start(authorization_details=link_details(deposit, wallet))
        with pytest.raises(AutopilotError, match="certificate_revoked"):
            approve_with_card(demo.site, taro, started.url)
    finally:
        engine.dispose()
    assert "serial listed on the CRL at " + demo.site.party("/jpki/crl/") in demo.log.read_text(
        "utf-8"
    )


def test_ume_links_her_accounts_and_sends_money_at_the_counter(demo: RunningDemo) -> None:
    terminal = Terminal(demo)
    outcome = terminal.operation("link", "ume", "ume")
    assert "/branch/operations/ume/" in outcome.url, outcome.text
    assert 'id="decision" class="ok"' in outcome.text, outcome.text
    assert "jp-cbdc" in outcome.text
    home = terminal.follow(terminal.browser.get(demo.site.party("/branch/"), timeout=10))
    assert 'class="ok" id="link-status-ume"' in home.text

    engine = parties_engine(demo.site.state_dir)
    try:
        online, _ = open_bank(demo.site, engine)
        counter = open_branch(demo.site, online.store, online.book)
        ume_wallet = counter.account_id(person("ume"), "cbdc_wallet")
        before = online.book.account(ume_wallet)
        assert before is not None
        sent = terminal.operation("transfer", "ume", "ume", payee="taro", amount="1000")
        assert 'id="decision" class="ok"' in sent.text, sent.text
        assert 'id="ledger-outcome" class="ok"' in sent.text, sent.text
        after = online.book.account(ume_wallet)
        assert after is not None and before.balance_minor - after.balance_minor == 1000
    finally:
        engine.dispose()
    log = demo.log.read_text("utf-8")
    assert "login through anchor jp-jpki: ok" in log


def test_a_card_that_is_not_the_customers_links_nothing(demo: RunningDemo) -> None:
    """Logged in with Hanako's card (put on the reader by mistake) for Ume's link, the service
    refuses to bind Ume's accounts to Hanako — because the branch registered them with Ume's
    name and birth date (``kyc_mismatch``), or, once Ume linked them herself (the test above),
    because they are hers (``holder_mismatch``) — and the counter records the refusal."""
    terminal = Terminal(demo)
    consent = terminal.operation("link", "ume", "hanako")
    assert consent.url.startswith(demo.site.service_url), consent.url
    assert 'value="approve"' not in consent.text
    target, fields = _Forms(consent.text).form("/consent")
    outcome = terminal.post(urljoin(consent.url, target), {**fields, "decision": "deny"})
    assert "/branch/operations/ume/" in outcome.url, outcome.text
    assert 'id="decision" class="error"' in outcome.text, outcome.text
    reason = re.search(r"<code>(kyc_mismatch|holder_mismatch)</code>", outcome.text)
    assert reason is not None, outcome.text


def test_the_demo_cas_crls_are_served_signed_and_fresh(demo: RunningDemo) -> None:
    pki = load_pki(demo.site.keys_dir)
    for name, profile in (("auth", "authentication"), ("sign", "signature")):
        answer = requests.get(demo.site.party(f"/jpki/crl/{name}.crl"), timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/pkix-crl"
        assert answer.headers["Cache-Control"] == "no-store"
        crl = x509.load_der_x509_crl(answer.content)
        assert crl.is_signature_valid(pki.cas[profile].certificate.public_key())
        assert crl.next_update_utc is not None
        assert crl.next_update_utc.timestamp() > time.time() + 500  # signed afresh: 10 min
    assert requests.get(demo.site.party("/jpki/crl/root.crl"), timeout=10).status_code == 404


def test_the_card_never_signs_a_wallet_request(demo: RunningDemo) -> None:
    """The wallet's OpenID4VP request (another typ) opened in the card app: refused before any
    PIN is asked, nothing signed."""
    engine = parties_engine(demo.site.state_dir)
    try:
        desk, _ = open_bank(demo.site, engine)
        started = desk.client.start()
    finally:
        engine.dispose()
    browser = requests.Session()
    login = browser.get(started.url, timeout=10)
    action, fields = _Forms(login.text).form("/wallet", anchor="jp-national-id")
    wallet_page = browser.post(urljoin(login.url, action), data=fields, timeout=10)
    wallet_link = _Forms(wallet_page.text).links["same-device"]
    app = CardApp(
        http=browser,
        clock=demo.site.clock,
        randomness=demo.site.randomness,
        verifiers=[service_verifier(demo.site, {"en": "trustanchor"})],
        allow_http_loopback=True,
    )
    with pytest.raises(CardError) as refused:
        app.fetch_certificate_request(wallet_link)
    assert refused.value.reason == "not_a_certificate_request"


def test_the_counter_sign_in_needs_the_terminals_own_form(demo: RunningDemo) -> None:
    """A sign-in posted without the form's token (from another site: login CSRF) is refused and
    signs nobody in."""
    browser = requests.Session()
    forged = browser.post(
        demo.site.party("/branch/signin"), data={"operator": "mallory"}, timeout=10
    )
    assert forged.status_code == 400
    home = browser.get(demo.site.party("/branch/"), timeout=10)
    assert 'id="signin"' in home.text and "mallory" not in home.text
