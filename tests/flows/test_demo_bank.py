"""The demo bank and the demo ledger against the real service, over HTTP.

The service runs with the demo's anchor sets, two anchors like the demo's (credentials issued by
the test-side issuer of tests/support) and the ``demo-bank`` and ``demo-ledger`` clients declared
with the keys ``trustanchor.demo.prepare`` makes (the ledger introspects every token it is about
to execute). The demo parties' app (bank, ledger, wallet) runs on its own
origin. People use a browser (requests) and a test-side phone wallet: they sign in at the bank
with their smartphone ID, link their accounts, and Hanako sends money — to Taro (same anchor set:
the ledger executes it once) and to Erika (another anchor set: refused, and the bank says why).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from support.credentials import Issuer, Wallet
from support.ecosystem import WalletApp
from support.html import parse
from support.payments import ANCHOR_SETS, EU_SET, JP_SET
from support.server import RunningServer, free_port, running_server, serving, test_settings

from trustanchor.demo.bank.desk import BankDesk, link_details, transfer_details
from trustanchor.demo.ledger_book import LedgerBook
from trustanchor.demo.parties_app import create_app
from trustanchor.demo.people import Person, person
from trustanchor.demo.prepare import prepare
from trustanchor.demo.site import DemoSite
from trustanchor.storage import accounts_repo

JP_ANCHOR = "jp-national-id"
EU_ANCHOR = "eu-pid"


@dataclass
class DemoAnchors:
    issuers: dict[str, Issuer] = field(
        default_factory=lambda: {
            JP_ANCHOR: Issuer.generate(issuer="https://demo-pid.test/jp"),
            EU_ANCHOR: Issuer.generate(issuer="https://demo-pid.test/eu"),
        }
    )

    def declarations(self) -> list[dict[str, Any]]:
        sets = {JP_ANCHOR: JP_SET, EU_ANCHOR: EU_SET}
        return [
            {
                "id": anchor_id,
                "kind": "sd_jwt_vc",
                "display_name": {"en": f"{anchor_id} (test)", "ja": f"{anchor_id}（テスト）"},
                "assurance_level": "high",
                "anchor_sets": [sets[anchor_id]],
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
            for anchor_id, issuer in self.issuers.items()
        ]


@dataclass
class Demo:
    server: RunningServer
    site: DemoSite
    app: Any
    anchors: DemoAnchors

    @property
    def desk(self) -> BankDesk:
        desk: BankDesk = self.app.extensions["demo_bank"]
        return desk

    @property
    def book(self) -> LedgerBook:
        return self.desk.book


def bank_client_declaration(
    keys_dir: Path,
    parties_url: str,
    detail_types: tuple[str, ...] = ("account_link", "value_transfer"),
) -> dict[str, Any]:
    """``demo-bank`` as config/demo.toml declares it, with the public key prepare made."""
    jwks = json.loads((keys_dir / "clients" / "demo-bank.jwks.json").read_text("utf-8"))
    return {
        "client_id": "demo-bank",
        "client_name": {"en": "Demo Bank", "ja": "デモ銀行"},
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks,
        "redirect_uris": [f"{parties_url}/bank/callback"],
        "post_logout_redirect_uris": [f"{parties_url}/bank/"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "scope": "openid profile address accounts",
        "authorization_details_types": list(detail_types),
        "dpop_bound_access_tokens": True,
    }


def ledger_client_declaration(keys_dir: Path) -> dict[str, Any]:
    """``demo-ledger`` as config/demo.toml declares it: the demo ledger asks the service's
    introspection endpoint about every token it is about to execute."""
    jwks = json.loads((keys_dir / "clients" / "demo-ledger.jwks.json").read_text("utf-8"))
    return {
        "client_id": "demo-ledger",
        "client_name": {"en": "Demo CBDC ledger", "ja": "デモ CBDC 台帳"},
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks,
        "grant_types": ["client_credentials"],
        "introspection": True,
    }


# The demo's sets with funding allowed in jp-cbdc (whatever the shared sets say about funding):
# movements up to 300,000 JPY each, no step-up for them.
FUNDING_SETS: list[dict[str, Any]] = [
    {
        **anchor_set,
        "policy": {
            **{
                name: value
                for name, value in anchor_set["policy"].items()
                if "funding" not in name and name not in ("cumulative", "cumulative_step_up")
            },
            "operations": ["account_link", "value_transfer", "funding"],
            "funding_limits": {"JPY": "300000"},
        },
    }
    if anchor_set["id"] == JP_SET
    else anchor_set
    for anchor_set in ANCHOR_SETS
]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path, ANCHOR_SETS) as running:
        yield running


@pytest.fixture
def funding_demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(
        tmp_path, FUNDING_SETS, ("account_link", "value_transfer", "funding")
    ) as running:
        yield running


@contextmanager
def running_demo(
    tmp_path: Path, anchor_sets: list[dict[str, Any]], *detail_types: tuple[str, ...]
) -> Iterator[Demo]:
    keys_dir = tmp_path / "demo-keys"
    prepare(keys_dir)  # the demo bank's private_key_jwt key (and the anchors', unused here)
    parties_port = free_port()
    parties_url = f"http://127.0.0.1:{parties_port}"
    anchors = DemoAnchors()
    settings = test_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'service.db'}",
        port=free_port(),
        anchors=anchors.declarations(),
        clients=[
            bank_client_declaration(keys_dir, parties_url, *detail_types),
            ledger_client_declaration(keys_dir),
        ],
    )
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
            yield Demo(server, site, app, anchors)
        app.extensions["demo_ekyc_op_stop"].set()  # its JWKS thread would outlive the test
        app.extensions["demo_engine"].dispose()


class Customer:
    """A demo person at a browser, with a phone wallet holding their credential."""

    def __init__(self, demo: Demo, person_id: str) -> None:
        self.demo = demo
        self.person: Person = person(person_id)
        self.session = requests.Session()
        self.wallet = Wallet.generate()
        issuer = demo.anchors.issuers[self.person.anchor]
        self.credential = issuer.issue(
            self.wallet,
            claims={
                "sub": self.person.sub,
                "given_name": self.person.given_name,
                "family_name": self.person.family_name,
                "birthdate": self.person.birthdate,
            },
            disclosable={"given_name", "family_name", "birthdate"},
            iat=int(time.time()) - 60,
        )

    # -- a browser ----------------------------------------------------------------------------

    def get(self, url: str) -> requests.Response:
        return self.follow(self.session.get(url, allow_redirects=False, timeout=10))

    def follow(
        self, response: requests.Response, *, stop_at: str | None = None
    ) -> requests.Response:
        """Follow redirects across both origins; stop before a URL starting with ``stop_at``."""
        for _ in range(10):
            if response.status_code not in (302, 303):
                return response
            location = urljoin(response.url, response.headers["Location"])
            if stop_at is not None and location.startswith(stop_at):
                return response
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

    # -- at the service -----------------------------------------------------------------------

    def consent(self, page: requests.Response) -> requests.Response:
        """From the service's first page, the consent page (logging in with the wallet if the
        service does not know this browser yet)."""
        assert page.status_code == 200, page.text
        assert page.url.startswith(self.demo.server.issuer), page.url
        if any(form.action.endswith("/consent") for form in parse(page.text).forms):
            return page
        wallet_page = self.follow(self.submit(page, "/wallet", anchor=self.person.anchor))
        assert wallet_page.status_code == 200, wallet_page.text
        links = parse(wallet_page.text).links
        phone = WalletApp(self.demo.server, self.wallet, self.credential)
        answer = phone.respond(phone.request_object(links["same-device"].replace("&amp;", "&")))
        assert answer.status_code == 200, answer.text
        # The wallet is on this browser's phone: it sends the person back (same-device return),
        # so the login leaves an SSO session in this browser.
        consent = self.follow(self.get(answer.json()["redirect_uri"]))
        assert consent.status_code == 200, consent.text
        return consent

    def decide(self, consent: requests.Response, *, approve: bool = True) -> requests.Response:
        """Approve or decline (a refused operation offers only "return"): the redirect back to
        the bank, not followed."""
        offered = [b for f in parse(consent.text).forms for b in f.buttons]
        decision = "approve" if approve and ("decision", "approve") in offered else "deny"
        response = self.submit(consent, "/consent", decision=decision)
        assert response.status_code == 303, response.text
        assert response.headers["Location"].startswith(self.demo.site.party("/bank/callback?"))
        return response

    # -- at the bank --------------------------------------------------------------------------

    def bank_home(self) -> requests.Response:
        return self.get(self.demo.site.party("/bank/"))

    def sign_in(self) -> requests.Response:
        welcome = self.bank_home()
        assert "Sign in with your smartphone ID" in welcome.text
        started = self.submit(welcome, "/bank/login")
        assert started.status_code == 303
        consent = self.consent(self.follow(started))
        assert "Demo Bank" in consent.text
        home = self.follow(self.decide(consent))
        assert home.status_code == 200, home.text
        assert home.url == self.demo.site.party("/bank/")
        return home

    def operate(
        self, page: requests.Response, action: str, *, approve: bool = True, **form: str
    ) -> requests.Response:
        """Start an operation from the bank's home page; the operation's result page."""
        started = self.submit(page, action, **form)
        assert started.status_code == 303, started.text
        consent = self.consent(self.follow(started))
        result = self.follow(self.decide(consent, approve=approve))
        assert result.status_code == 200, result.text
        assert urlsplit(result.url).path.startswith("/bank/operations/"), result.url
        return result

    def link(self) -> requests.Response:
        return self.operate(self.bank_home(), "/bank/link")

    def send(
        self, payee: str, amount: str, *, approve: bool = True, memo: str = ""
    ) -> requests.Response:
        return self.operate(
            self.bank_home(),
            "/bank/transfer",
            approve=approve,
            payee=payee,
            amount=amount,
            reference=memo,
        )


def text_of(page: requests.Response) -> str:
    return " ".join(parse_text(page.text).split())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def parse_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return " ".join(parser.chunks)


def element_text(markup: str, element_id: str) -> str:
    """The text inside the element with ``id`` (tags removed, whitespace collapsed; the
    element must not contain another element of its own name)."""
    marker = markup.index(f'id="{element_id}"')
    opening = markup.rindex("<", 0, marker)
    tag = markup[opening + 1 : marker].split()[0]
    start = markup.index(">", marker) + 1
    end = markup.index(f"</{tag}>", start)
    return " ".join(parse_text(markup[start:end]).split())


def wallet_balance(demo: Demo, person_id: str) -> int:
    account_id = demo.desk.account_id(person(person_id), "cbdc_wallet")
    account = demo.book.account(account_id)
    assert account is not None
    return account.balance_minor


def test_sign_in_link_and_send_money_inside_the_anchor_set(demo: Demo) -> None:
    taro = Customer(demo, "taro")
    taro.sign_in()
    assert element_text(taro.link().text, "decision") == "Allowed"

    hanako = Customer(demo, "hanako")
    home = text_of(hanako.sign_in())
    assert "Hello, Hanako Yamada" in home
    assert "1,200,000 JPY" in home and "50,000 JPY" in home  # deposit and CBDC wallet
    assert "Not linked yet" in home

    started = hanako.submit(hanako.bank_home(), "/bank/link")
    consent = hanako.consent(hanako.follow(started))
    assert "Link your deposit account" in text_of(consent)  # the service shows the operation
    callback = hanako.decide(consent)
    linked = hanako.follow(callback)
    assert element_text(linked.text, "decision") == "Allowed"
    assert element_text(linked.text, "anchor-set") == JP_SET
    approved = json.loads(element_text(linked.text, "approved"))
    assert approved == link_details(
        demo.desk.account_id(hanako.person, "bank_deposit"),
        demo.desk.account_id(hanako.person, "cbdc_wallet"),
    )
    assert "Linked since" in text_of(hanako.bank_home())
    # The same answer again finds nothing: its state was consumed.
    replay = hanako.session.get(callback.headers["Location"], allow_redirects=False, timeout=10)
    assert replay.status_code == 400
    assert "used already" in text_of(replay)

    sent = hanako.send("taro", "5000")
    assert element_text(sent.text, "decision") == "Allowed"
    assert element_text(sent.text, "anchor-set") == JP_SET
    approved = json.loads(element_text(sent.text, "approved"))
    assert [d["type"] for d in approved] == ["value_transfer"]
    assert approved[0]["instructed_amount"] == {"currency": "JPY", "amount": "5000"}
    assert element_text(sent.text, "ledger-outcome") == "The ledger executed the transfer."
    assert wallet_balance(demo, "hanako") == 45000
    assert wallet_balance(demo, "taro") == 25000

    ledger = text_of(hanako.get(demo.site.party("/ledger/")))
    assert "45,000 JPY" in ledger and "25,000 JPY" in ledger
    assert "Executed" in ledger and JP_SET in ledger


def test_a_transfer_outside_the_anchor_set_is_refused_with_the_reason(demo: Demo) -> None:
    erika = Customer(demo, "erika")
    erika.sign_in()
    linked = erika.link()
    assert element_text(linked.text, "anchor-set") == EU_SET

    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    hanako.link()
    refused = hanako.send("erika", "3000")
    assert element_text(refused.text, "decision") == "Refused"
    reason = element_text(refused.text, "reason")
    assert "no common anchor set" in reason
    assert "no_common_anchor_set" in text_of(refused)
    assert "ledger-outcome" not in refused.text  # nothing was sent to the ledger
    assert wallet_balance(demo, "hanako") == 50000
    assert wallet_balance(demo, "erika") == 10000


def test_the_ledger_executes_a_transfer_token_exactly_once(demo: Demo) -> None:
    """The bank's client code directly: PAR with the transfer, the person approves at the
    service, code exchange with DPoP, then the ledger over HTTP with fresh DPoP proofs."""
    taro = Customer(demo, "taro")
    taro.sign_in()  # logged in at the service: the link below needs only his consent

    def taro_approves(url: str) -> str:
        return str(taro.decide(taro.consent(taro.get(url))).headers["Location"])

    linked = demo.desk.link_accounts(taro.person, taro_approves)  # the launcher's seed step
    assert linked.anchor_set == JP_SET
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    hanako.link()
    client = demo.desk.client
    instruction = {
        "amount": "700",
        "currency": "JPY",
        "debtor_account": demo.desk.account_id(hanako.person, "cbdc_wallet"),
        "creditor_account": demo.desk.account_id(taro.person, "cbdc_wallet"),
    }
    started = client.start(authorization_details=transfer_details(instruction))
    redirect = hanako.decide(hanako.consent(hanako.get(started.url)))
    tokens = client.finish(started.pending, urlsplit(redirect.headers["Location"]).query)
    assert tokens.anchor_set == JP_SET
    assert demo.desk.store.person_for(tokens.sub) == "hanako"  # her pairwise subject
    assert tokens.authorization_details == transfer_details(instruction)

    wrong = client.submit_transfer(tokens.access_token, {**instruction, "amount": "7000"})
    assert (wrong.status, wrong.body["reason"]) == (403, "amount_mismatch")
    first = client.submit_transfer(tokens.access_token, instruction)
    assert first.status == 201, first.body
    assert first.body["anchor_set"] == JP_SET
    second = client.submit_transfer(tokens.access_token, instruction)
    assert (second.status, second.body["reason"]) == (401, "token_used")

    assert wallet_balance(demo, "hanako") == 50000 - 700
    assert wallet_balance(demo, "taro") == 20000 + 700
    journal = [(e.outcome, e.reason) for e in demo.book.journal()]
    assert journal == [
        ("refused", "token_used"),
        ("executed", None),
        ("refused", "amount_mismatch"),
    ]


def test_the_form_reads_amounts_as_people_type_them_and_keeps_a_japanese_memo(demo: Demo) -> None:
    taro = Customer(demo, "taro")
    taro.sign_in()
    taro.link()
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    hanako.link()

    sent = hanako.send("taro", "５，０００円", memo="お昼代 12月分")
    approved = json.loads(element_text(sent.text, "approved"))
    assert approved[0]["instructed_amount"] == {"currency": "JPY", "amount": "5000"}
    assert "remittance_reference" not in approved[0]  # the service never sees the memo
    assert element_text(sent.text, "memo") == "お昼代 12月分"
    assert "not sent to the service or the ledger" in element_text(sent.text, "memo-sent")
    assert element_text(sent.text, "result") == "Sent: the ledger executed the transfer"

    sent = hanako.send("taro", "1,500", memo="LUNCH 12/2026")
    approved = json.loads(element_text(sent.text, "approved"))
    assert approved[0]["instructed_amount"]["amount"] == "1500"
    assert approved[0]["remittance_reference"] == "LUNCH 12/2026"  # fits: sent as typed
    assert element_text(sent.text, "memo-sent") == "Sent with the payment as its reference."
    assert wallet_balance(demo, "hanako") == 50000 - 5000 - 1500
    assert wallet_balance(demo, "taro") == 20000 + 5000 + 1500

    home = hanako.bank_home()
    for amount, problem in (("12,00", "commas only between groups of three"), ("0", "more")):
        refused = hanako.submit(home, "/bank/transfer", payee="taro", amount=amount)
        assert refused.status_code == 400
        assert problem in element_text(refused.text, "send-error")
        assert amount in refused.text  # the form keeps what was typed
    japanese = hanako.get(demo.site.party("/bank/?lang=ja"))
    assert "山田 花子さま" in text_of(japanese)  # no stray space before さま
    assert "43,500円" in text_of(japanese)


def test_approved_by_the_service_refused_by_the_ledger_is_said_so(demo: Demo) -> None:
    """60,000 JPY is within the set's limits (no step-up below 100,000): the service approves;
    Hanako's wallet holds 50,000, so the ledger refuses. The bank never says "sent"."""
    taro = Customer(demo, "taro")
    taro.sign_in()
    taro.link()
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    hanako.link()
    result = hanako.send("taro", "60,000")
    assert element_text(result.text, "decision") == "Allowed"
    assert element_text(result.text, "result") == (
        "Approved by the service, refused by the ledger: "
        "the balance of the paying wallet is too low."
    )
    assert "insufficient_funds" in element_text(result.text, "ledger-outcome")
    assert '<h1 id="result" class="error">' in result.text
    assert "Sent" not in element_text(result.text, "result")
    home = text_of(hanako.bank_home())
    assert "Approved by the service, refused by the ledger (insufficient_funds)" in home
    japanese = hanako.get(result.url + "?lang=ja")
    assert element_text(japanese.text, "result") == (
        "サービスは承認しましたが、台帳が拒否しました：送金元ウォレットの残高が不足しています。"
    )
    assert wallet_balance(demo, "hanako") == 50000
    assert wallet_balance(demo, "taro") == 20000


def _sso_cookie(customer: Customer) -> str | None:
    return customer.session.cookies.get("ta_session")


def test_sign_out_everywhere_lets_another_person_sign_in_in_the_same_browser(demo: Demo) -> None:
    hanako = Customer(demo, "hanako")
    assert "Hello, Hanako Yamada" in text_of(hanako.sign_in())
    assert _sso_cookie(hanako) is not None

    # Signing out of the bank only keeps the service's session: signing in again lands on the
    # consent page as Hanako without a login.
    out = hanako.follow(hanako.submit(hanako.bank_home(), "/bank/logout"))
    assert "Sign in with your smartphone ID" in out.text
    again = hanako.follow(hanako.submit(out, "/bank/login"))
    assert any(form.action.endswith("/consent") for form in parse(again.text).forms)
    assert "Hello, Hanako Yamada" in text_of(hanako.follow(hanako.decide(again)))

    # Sign out everywhere: the bank's session ends, the browser goes to the service's end-session
    # endpoint with the ID token as hint (no confirmation: it names this browser's session) and
    # comes back to the bank's welcome page.
    home = hanako.bank_home()
    started = hanako.submit(home, "/bank/logout-everywhere")
    assert started.status_code == 303
    location = started.headers["Location"]
    assert location.startswith(demo.server.issuer + "/logout?")
    assert "id_token_hint=" in location
    back = hanako.follow(started)
    assert back.url == demo.site.party("/bank/")
    assert "Sign in with your smartphone ID" in back.text
    assert _sso_cookie(hanako) is None

    # The same browser is now Taro's: the service asks for a login, Taro's wallet answers.
    taro = Customer(demo, "taro")
    taro.session = hanako.session
    started = taro.follow(taro.submit(taro.bank_home(), "/bank/login"))
    assert not any(form.action.endswith("/consent") for form in parse(started.text).forms)
    assert "Hello, Taro Suzuki" in text_of(taro.follow(taro.decide(taro.consent(started))))


def test_a_link_approved_by_someone_else_is_removed_and_the_accounts_are_free(
    demo: Demo,
) -> None:
    """Attack-session finding F1: Hanako starts "Link", says "Not you?" to her own session,
    starts again, and Taro's wallet answers the QR code in her browser; Allow is pressed. The
    bank sees another person's ``sub``, removes the link, and the service undoes the bindings:
    Hanako's accounts are bound to nobody, and she can link them as herself."""
    taro = Customer(demo, "taro")
    taro.sign_in()
    taro.link()
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    started = hanako.submit(hanako.bank_home(), "/bank/link")
    consent = hanako.consent(hanako.follow(started))
    hanako.follow(hanako.submit(consent, "/not-me"))
    taro_wallet = Customer(demo, "taro")
    taro_wallet.session = hanako.session  # Hanako's browser, Taro's phone
    started = hanako.submit(hanako.bank_home(), "/bank/link")
    consent = taro_wallet.consent(hanako.follow(started))
    assert "鈴木 太…" in text_of(consent)
    result = hanako.follow(hanako.decide(consent))
    assert "approved by someone other than the signed-in customer" in text_of(result)
    assert "the link it made was removed" in text_of(result)

    deposit = demo.desk.account_id(hanako.person, "bank_deposit")
    wallet = demo.desk.account_id(hanako.person, "cbdc_wallet")
    with demo.server.services.db.reader() as conn:
        found = accounts_repo.get_many(conn, [deposit, wallet])
    assert [found[a].holder_id for a in (deposit, wallet)] == [None, None]
    assert demo.desk.active_link(hanako.person) is None
    # Taro's own link is untouched.
    assert demo.desk.active_link(taro.person) is not None

    # Hanako's browser holds the session of Taro's login now: she says "Not you?" and links
    # her accounts as herself.
    started = hanako.submit(hanako.bank_home(), "/bank/link")
    consent = hanako.follow(started)
    assert "鈴木 太…" in text_of(consent)
    hanako.follow(hanako.submit(consent, "/not-me"))
    linked = hanako.link()
    assert element_text(linked.text, "decision") == "Allowed"
    assert demo.desk.active_link(hanako.person) is not None


def test_sign_out_everywhere_needs_the_bank_sessions_own_form(demo: Demo) -> None:
    """A form whose bank session is gone: the CSRF check refuses it, nothing is redirected."""
    hanako = Customer(demo, "hanako")
    home = hanako.sign_in()
    hanako.follow(hanako.submit(home, "/bank/logout"))
    stale = hanako.submit(home, "/bank/logout-everywhere")
    assert stale.status_code == 400
    assert _sso_cookie(hanako) is not None  # the service's session was not touched


def deposit_balance(demo: Demo, person_id: str) -> int:
    account_id = demo.desk.account_id(person(person_id), "bank_deposit")
    account = demo.book.deposit(account_id)
    assert account is not None
    return account.balance_minor


def test_the_funding_form_is_offered_only_where_it_can_work(demo: Demo) -> None:
    """No dead buttons: "Top up my wallet" needs an active link and a service whose discovery
    lists the funding type; a forged request without a link is refused by the bank itself."""
    hanako = Customer(demo, "hanako")
    home = hanako.sign_in()
    assert 'id="top-up"' not in home.text  # not linked yet
    csrf = parse(home.text).form_with("/bank/link").fields["csrf"]
    forged = hanako.session.post(
        demo.site.party("/bank/funding"),
        data={"csrf": csrf, "direction": "deposit_to_wallet", "funding_amount": "1000"},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 409
    assert "needs an active link" in element_text(forged.text, "funding-error")
    hanako.link()
    offered = 'id="top-up"' in hanako.bank_home().text
    assert offered == demo.desk.client.supports("funding")
    assert wallet_balance(demo, "hanako") == 50000


def test_top_up_and_move_back_over_the_link(funding_demo: Demo) -> None:
    demo = funding_demo
    hanako = Customer(demo, "hanako")
    hanako.sign_in()
    home = hanako.bank_home()
    assert 'id="top-up"' not in home.text  # not linked yet: nothing to move over
    hanako.link()
    home = hanako.bank_home()
    assert "Top up my wallet" in home.text and "Move back to my bank account" in home.text

    topped = hanako.operate(
        home, "/bank/funding", direction="deposit_to_wallet", funding_amount="100,000"
    )
    assert element_text(topped.text, "decision") == "Allowed"
    assert element_text(topped.text, "result") == "Moved: the ledger executed the movement"
    [granted] = json.loads(element_text(topped.text, "approved"))
    assert granted["type"] == "funding" and granted["direction"] == "deposit_to_wallet"
    assert granted["instructed_amount"] == {"currency": "JPY", "amount": "100000"}
    assert granted["link_id"].startswith("lnk_")  # the service names the link it relied on
    assert (deposit_balance(demo, "hanako"), wallet_balance(demo, "hanako")) == (
        1_100_000,
        150_000,
    )

    back = hanako.operate(
        hanako.bank_home(),
        "/bank/funding",
        direction="wallet_to_deposit",
        funding_amount="３０，０００円",
    )
    assert element_text(back.text, "result") == "Moved: the ledger executed the movement"
    assert (deposit_balance(demo, "hanako"), wallet_balance(demo, "hanako")) == (
        1_130_000,
        120_000,
    )
    home = text_of(hanako.bank_home())
    assert "1,130,000 JPY" in home and "120,000 JPY" in home

    # Within the policy's limit but more than the wallet holds: the service approves, the
    # ledger refuses, and the bank says so.
    refused = hanako.operate(
        hanako.bank_home(), "/bank/funding", direction="wallet_to_deposit", funding_amount="200000"
    )
    assert element_text(refused.text, "decision") == "Allowed"
    assert element_text(refused.text, "result") == (
        "Approved by the service, refused by the ledger: "
        "the balance of the paying wallet is too low."
    )
    # Above the policy's per-movement limit: refused by the service, the ledger never asked.
    over = hanako.operate(
        hanako.bank_home(), "/bank/funding", direction="deposit_to_wallet", funding_amount="300001"
    )
    assert element_text(over.text, "decision") == "Refused"
    assert "limit_exceeded" in element_text(over.text, "reason")
    assert "ledger-outcome" not in over.text
    assert (deposit_balance(demo, "hanako"), wallet_balance(demo, "hanako")) == (
        1_130_000,
        120_000,
    )

    ledger = text_of(hanako.get(demo.site.party("/ledger/")))
    assert "Deposit account → CBDC wallet" in ledger
    assert "CBDC wallet → deposit account" in ledger
    japanese = text_of(hanako.get(demo.site.party("/bank/?lang=ja")))
    assert "ウォレットに入金" in japanese and "1,130,000円" in japanese
