"""The pages of the demo bank branch's counter terminal (``/branch``); the terminal itself (its
client, the counter answer, the outcome) is :mod:`trustanchor.demo.branch`.

- ``GET /branch/`` — staff sign-in, then the customers served here (the people without a
  smartphone): their accounts, link, send money, recent operations;
- ``POST /branch/signin`` / ``signout`` — the staff session (CSRF-guarded, cookie on path ``/``
  so that the card-app link on this origin opens the terminal's reader);
- ``POST /branch/link`` / ``transfer`` — PAR (``prompt=login``) and off to the service;
- ``GET``/``POST /branch/reader`` — the card reader: the service's certificate request, the
  card put on the reader, the customer's PIN(s), the answer to the counter endpoint;
- ``GET /branch/callback`` — the code exchange and the outcome;
- ``GET /branch/operations/<customer>/<id>`` — what happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

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
from werkzeug.wrappers import Response

from trustanchor.demo.bank.client import BankClientError
from trustanchor.demo.bank.desk import (
    SIGN_IN_CLAIMS,
    BankDesk,
    NotRegistered,
    Payee,
    link_details,
    transfer_details,
)
from trustanchor.demo.bank.store import Session
from trustanchor.demo.branch import (
    COOKIE,
    OPERATOR,
    STAFF_PREFIX,
    card_holders,
    counter_answer,
    finish,
    open_branch,
    operator_of,
    payees,
    reader_app,
    submit_at_counter,
)
from trustanchor.demo.card_app import (
    DEMO_AUTH_PIN,
    DEMO_SIGN_PASSWORD,
    CardApp,
    CardError,
    CertificateRequest,
    Pins,
    check_pins,
    local_name,
)
from trustanchor.demo.jpki_ca import JpkiError, load_card
from trustanchor.demo.page_context import demo_site, language, translator
from trustanchor.demo.people import Person, load_people
from trustanchor.demo.site import DemoSite
from trustanchor.domain.money import MoneyError, parse_amount

EXTENSION = "demo_branch"

blueprint = Blueprint("demo_branch", __name__)


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


def _session() -> Session | None:
    return branch().store.session(request.cookies.get(COOKIE))


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
    cardholder = next((p for p in card_holders() if p.id == form.get("card")), None)
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
        answer = counter_answer(verified, card, operator, demo_site().clock.now())
        redirect_uri = submit_at_counter(demo_site(), branch().client, http, answer)
    except CardError as exc:
        return _error("branch.errors.reader", 400, f"{exc.reason}: {exc.detail}")
    except JpkiError as exc:
        return _error("branch.errors.reader", 500, str(exc))
    finally:
        http.close()
    return redirect(redirect_uri, 303)


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
        cards=card_holders(),
        error=error,
        demo_pin=DEMO_AUTH_PIN,
        demo_password=DEMO_SIGN_PASSWORD,
    )


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


def _reader_app(http: requests.Session) -> CardApp:
    return reader_app(demo_site(), http, translator()("card.verifier_name"))


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the terminal talks to the service directly: no proxies
    return session


def _payees() -> list[Payee]:
    return payees(online_bank())


__all__ = ["blueprint", "init_app", "is_terminal"]
