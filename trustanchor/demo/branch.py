"""A demo bank branch's counter terminal (``/branch``): the face-to-face channel of certificate
login (docs/CERTIFICATE-LOGIN.md, "At a bank branch"), for people without a smartphone.

The terminal is its own confidential client of the service, ``demo-bank-branch``
(``config/demo.toml``: ``private_key_jwt`` with ``keys/demo/clients/demo-bank-branch.key.pem``,
``trustanchor_branch`` the branch role), on requests-oauth2client like the online bank
(:class:`BranchClient` is the bank's :class:`~trustanchor.demo.bank.client.BankClient` with
the branch's redirect URI). The service keeps accounts per client, so the branch registers the
accounts of the customers it serves (the people without a smartphone) with its own
credentials, and the ledger opens their CBDC wallets; the online bank serves the others.

1. Staff sign in with their operator id (a demo: no password; a real terminal authenticates
   its staff). The terminal's browser is marked as a counter terminal (a cookie on the parties'
   origin), so the card-app link of the service's login page opens the terminal's card reader
   (``/branch/reader``) instead of the phone's app — as a terminal's OS would route it.
2. For a customer, "link accounts" or "send money" pushes the request (PAR, with the verified
   name and birth date asked in the ID token) and sends the terminal's browser to the service.
3. At the service's login page the staff choose the My Number Card; the reader fetches and
   verifies the request like the phone's app, the staff pick the card put on the reader and the
   customer types the PIN(s) on the terminal; the reader signs the challenge with the card and
   submits it to ``/certificate/counter-response`` with the staff operator and the terminal's
   own ``private_key_jwt``; the terminal's browser follows the answer's ``redirect_uri``.
4. The customer approves on the service's consent page; back at ``/branch/callback`` the
   terminal redeems the code, checks that the verified person is the customer being served, and
   records the outcome (a transfer goes to the ledger with the DPoP-bound token).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from requests_oauth2client import PrivateKeyJwt
from werkzeug.wrappers import Response

from trustanchor.demo.bank.client import (
    AuthorizationRefused,
    BankClient,
    BankClientError,
    PendingAuthorization,
    Tokens,
    private_jwk,
)
from trustanchor.demo.bank.desk import (
    SIGN_IN_CLAIMS,
    BankDesk,
    NotRegistered,
    Payee,
    link_details,
    transfer_details,
    verified_identity,
)
from trustanchor.demo.bank.store import BankStore, Pending, Session
from trustanchor.demo.card_app import (
    DEMO_AUTH_PIN,
    DEMO_SIGN_PASSWORD,
    CardApp,
    CardError,
    CertificateRequest,
    Pins,
    challenge,
    check_pins,
    local_name,
)
from trustanchor.demo.jpki_ca import JpkiError, load_card
from trustanchor.demo.ledger_book import LedgerBook
from trustanchor.demo.page_context import demo_site, language, translator
from trustanchor.demo.people import Person, load_people
from trustanchor.demo.phone import service_verifier
from trustanchor.demo.site import DemoSite
from trustanchor.domain.money import MoneyError, parse_amount

BRANCH_CLIENT_ID = "demo-bank-branch"
CALLBACK_PATH = "/branch/callback"
COUNTER_RESPONSE_PATH = "/certificate/counter-response"
EXTENSION = "demo_branch"
# The terminal's staff session (the bank's session table; its person is "staff:<operator>").
# Path "/": the card-app link on the parties' origin must see that this browser is a terminal.
COOKIE = "demo_branch_terminal"
STAFF_PREFIX = "staff:"
OPERATOR = re.compile(r"[a-z0-9][a-z0-9-]{2,31}")
MATCHED_CLAIMS = ("given_name", "family_name", "birthdate")
TIMEOUT = 10.0

blueprint = Blueprint("demo_branch", __name__)


class BranchClient(BankClient):
    """The counter terminal's OAuth client: the bank's client with its own id, key and
    redirect URI."""

    @property
    def redirect_uri(self) -> str:
        return self.site.party(CALLBACK_PATH)


def open_branch(site: DemoSite, store: BankStore, book: LedgerBook) -> BankDesk:
    """The branch's desk: the customers without a smartphone, its own client."""
    customers = [p for p in load_people() if p.card is not None and not p.smartphone]
    client = BranchClient.from_site(site, BRANCH_CLIENT_ID)
    # With the customer's identified name and birth date: the service binds these accounts only
    # to the person whose card says so, whichever card is put on the reader.
    return BankDesk(customers, store, book, client, register_kyc=True)


def init_app(app: Flask, site: DemoSite) -> None:
    """After the online bank (its store and the ledger's book are shared)."""
    bank: BankDesk = app.extensions["demo_bank"]
    app.extensions[EXTENSION] = open_branch(site, bank.store, bank.book)


def branch() -> BankDesk:
    desk: BankDesk = current_app.extensions[EXTENSION]
    return desk


def online_bank() -> BankDesk:
    desk: BankDesk = current_app.extensions["demo_bank"]
    return desk


# -- the staff session ----------------------------------------------------------------------------


def _session() -> Session | None:
    return branch().store.session(request.cookies.get(COOKIE))


def operator_of(session: Session | None) -> str | None:
    if session is None or not session.signed_in or session.person_id is None:
        return None
    if not session.person_id.startswith(STAFF_PREFIX):
        return None
    return session.person_id[len(STAFF_PREFIX) :]


def is_terminal(cookie: str | None) -> bool:
    """Whether a browser carrying this cookie is a counter terminal with staff signed in."""
    desk = current_app.extensions.get(EXTENSION)
    return desk is not None and operator_of(desk.store.session(cookie)) is not None


def _staff() -> tuple[Session, str]:
    session = _session()
    operator = operator_of(session)
    if session is None or operator is None:
        abort(403)
    return session, operator


def _staff_post() -> tuple[Session, str]:
    session, operator = _staff()
    if not session.csrf_ok(request.form.get("csrf")):
        abort(400)
    return session, operator


def _set_cookie(response: Response, value: str) -> Response:
    response.set_cookie(
        COOKIE,
        value,
        max_age=branch().store.session_lifetime,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=demo_site().parties_url.startswith("https://"),
    )
    return response


def _page(template: str, status: int = 200, **context: Any) -> Response:
    response = make_response(render_template(template, **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(key: str, status: int, detail: str | None = None) -> Response:
    return _page("branch/error.html", status, message=translator()(key), detail=detail)


@blueprint.errorhandler(400)
def _bad_request(_exc: Exception) -> Response:
    return _error("branch.errors.bad_request", 400)


@blueprint.errorhandler(403)
def _forbidden(_exc: Exception) -> Response:
    return _error("branch.errors.signed_out", 403)


@blueprint.errorhandler(BankClientError)
def _service_error(exc: BankClientError) -> Response:
    current_app.logger.warning("demo branch: %s", exc)
    return _error("branch.errors.service", 503, str(exc))


@blueprint.errorhandler(NotRegistered)
def _not_registered(exc: NotRegistered) -> Response:
    return _error("branch.errors.service", 503, str(exc))


# -- pages ----------------------------------------------------------------------------------------


@blueprint.get("/")
def home() -> Response:
    session = _session()
    operator = operator_of(session)
    if session is None:  # a session before sign-in: its CSRF token guards the sign-in form
        cookie, session = branch().store.new_session()
        return _set_cookie(_page("branch/signin.html", session=session, error=None), cookie)
    if operator is None:
        return _page("branch/signin.html", session=session, error=None)
    desk = branch()
    customers = []
    for customer in desk.people:
        customers.append(
            {
                "person": customer,
                "accounts": desk.accounts_of(customer),
                "link": desk.active_link(customer),
                "operations": desk.store.operations(customer.id, limit=5),
            }
        )
    return _page(
        "branch/home.html",
        session=session,
        operator=operator,
        customers=customers,
        payees=_payees(),
        form_error=request.args.get("problem"),
    )


@blueprint.post("/signin")
def sign_in() -> Response:
    session = _session()
    if session is None or not session.csrf_ok(request.form.get("csrf")):
        abort(400)  # no sign-in forged from another site (login CSRF)
    operator = request.form.get("operator", "").strip().lower()
    if not OPERATOR.fullmatch(operator):
        error = translator()("branch.signin.bad_operator")
        return _page("branch/signin.html", 400, session=session, error=error)
    # A new session (a new cookie: no session fixation), its person the staff operator.
    cookie, _signed_in = branch().store.sign_in(session, STAFF_PREFIX + operator, "branch-staff")
    return _set_cookie(redirect(url_for("demo_branch.home"), 303), cookie)


@blueprint.post("/signout")
def sign_out() -> Response:
    session, _operator = _staff_post()
    branch().store.end_session(session)
    response = redirect(url_for("demo_branch.home"), 303)
    response.delete_cookie(COOKIE, path="/")
    return response


@blueprint.post("/link")
def start_link() -> Response:
    session, operator = _staff_post()
    customer = _customer(request.form.get("customer"))
    desk = branch()
    deposit = desk.account_id(customer, "bank_deposit")
    wallet = desk.account_id(customer, "cbdc_wallet")
    payload = {
        "customer": customer.id,
        "operator": operator,
        "deposit_account": deposit,
        "wallet_account": wallet,
    }
    return _start(session, "link", payload, link_details(deposit, wallet))


@blueprint.post("/transfer")
def start_transfer() -> Response:
    session, operator = _staff_post()
    customer = _customer(request.form.get("customer"))
    t = translator()
    payee = next((p for p in _payees() if p.person.id == request.form.get("payee")), None)
    if payee is None or payee.person.id == customer.id:
        return _back(t("branch.send.no_payee"))
    wallet = customer.account("cbdc_wallet")
    try:
        amount = parse_amount(request.form.get("amount", "").strip(), wallet.currency)
    except MoneyError:
        return _back(t("branch.send.bad_amount", currency=wallet.currency))
    instruction = {
        "amount": str(amount),
        "currency": amount.currency,
        "debtor_account": branch().account_id(customer, "cbdc_wallet"),
        "creditor_account": payee.account_id,
    }
    payload = {
        "customer": customer.id,
        "operator": operator,
        "instruction": instruction,
        "payee": payee.person.id,
    }
    return _start(session, "transfer", payload, transfer_details(instruction))


def _back(problem: str) -> Response:
    return redirect(url_for("demo_branch.home") + "?" + urlencode({"problem": problem}), 303)


def _start(
    session: Session, purpose: str, payload: Mapping[str, Any], details: list[dict[str, Any]]
) -> Response:
    """PAR as the branch's client, then the terminal's browser to the service."""
    desk = branch()
    # prompt=login: the terminal serves one customer after another in the same browser, so a
    # login at the service is never taken over from the previous customer's session.
    started = desk.client.start(
        scope="openid", claims=SIGN_IN_CLAIMS, authorization_details=details, prompt="login"
    )
    pending = started.pending
    desk.store.save_pending(
        session,
        purpose=purpose,
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.code_verifier,
        scope=pending.scope,
        payload=payload,
    )
    return redirect(started.url, 303)


# -- the card reader ------------------------------------------------------------------------------


def _reader_app(session: requests.Session) -> CardApp:
    site = demo_site()
    verifier = service_verifier(site, {language(): translator()("card.verifier_name")})
    return CardApp(
        http=session,
        clock=site.clock,
        randomness=site.randomness,
        verifiers=[verifier],
        allow_http_loopback=True,
    )


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


@blueprint.get("/reader")
def reader() -> Response:
    session, operator = _staff()
    pending = {k: request.args.get(k, "") for k in ("client_id", "request_uri")}
    http = _http()
    try:
        verified = _reader_app(http).fetch_certificate_request(
            "/branch/reader?" + urlencode(pending)
        )
    except CardError as exc:
        return _error("branch.errors.reader", 400, f"{exc.reason}: {exc.detail}")
    finally:
        http.close()
    return _reader_page(session, operator, verified)


@blueprint.post("/reader")
def reader_submit() -> Response:
    session, operator = _staff_post()
    form = request.form
    cardholder = next(
        (p for p in load_people() if p.card is not None and p.id == form.get("card")), None
    )
    http = _http()
    try:
        app = _reader_app(http)
        verified = app.verify_certificate_request(
            form.get("request", ""), client_id=form.get("client_id", "")
        )
        if cardholder is None:
            return _reader_page(session, operator, verified, error="no_card", status=400)
        pins = Pins(form.get("pin", ""), form.get("password", ""))
        try:
            check_pins(verified, pins)
        except CardError as exc:
            return _reader_page(session, operator, verified, error=exc.reason, status=400)
        card = load_card(demo_site().keys_dir, cardholder)
        now = demo_site().clock.now()
        answer = {"state": verified.state, "staff_operator": operator}
        for profile in verified.certificates:
            answer[profile] = challenge(verified, card.certificates[profile], now)
        redirect_uri = _submit_at_counter(http, verified, answer)
    except CardError as exc:
        return _error("branch.errors.reader", 400, f"{exc.reason}: {exc.detail}")
    except JpkiError as exc:
        return _error("branch.errors.reader", 500, str(exc))
    finally:
        http.close()
    return redirect(redirect_uri, 303)


def _submit_at_counter(
    http: requests.Session, verified: CertificateRequest, answer: Mapping[str, str]
) -> str:
    """POST the answer to the counter endpoint with the terminal's own client authentication;
    the ``redirect_uri`` of the answer (on the service's origin)."""
    site = demo_site()
    client = branch().client
    auth = PrivateKeyJwt(
        client.client_id,
        private_jwk(client.signing_key),
        alg="ES256",
        aud=site.service_url,  # the issuer identifier, as for the token endpoint (FAPI 2.0)
    )
    try:
        response = http.post(
            site.service(COUNTER_RESPONSE_PATH),
            data=dict(answer),
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise CardError("verifier_unreachable", exc.__class__.__name__) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if response.status_code != 200:
        description = body.get("error_description") or body.get("error") or response.status_code
        raise CardError("verifier_refused", str(description)[:200])
    target = body.get("redirect_uri")
    service = urlsplit(site.service_url)
    parts = urlsplit(target) if isinstance(target, str) else None
    if parts is None or (parts.scheme, parts.netloc) != (service.scheme, service.netloc):
        raise CardError("invalid_redirect_uri", "not on the service's origin")
    return str(target)


def _reader_page(
    session: Session,
    operator: str,
    verified: CertificateRequest,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    lang = language()
    return _page(
        "branch/reader.html",
        status,
        session=session,
        operator=operator,
        client_name=local_name(verified.client_name, lang, verified.client_id),
        anchor_name=local_name(verified.anchor_name, lang, ""),
        certificates=verified.certificates,
        request_token=verified.token,
        client_id=verified.client_id,
        cards=[p for p in load_people() if p.card is not None],
        error=error,
        demo_pin=DEMO_AUTH_PIN,
        demo_password=DEMO_SIGN_PASSWORD,
    )


# -- back from the service ------------------------------------------------------------------------


@blueprint.get("/callback")
def callback() -> Response:
    session = _session()
    if session is None or operator_of(session) is None:
        return _error("branch.errors.signed_out", 403)
    desk = branch()
    pending = desk.store.consume_pending(request.args.get("state"), session)
    if pending is None:
        return _error("branch.errors.unknown_state", 400)
    customer = desk.person(str(pending.payload.get("customer", "")))
    if customer is None:
        return _error("branch.errors.unknown_state", 400)
    query = request.query_string.decode("ascii", errors="replace")
    operation_id = finish(desk, customer, pending, query)
    return redirect(
        url_for("demo_branch.operation", customer_id=customer.id, operation_id=operation_id), 303
    )


def finish(desk: BankDesk, customer: Person, pending: Pending, query: str) -> int:
    """Redeem the code, check the verified person is ``customer``, record (and, for a transfer,
    submit to the ledger); the operation's id."""
    requested = dict(pending.payload)
    client_pending = PendingAuthorization(
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.code_verifier,
        scope=pending.scope,
    )
    try:
        tokens = desk.client.finish(client_pending, query)
    except AuthorizationRefused as refused:
        return desk.store.record_operation(
            person_id=customer.id,
            purpose=pending.purpose,
            outcome="denied",
            reason=refused.reason or ("declined" if refused.error == "access_denied" else None),
            message=None if refused.reason else refused.error,
            requested=requested,
        )
    except BankClientError as exc:
        return desk.store.record_operation(
            person_id=customer.id,
            purpose=pending.purpose,
            outcome="failed",
            message=str(exc),
            requested=requested,
        )
    if not same_person(tokens, customer):
        return desk.store.record_operation(
            person_id=customer.id,
            purpose=pending.purpose,
            outcome="failed",
            message="the card read at the counter is not the customer's",
            requested=requested,
        )
    operation_id = desk.store.record_operation(
        person_id=customer.id,
        purpose=pending.purpose,
        outcome="allowed",
        requested=requested,
        approved=tokens.authorization_details,
        anchor_set=tokens.anchor_set,
    )
    instruction = requested.get("instruction")
    if pending.purpose == "transfer" and isinstance(instruction, dict):
        try:
            answer = desk.client.submit_transfer(tokens.access_token, instruction)
            desk.store.record_ledger_answer(operation_id, answer.status, answer.body)
        except BankClientError as exc:
            desk.store.record_ledger_answer(operation_id, 0, {"error": str(exc)})
    return operation_id


def same_person(tokens: Tokens, customer: Person) -> bool:
    """The ID token's verified name and birth date are the customer's."""
    verified = verified_identity(tokens.id_claims)
    expected = (customer.given_name, customer.family_name, customer.birthdate)
    return tuple(verified.get(name) for name in MATCHED_CLAIMS) == expected


@blueprint.get("/operations/<customer_id>/<int:operation_id>")
def operation(customer_id: str, operation_id: int) -> Response:
    session, operator = _staff()
    desk = branch()
    customer = desk.person(customer_id)
    found = desk.store.operation(operation_id, customer_id) if customer else None
    if found is None or customer is None:
        abort(404)
    t = translator()
    reason_text = None
    if found.reason:
        key = f"bank.reasons.{found.reason}"
        reason_text = t(key) if t.has(key) else t("bank.reasons.generic")
    ledger_text = None
    if found.ledger_answer is not None:
        ledger_reason = found.ledger_answer.get("reason")
        if found.ledger_status in (200, 201):
            ledger_text = t("ledger.answer.executed")
        elif isinstance(ledger_reason, str) and t.has(f"ledger.reasons.{ledger_reason}"):
            ledger_text = t(f"ledger.reasons.{ledger_reason}")
        else:
            ledger_text = t("ledger.reasons.generic")
    payee = next((p for p in load_people() if p.id == found.requested.get("payee")), None)
    return _page(
        "branch/operation.html",
        session=session,
        operator=operator,
        operation=found,
        person=customer,
        reason_text=reason_text,
        ledger_text=ledger_text,
        payee=payee,
    )


def _customer(customer_id: str | None) -> Person:
    customer = branch().person(customer_id)
    if customer is None:
        abort(400)
    return customer


def _payees() -> list[Payee]:
    """Whom a branch customer can pay: the online bank's customers' CBDC wallets."""
    bank = online_bank()
    registered = bank.registered()
    payees = []
    for other in bank.people:
        for account in other.accounts:
            entry = registered.get(account.reference)
            if account.kind == "cbdc_wallet" and entry is not None:
                payees.append(Payee(other, account, entry.account_id))
    return payees


__all__ = ["BRANCH_CLIENT_ID", "BranchClient", "blueprint", "init_app", "is_terminal"]
