"""The face-to-face channel of certificate login (docs/CERTIFICATE-LOGIN.md, "At a bank branch")
end to end over real HTTP, on SQLite and PostgreSQL.

A bank branch's counter terminal is a confidential client with a branch role. It pushes its own
request (PAR), opens ``/authorize`` in the terminal's browser, the person chooses the certificate
anchor, the terminal reads the card (tests/support/card_app.py signs the challenge by hand with
pyca over a test JPKI) and posts the answer to ``/certificate/counter-response`` with the staff
operator and its own ``private_key_jwt`` client assertion. The identity and the audit log (an
entry of the kind ``login_in_person``) record the branch and the operator; the grant's
authentication carries the channel.

Refusals: a client without the role, another client's interaction, a remote answer that tries to
claim the channel, a missing or malformed staff operator, and callers that do not authenticate.
None of the refused callers uses up the login transaction: the legitimate answer still works.

The policy tells the channels apart: in this module the ``jp-cbdc`` set requires account links
to be made in person (``channel_link = "in_person"``); a remote login is asked to step up at a
branch counter, the counter's login links. An ordinary intermediary's consent page sends the
person to a branch without a "log in again" button, and its step-up post is refused.
"""

from __future__ import annotations

import dataclasses
import html
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from support.card_app import CardApp, CrlServer, fetcher_overrides, x509_anchor_declaration
from support.ecosystem import BANK_REDIRECT, Browser, Party
from support.html import parse
from support.jpki import Card, TestPKI
from support.payments import ANCHOR_SETS, JP_SET, Bank, Payments, link
from support.person import authorization_response
from support.rp import Pkce, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.audit.entries import Login, LoginInPerson, parse_entry
from trustanchor.clock import SystemClock
from trustanchor.domain.identity import Authentication
from trustanchor.services import audit_trail
from trustanchor.storage.tables import grants, identities, wallet_transactions
from trustanchor.web.cookies import SESSION_COOKIE
from trustanchor.web.i18n import Translator

X509 = "jp-jpki"
BRANCH = "tokyo-marunouchi"
OTHER_BRANCH = "osaka-umeda"
COUNTER = "/certificate/counter-response"
VERIFIED_CLAIMS = (
    '{"userinfo":{"verified_claims":{"verification":{"trust_framework":null},'
    '"claims":{"name":null,"birthdate":null}}}}'
)


def _terminal(party: Party, branch: str | None) -> dict[str, Any]:
    declaration: dict[str, Any] = {
        "client_id": party.client_id,
        "client_name": {"en": f"Counter {party.client_id}", "ja": "窓口端末"},
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": party.jwks,
        "redirect_uris": [BANK_REDIRECT],
        "grant_types": ["authorization_code", "client_credentials"],
        "scope": "openid accounts",
        "authorization_details_types": ["account_link", "value_transfer"],
    }
    if branch is not None:
        declaration["trustanchor_branch"] = {
            "branch_id": branch,
            "display_name": {"en": branch, "ja": "支店"},
        }
    return declaration


@dataclasses.dataclass
class Parties:
    marunouchi: Party = dataclasses.field(default_factory=lambda: Party("counter-marunouchi"))
    umeda: Party = dataclasses.field(default_factory=lambda: Party("counter-umeda"))
    # A confidential private_key_jwt client like the terminals, without the role.
    plain: Party = dataclasses.field(default_factory=lambda: Party("kiosk"))


@pytest.fixture
def parties() -> Parties:
    return Parties()


@pytest.fixture
def pki() -> TestPKI:
    return TestPKI.generate(now=int(time.time()))


@pytest.fixture
def crls(pki: TestPKI) -> Iterator[CrlServer]:
    with CrlServer(pki).running() as running:
        yield running


@pytest.fixture
def server(
    tmp_path: Path,
    database_url: str,
    payments: Payments,
    parties: Parties,
    pki: TestPKI,
    crls: CrlServer,
) -> Iterator[RunningServer]:
    payments.extra_clients.extend(
        [
            _terminal(parties.marunouchi, BRANCH),
            _terminal(parties.umeda, OTHER_BRANCH),
            _terminal(parties.plain, None),
        ]
    )
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[
            *(a.declaration() for a in payments.anchors.values()),
            x509_anchor_declaration(pki, crls.urls, anchor_id=X509, anchor_sets=[JP_SET]),
        ],
        clients=payments.clients(),
        overrides=fetcher_overrides(),
    )
    sets = [
        {**s, "policy": {**s["policy"], "channel_link": "in_person"}} if s["id"] == JP_SET else s
        for s in ANCHOR_SETS
    ]
    settings = dataclasses.replace(settings, anchor_sets=tuple(sets))
    with running_server(settings) as running:
        yield running


# ---------------------------------------------------------------------------- the terminal


class Terminal:
    """A client of the service driving a browser and reading cards: a counter terminal when
    its client has the branch role, or any other private_key_jwt client trying to act as one."""

    def __init__(self, server: RunningServer, party: Party) -> None:
        self.server = server
        self.rp = RelyingParty(server, party, SystemClock(), redirect_uri=BANK_REDIRECT)
        self.browser = Browser(server)

    def start(self, **params: str) -> tuple[requests.Response, Pkce]:
        """Its own PAR, then /authorize in its own browser: the login page."""
        pkce = Pkce.generate()
        url = self.rp.authorization_url(self.rp.request_uri(pkce, **params))
        page = self.browser.follow(self.browser.get(url))
        assert page.status_code == 200, page.text
        return page, pkce

    def challenge(self, login_page: requests.Response, card: Card) -> tuple[dict[str, Any], str]:
        """The person chooses the certificate anchor; the terminal fetches the signed request
        as a card app does. Returns the request and the interaction path."""
        path = parse(login_page.text).form_with("/cancel").action.rsplit("/", 1)[0]
        chosen = self.browser.submit(login_page.text, "/certificate", anchor=X509)
        assert chosen.status_code == 303, chosen.text
        page = self.browser.follow(chosen)
        assert page.status_code == 200, page.text
        link = parse(page.text).links["same-device"].replace("&amp;", "&")
        return CardApp(self.server, card).request(link), path

    def post(
        self,
        form: dict[str, str],
        *,
        authenticate: bool = True,
        assertion: str | None = None,
    ) -> requests.Response:
        items = list(form.items())
        if assertion is not None:
            items += self.rp.credentials(assertion)
            authenticate = False
        return self.rp.post(COUNTER, items, authenticate=authenticate)

    def finish(self, answer: requests.Response, path: str) -> requests.Response:
        """After the answer: the terminal's browser follows the same-device return."""
        assert answer.status_code == 200, answer.text
        done = self.browser.follow(self.browser.get(answer.json()["redirect_uri"]))
        assert done.status_code == 200, done.text
        assert any(f.action.endswith("/consent") for f in parse(done.text).forms), done.text
        return done

    def approve(self, consent: requests.Response, pkce: Pkce) -> dict[str, Any]:
        response = self.browser.submit(consent.text, "/consent", decision="approve")
        assert response.status_code == 303, response.text
        code = authorization_response(response.headers["Location"], BANK_REDIRECT, self.server)
        tokens = self.rp.redeem(code["code"], pkce.verifier)
        assert tokens.status_code == 200, tokens.text
        body: dict[str, Any] = tokens.json()
        return body


def answer_form(card: Card, server: RunningServer, request: dict[str, Any]) -> dict[str, str]:
    app = CardApp(server, card)
    form = {"state": str(request["state"])}
    for profile in request["certificates"]:
        form[profile] = app.challenge(request, profile)
    return form


def stored_identities(server: RunningServer) -> list[Any]:
    with server.services.db.reader() as conn:
        return list(conn.execute(select(identities).where(identities.c.anchor_id == X509)).all())


def consumed(server: RunningServer, state: str) -> bool:
    with server.services.db.reader() as conn:
        row = conn.execute(
            select(wallet_transactions.c.consumed_at).where(wallet_transactions.c.id == state)
        ).first()
    assert row is not None
    return row.consumed_at is not None


def logins(server: RunningServer) -> list[Login | LoginInPerson]:
    """The audit log's logins through the certificate anchor, remote and in person, in order."""
    server.services.audit.integrate_pending()
    size = server.services.audit.latest_checkpoint().checkpoint.size
    entries = (parse_entry(item.entry) for item in server.services.audit.entries(0, size))
    return [e for e in entries if isinstance(e, Login | LoginInPerson) and e.anchor_id == X509]


def grant_authentications(server: RunningServer, client_id: str) -> list[Authentication]:
    with server.services.db.reader() as conn:
        rows = conn.execute(select(grants.c.details).where(grants.c.client_id == client_id)).all()
    return [Authentication.from_json(row.details["authentication"]) for row in rows]


def refused(response: requests.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["error"] == error and "redirect_uri" not in body
    return str(body.get("error_description", ""))


# ---------------------------------------------------------------------------- the channel


def test_a_login_at_the_counter_is_recorded_in_person(
    server: RunningServer, parties: Parties, pki: TestPKI
) -> None:
    card = pki.person(label="hanako", name="佐藤 花子", birthdate="19450301")
    terminal = Terminal(server, parties.marunouchi)
    page, pkce = terminal.start(claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    assert request["certificates"] == ["authentication", "signature"]
    assert request["client_name"] == "Counter counter-marunouchi"

    form = {**answer_form(card, server, request), "staff_operator": "S-0042"}
    answer = terminal.post(form)
    assert answer.headers["Cache-Control"] == "no-store"
    consent = terminal.finish(answer, path)
    tokens = terminal.approve(consent, pkce)
    assert tokens["access_token"]

    [identity] = stored_identities(server)
    assert identity.claims["name"] == "佐藤 花子"
    in_person = dict(identity.in_person)
    assert in_person.pop("at") >= int(time.time()) - 60
    assert in_person == {"branch": BRANCH, "operator": "S-0042"}

    [login] = logins(server)
    assert isinstance(login, LoginInPerson)
    assert (login.outcome, login.reason, login.branch) == ("ok", None, BRANCH)
    assert login.holder == audit_trail.holder_pseudonym(
        server.services.secrets.pairwise, identity.holder_id
    )
    assert login.operator == audit_trail.operator_pseudonym(
        server.services.secrets.pairwise, BRANCH, "S-0042"
    )
    assert "S-0042" not in login.to_canonical().decode()  # the raw staff id stays out

    [authentication] = grant_authentications(server, parties.marunouchi.client_id)
    assert authentication.channel == "in_person"
    assert dict(authentication.in_person) == {"branch": BRANCH, "operator": "S-0042"}
    assert authentication.identity_id == identity.id


def test_a_later_remote_login_keeps_the_last_in_person_visit(
    server: RunningServer, parties: Parties, pki: TestPKI, payments: Payments
) -> None:
    """``identities.in_person`` says when the person was last seen in person; a remote login
    is recorded as remote (audit, grant) and leaves it as it was."""
    card = pki.person(label="taro")
    terminal = Terminal(server, parties.marunouchi)
    page, pkce = terminal.start(claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    answer = terminal.post({**answer_form(card, server, request), "staff_operator": "S-0042"})
    terminal.approve(terminal.finish(answer, path), pkce)
    [visited] = stored_identities(server)

    # At home, through an ordinary intermediary and the person's own card app.
    home = Terminal(server, payments.bank)
    page, _ = home.start()
    request, path = home.challenge(page, card)
    remote = CardApp(server, card).answer(request)
    assert remote.status_code == 200, remote.text

    [identity] = stored_identities(server)
    assert identity.id == visited.id and dict(identity.in_person) == dict(visited.in_person)
    first, second = logins(server)
    assert isinstance(first, LoginInPerson) and first.branch == BRANCH
    assert type(second) is Login and second.outcome == "ok"


# ---------------------------------------------------------------------------- refusals


def test_a_client_without_the_branch_role_cannot_claim_the_channel(
    server: RunningServer, parties: Parties, pki: TestPKI
) -> None:
    """The kiosk started the interaction and authenticates perfectly: no role, no channel; its
    refused post uses nothing up, and the person's own app can still answer (remotely)."""
    card = pki.person(label="jiro")
    kiosk = Terminal(server, parties.plain)
    page, _ = kiosk.start(claims=VERIFIED_CLAIMS)
    request, _ = kiosk.challenge(page, card)
    form = {**answer_form(card, server, request), "staff_operator": "S-0042"}
    refused(kiosk.post(form), 400, "unauthorized_client")
    assert not consumed(server, request["state"])
    assert stored_identities(server) == []

    answer = CardApp(server, card).answer(request)
    assert answer.status_code == 200, answer.text
    [identity] = stored_identities(server)
    assert identity.in_person is None
    [login] = logins(server)
    assert type(login) is Login and login.outcome == "ok"


def test_the_bank_without_the_role_is_refused_too(
    server: RunningServer, parties: Parties, pki: TestPKI, payments: Payments
) -> None:
    card = pki.person(label="saburo")
    bank = Terminal(server, payments.bank)
    page, _ = bank.start(claims=VERIFIED_CLAIMS)
    request, _ = bank.challenge(page, card)
    form = {**answer_form(card, server, request), "staff_operator": "S-0042"}
    refused(bank.post(form), 400, "unauthorized_client")
    assert not consumed(server, request["state"])


def test_a_terminal_cannot_answer_for_another_clients_interaction(
    server: RunningServer, parties: Parties, pki: TestPKI, payments: Payments
) -> None:
    """Neither the bank's interaction (a person at home) nor another branch's: refused without
    using the transaction up, which its own answer still completes."""
    card = pki.person(label="shiro")
    bank = Terminal(server, payments.bank)
    page, _ = bank.start(claims=VERIFIED_CLAIMS)
    request, _ = bank.challenge(page, card)
    form = {**answer_form(card, server, request), "staff_operator": "S-0042"}
    marunouchi = Terminal(server, parties.marunouchi)
    description = refused(marunouchi.post(form), 400, "invalid_request")
    assert description == "this login was not started by this counter terminal"
    assert not consumed(server, request["state"])

    umeda_card = pki.person(label="goro")
    umeda = Terminal(server, parties.umeda)
    page, pkce = umeda.start(claims=VERIFIED_CLAIMS)
    umeda_request, path = umeda.challenge(page, umeda_card)
    umeda_form = {**answer_form(umeda_card, server, umeda_request), "staff_operator": "U-7"}
    refused(marunouchi.post(umeda_form), 400, "invalid_request")
    assert not consumed(server, umeda_request["state"])

    umeda.approve(umeda.finish(umeda.post(umeda_form), path), pkce)
    [login] = logins(server)
    assert isinstance(login, LoginInPerson) and login.branch == OTHER_BRANCH
    answer = CardApp(server, card).answer(request)  # the person at home, still possible
    assert answer.status_code == 200, answer.text
    assert [x.KIND for x in logins(server)] == ["login_in_person", "login"]


def test_a_remote_answer_cannot_claim_the_channel(
    server: RunningServer, parties: Parties, pki: TestPKI
) -> None:
    """Posting the counter's fields to the card app's endpoint changes nothing: even for a
    terminal's own interaction (the person scanned the terminal's QR code with their phone),
    the login is remote."""
    card = pki.person(label="rokuro")
    terminal = Terminal(server, parties.marunouchi)
    page, pkce = terminal.start(claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    form = {
        **answer_form(card, server, request),
        "staff_operator": "S-0042",
        "channel": "in_person",
        "branch": BRANCH,
    }
    answer = requests.post(server.url("/certificate/response"), data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    terminal.approve(terminal.finish(answer, path), pkce)
    [identity] = stored_identities(server)
    assert identity.in_person is None
    [login] = logins(server)
    assert type(login) is Login and login.outcome == "ok"
    [authentication] = grant_authentications(server, parties.marunouchi.client_id)
    assert authentication.channel == "remote" and not authentication.in_person


@pytest.mark.parametrize(
    "operator",
    [None, "", "S 0042", "taro@bank.example", "x" * 65, "山田", "S-0042\n", ["S-1", "S-2"]],
    ids=["missing", "empty", "space", "address", "long", "name", "newline", "twice"],
)
def test_the_staff_operator_is_required_and_well_formed(
    server: RunningServer, parties: Parties, pki: TestPKI, operator: Any
) -> None:
    card = pki.person(label="shichiro")
    terminal = Terminal(server, parties.marunouchi)
    page, _ = terminal.start(claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    form: list[tuple[str, str]] = list(answer_form(card, server, request).items())
    if isinstance(operator, list):
        form += [("staff_operator", value) for value in operator]
    elif operator is not None:
        form.append(("staff_operator", operator))
    response = terminal.rp.post(COUNTER, form)
    description = refused(response, 400, "invalid_request")
    if isinstance(operator, list):  # refused with every repeated parameter (RFC 6749 §3.2)
        assert description == "parameter staff_operator is repeated"
    else:
        assert description.startswith("staff_operator is required once")
    assert not consumed(server, request["state"])
    # The same answer with a proper operator goes through.
    fixed = {**dict(answer_form(card, server, request)), "staff_operator": "S-0042"}
    terminal.finish(terminal.post(fixed), path)


def test_unauthenticated_posts_do_not_burn_the_transaction(
    server: RunningServer, parties: Parties, pki: TestPKI
) -> None:
    card = pki.person(label="hachiro")
    terminal = Terminal(server, parties.marunouchi)
    page, pkce = terminal.start(claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    form = {**answer_form(card, server, request), "staff_operator": "S-0042"}

    # No client authentication at all, or only a client_id.
    refused(terminal.post(form, authenticate=False), 401, "invalid_client")
    refused(
        terminal.post({**form, "client_id": parties.marunouchi.client_id}, authenticate=False),
        401,
        "invalid_client",
    )
    # An assertion for the terminal signed with another key (the umeda terminal's).
    forged = RelyingParty(
        server,
        dataclasses.replace(parties.umeda, client_id=parties.marunouchi.client_id),
        SystemClock(),
        redirect_uri=BANK_REDIRECT,
    ).assertion(headers={"kid": f"{parties.marunouchi.client_id}-key"})
    refused(terminal.post(form, assertion=forged), 401, "invalid_client")
    # An assertion for another audience (made for someone else's endpoint).
    other_audience = terminal.rp.assertion(claims={"aud": server.url(COUNTER)})
    refused(terminal.post(form, assertion=other_audience), 401, "invalid_client")
    # A replayed assertion.
    once = terminal.rp.assertion()
    refused(
        terminal.post({**form, "staff_operator": "not valid"}, assertion=once),
        400,
        "invalid_request",
    )
    refused(terminal.post(form, assertion=once), 401, "invalid_client")
    # Not a form.
    response = requests.post(server.url(COUNTER), json=form, timeout=10)
    refused(response, 400, "invalid_request")
    assert not consumed(server, request["state"])
    assert stored_identities(server) == [] and logins(server) == []

    terminal.approve(terminal.finish(terminal.post(form), path), pkce)
    [login] = logins(server)
    assert isinstance(login, LoginInPerson)


def test_once_authenticated_the_card_app_rules_apply(
    server: RunningServer, parties: Parties, pki: TestPKI
) -> None:
    """A terminal's answer uses the transaction up like any answer: a second post is refused
    and nothing more is recorded."""
    card = pki.person(label="kuro")
    terminal = Terminal(server, parties.marunouchi)
    page, _ = terminal.start(claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    form = {**answer_form(card, server, request), "staff_operator": "S-0042"}
    terminal.finish(terminal.post(form), path)
    again = refused(terminal.post(form), 400, "invalid_request")
    assert again == "unknown, expired or already used state"
    assert len(logins(server)) == 1


# ---------------------------------------------------------------------------- the policy


def test_a_set_requiring_in_person_links_sends_a_remote_login_to_the_counter(
    server: RunningServer, parties: Parties, pki: TestPKI, payments: Payments
) -> None:
    """The branch registers the person's accounts. Linking them after a remote login (the
    person's phone answered the terminal's QR code) is refused with a step-up to the counter;
    the same link with the card read at the counter is allowed and binds the accounts."""
    card = pki.person(label="ichiro", name="鈴木 一郎")
    branch_bank = Bank(server, payments, parties.marunouchi)
    deposit = branch_bank.register("dep-ichiro", "bank_deposit", "Savings")
    wallet = branch_bank.register("wal-ichiro", "cbdc_wallet", "CBDC wallet")
    details = json.dumps([link(deposit, wallet)])

    terminal = Terminal(server, parties.marunouchi)
    page, _ = terminal.start(authorization_details=details, claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    remote = CardApp(server, card).answer(request)
    consent = terminal.finish(remote, path)
    assert "at a bank branch counter" in consent.text  # the step-up, in person
    assert 'action="/interaction/' in consent.text and "/step-up" in consent.text
    assert branch_bank.api("GET", f"/accounts/{deposit}").json()["bound"] is False

    terminal = Terminal(server, parties.marunouchi)
    page, pkce = terminal.start(authorization_details=details, claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    answer = terminal.post({**answer_form(card, server, request), "staff_operator": "S-0042"})
    consent = terminal.finish(answer, path)
    assert "at a bank branch counter" not in consent.text
    tokens = terminal.approve(consent, pkce)
    assert tokens["authorization_details"][0]["type"] == "account_link"
    [authentication] = grant_authentications(server, parties.marunouchi.client_id)
    assert authentication.channel == "in_person"
    assert branch_bank.api("GET", f"/accounts/{deposit}").json()["bound"] is True


def _step_up_forms(page: requests.Response) -> list[Any]:
    return [form for form in parse(page.text).forms if form.action.endswith("/step-up")]


def test_an_ordinary_intermediary_sends_the_person_to_a_branch_without_a_step_up_button(
    server: RunningServer, pki: TestPKI, payments: Payments
) -> None:
    """The bank (no branch role) asks for a link that must be made in person. Logging in again
    from its request could never be in person, so its consent page explains where to go (a
    branch counter) and offers no "log in again"; a step-up posted anyway is refused with that
    explanation, in English and in Japanese, and leaves the interaction at consent."""
    card = pki.person(label="nanako", name="高橋 七子")
    bank = Bank(server, payments)
    deposit = bank.register("dep-nanako", "bank_deposit", "Savings")
    wallet = bank.register("wal-nanako", "cbdc_wallet", "CBDC wallet")
    details = json.dumps([link(deposit, wallet)])

    home = Terminal(server, payments.bank)
    page, _ = home.start(authorization_details=details, claims=VERIFIED_CLAIMS)
    request, path = home.challenge(page, card)
    consent = home.finish(CardApp(server, card).answer(request), path)
    en, ja = Translator("en"), Translator("ja")
    text = html.unescape(consent.text)
    assert "It cannot be done from here: go to a branch of your bank" in text
    assert en("policy.step_up_button") not in text
    assert _step_up_forms(consent) == []
    in_japanese = home.browser.get(server.url(f"{path}?lang=ja"))
    assert "ここからは行えません" in html.unescape(in_japanese.text)
    assert _step_up_forms(in_japanese) == []

    csrf = parse(consent.text).form_with("/consent").fields["csrf"]
    for language, t in (("en", en), ("ja", ja)):
        refused_page = home.browser.session.post(
            server.url(f"{path}/step-up?lang={language}"),
            data={"csrf": csrf},
            allow_redirects=False,
            timeout=10,
        )
        assert refused_page.status_code == 403, refused_page.text
        shown = html.unescape(refused_page.text)
        assert t("errors.step_up_at_branch") in shown
        assert t("errors.next.step_up_at_branch") in shown

    # Still at consent, nothing linked: the person can only go back to the bank.
    again = home.browser.get(server.url(path))
    assert again.status_code == 200 and _step_up_forms(again) == []
    back = home.browser.submit(again.text, "/consent", decision="deny")
    assert back.status_code == 303
    assert "error=access_denied" in back.headers["Location"]
    assert bank.api("GET", f"/accounts/{deposit}").json()["bound"] is False


def test_a_counter_terminal_steps_up_in_the_same_request(
    server: RunningServer, parties: Parties, pki: TestPKI, payments: Payments
) -> None:
    """For a counter terminal's own request the button is there and the loop succeeds: after a
    remote login, "log in again" returns to the anchors, the card read at the counter logs the
    same person in in person, and the link is allowed."""
    card = pki.person(label="kiku", name="伊藤 菊")
    branch_bank = Bank(server, payments, parties.marunouchi)
    deposit = branch_bank.register("dep-kiku", "bank_deposit", "Savings")
    wallet = branch_bank.register("wal-kiku", "cbdc_wallet", "CBDC wallet")
    details = json.dumps([link(deposit, wallet)])

    terminal = Terminal(server, parties.marunouchi)
    page, pkce = terminal.start(authorization_details=details, claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, card)
    consent = terminal.finish(CardApp(server, card).answer(request), path)
    assert len(_step_up_forms(consent)) == 1
    stepped = terminal.browser.submit(consent.text, "/step-up")
    assert stepped.status_code == 303, stepped.text
    page = terminal.browser.follow(stepped)
    assert _is_login_page(page), page.text

    request, path = terminal.challenge(page, card)
    answer = terminal.post({**answer_form(card, server, request), "staff_operator": "S-0042"})
    consent = terminal.finish(answer, path)
    assert _step_up_forms(consent) == []
    tokens = terminal.approve(consent, pkce)
    assert tokens["authorization_details"][0]["type"] == "account_link"
    assert branch_bank.api("GET", f"/accounts/{deposit}").json()["bound"] is True
    assert [entry.KIND for entry in logins(server)] == ["login", "login_in_person"]


# ---------------------------------------------------------------------------- a shared browser


def _is_login_page(page: requests.Response) -> bool:
    return any(form.action.endswith("/certificate") for form in parse(page.text).forms)


def test_the_next_customer_at_the_counter_is_not_offered_the_previous_ones_login(
    server: RunningServer, parties: Parties, pki: TestPKI
) -> None:
    """The terminal's browser serves every customer: an in-person login starts no SSO session
    there, so the next customer's request asks for a login of its own."""
    first, second = pki.person(label="ume"), pki.person(label="sakura")
    terminal = Terminal(server, parties.marunouchi)
    page, pkce = terminal.start(claims=VERIFIED_CLAIMS)
    request, path = terminal.challenge(page, first)
    answer = terminal.post({**answer_form(first, server, request), "staff_operator": "S-0042"})
    terminal.approve(terminal.finish(answer, path), pkce)
    assert SESSION_COOKIE not in terminal.browser.session.cookies

    page, pkce = terminal.start(claims=VERIFIED_CLAIMS)
    assert _is_login_page(page), page.text
    request, path = terminal.challenge(page, second)
    answer = terminal.post({**answer_form(second, server, request), "staff_operator": "S-0042"})
    terminal.approve(terminal.finish(answer, path), pkce)
    holders = {identity.holder_id for identity in stored_identities(server)}
    assert len(holders) == 2


def test_a_counter_request_never_takes_over_an_sso_session(
    server: RunningServer, parties: Parties, pki: TestPKI, payments: Payments
) -> None:
    """Even when the terminal's browser holds one (someone logged in remotely in it through an
    ordinary intermediary), the counter's request asks for a login."""
    browser_user = Terminal(server, payments.bank)
    _remote_card_login(browser_user, pki.person(label="matsu"))
    assert SESSION_COOKIE in browser_user.browser.session.cookies
    page, _ = browser_user.start()  # the bank's next request is taken over, as designed
    assert not _is_login_page(page)

    terminal = Terminal(server, parties.marunouchi)
    terminal.browser = browser_user.browser
    page, _ = terminal.start()
    assert _is_login_page(page), page.text


def test_a_remote_login_in_the_terminals_browser_starts_no_sso_session_either(
    server: RunningServer, parties: Parties, pki: TestPKI
) -> None:
    """A card app answering the terminal's request directly (not through the counter) and
    returning to the terminal's browser makes a remote login answered in that browser; the
    counter's request still starts no session there, or another client's next request in the
    shared browser would be offered this customer's login (attack session of 2026-12-07)."""
    terminal = Terminal(server, parties.marunouchi)
    _remote_card_login(terminal, pki.person(label="kiku"))
    assert SESSION_COOKIE not in terminal.browser.session.cookies


def _remote_card_login(user: Terminal, card: Card) -> None:
    """The card app answers ``user``'s request itself (a remote login, not the counter's) and
    returns to ``user``'s browser, which approves."""
    page, pkce = user.start(claims=VERIFIED_CLAIMS)
    request, path = user.challenge(page, card)
    user.approve(user.finish(CardApp(user.server, card).answer(request), path), pkce)
