"""The demo bank's pages (``/bank``): sign in with a smartphone ID, the customer's accounts,
link deposit ↔ CBDC wallet, send money, and what the service decided each time.

Sessions: a random cookie (HttpOnly, SameSite=Lax, path /bank), stored as a digest; a new
cookie at sign-in. Every POST carries the session's CSRF token. Each authorization's ``state``
is bound to the browser session that started it and consumed once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from trustanchor.demo.bank import form as bank_form
from trustanchor.demo.bank.client import (
    AuthorizationRefused,
    BankClientError,
    PendingAuthorization,
    Tokens,
)
from trustanchor.demo.bank.desk import (
    SIGN_IN_CLAIMS,
    BankDesk,
    NotRegistered,
    funding_details,
    link_details,
    transfer_details,
)
from trustanchor.demo.bank.form import FormError
from trustanchor.demo.bank.store import PAYMENTS, Operation, Pending, Session
from trustanchor.demo.ledger_book import DIRECTIONS
from trustanchor.demo.page_context import demo_site, language, money, translator
from trustanchor.demo.people import Person

blueprint = Blueprint("demo_bank", __name__)
COOKIE = "demo_bank_session"
COOKIE_PATH = "/bank"
SIGN_IN_SCOPE = "openid"
OPERATION_SCOPE = "openid"


def desk() -> BankDesk:
    value: BankDesk = current_app.extensions["demo_bank"]
    return value


def _session() -> Session | None:
    return desk().store.session(request.cookies.get(COOKIE))


def _set_cookie(response: Response, value: str) -> Response:
    response.set_cookie(
        COOKIE,
        value,
        max_age=desk().store.session_lifetime,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=demo_site().parties_url.startswith("https://"),
    )
    return response


def _page(template: str, status: int = 200, *, cookie: str | None = None, **context: Any) -> Any:
    response = make_response(render_template(template, **context), status)
    if cookie is not None:
        _set_cookie(response, cookie)
    return response


def _error(message_key: str, status: int, detail: str | None = None) -> Any:
    return _page("bank/error.html", status, message=translator()(message_key), detail=detail)


def _require_post_session(signed_in: bool = True) -> Session:
    session = _session()
    if session is None or not session.csrf_ok(request.form.get("csrf")):
        abort(400)
    if signed_in and not session.signed_in:
        abort(403)
    return session


@blueprint.errorhandler(400)
def _bad_request(_exc: Exception) -> Any:
    return _error("bank.errors.bad_request", 400)


@blueprint.errorhandler(403)
def _forbidden(_exc: Exception) -> Any:
    return _error("bank.errors.signed_out", 403)


@blueprint.errorhandler(BankClientError)
def _service_error(exc: BankClientError) -> Any:
    current_app.logger.warning("demo bank: %s", exc)
    return _error("bank.errors.service", 503, str(exc))


@blueprint.errorhandler(NotRegistered)
def _not_registered(exc: NotRegistered) -> Any:
    return _error("bank.errors.not_registered", 503, str(exc))


# -- home ---------------------------------------------------------------------------------------


@blueprint.get("/")
def home() -> Any:
    session = _session()
    cookie = None
    if session is None:
        cookie, session = desk().store.new_session()
    person = desk().person(session.person_id) if session.signed_in else None
    if person is None:
        return _page("bank/welcome.html", cookie=cookie, session=session)
    return _home(person, session, cookie=cookie)


def _home(
    person: Person,
    session: Session,
    *,
    cookie: str | None = None,
    status: int = 200,
    form_error: str | None = None,
    funding_error: str | None = None,
    form: Mapping[str, str] | None = None,
) -> Any:
    bank = desk()
    accounts = bank.accounts_of(person)
    link = bank.active_link(person)
    return _page(
        "bank/home.html",
        status,
        cookie=cookie,
        session=session,
        person=person,
        accounts=accounts,
        wallet=next((a for a in accounts if a.kind == "cbdc_wallet"), None),
        link=link,
        funding=_funding_offered(link),
        payees=bank.payees(person),
        operations=bank.store.operations(person.id),
        memo_size=bank_form.MAX_MEMO,
        form_error=form_error,
        funding_error=funding_error,
        form=form or {},
    )


# -- sign in / out ------------------------------------------------------------------------------


@blueprint.post("/login")
def login() -> Any:
    session = _require_post_session(signed_in=False)
    return _start(session, "login", SIGN_IN_SCOPE, claims=SIGN_IN_CLAIMS, payload={})


@blueprint.post("/logout")
def logout() -> Any:
    """Sign out of the bank only: the service's SSO session stays (the next sign-in in this
    browser may not ask for a login again)."""
    session = _require_post_session(signed_in=False)
    desk().store.end_session(session)
    response = redirect(url_for("demo_bank.home"), 303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


@blueprint.post("/logout-everywhere")
def logout_everywhere() -> Any:
    """Sign out of the bank and of the service: the bank's session ends here, then the browser
    goes to the service's end-session endpoint (RP-Initiated Logout) with the session's latest
    ID token as the hint, and comes back to the bank's welcome page. Another person can then
    sign in in this browser."""
    session = _require_post_session(signed_in=False)
    bank = desk()
    hint = bank.store.end_session(session)
    url = bank.client.logout_url(
        id_token_hint=hint,
        post_logout_redirect_uri=demo_site().party(url_for("demo_bank.home")),
        ui_locales=language(),
    )
    response = redirect(url, 303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _start(
    session: Session,
    purpose: str,
    scope: str,
    *,
    payload: Mapping[str, Any],
    claims: Mapping[str, Any] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Any:
    started = desk().client.start(scope=scope, claims=claims, authorization_details=details)
    pending = started.pending
    desk().store.save_pending(
        session,
        purpose=purpose,
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.code_verifier,
        scope=pending.scope,
        payload=payload,
    )
    return redirect(started.url, 303)


# -- operations ---------------------------------------------------------------------------------


@blueprint.post("/link")
def start_link() -> Any:
    session = _require_post_session()
    person = desk().person(session.person_id)
    if person is None:
        abort(403)
    deposit = desk().account_id(person, "bank_deposit")
    wallet = desk().account_id(person, "cbdc_wallet")
    payload = {"deposit_account": deposit, "wallet_account": wallet}
    return _start(
        session, "link", OPERATION_SCOPE, payload=payload, details=link_details(deposit, wallet)
    )


@blueprint.post("/transfer")
def start_transfer() -> Any:
    session = _require_post_session()
    person = desk().person(session.person_id)
    if person is None:
        abort(403)
    t = translator()
    form = {name: request.form.get(name, "") for name in ("payee", "amount", "reference")}
    payee = next((p for p in desk().payees(person) if p.person.id == form["payee"]), None)
    if payee is None:
        return _home(person, session, status=400, form_error=t("bank.send.no_payee"), form=form)
    wallet = person.account("cbdc_wallet")
    try:
        amount = bank_form.amount(form["amount"], wallet.currency)
    except FormError:
        error = t("bank.send.bad_amount", currency=wallet.currency)
        return _home(person, session, status=400, form_error=error, form=form)
    try:
        memo = bank_form.memo(form["reference"])
    except FormError:
        error = t("bank.send.bad_memo", size=bank_form.MAX_MEMO)
        return _home(person, session, status=400, form_error=error, form=form)
    instruction = {
        "amount": str(amount),
        "currency": amount.currency,
        "debtor_account": desk().account_id(person, "cbdc_wallet"),
        "creditor_account": payee.account_id,
    }
    if memo is not None and memo.reference is not None:
        instruction["remittance_reference"] = memo.reference
    payload: dict[str, Any] = {"instruction": instruction, "payee": payee.person.id}
    if memo is not None:
        # The bank's own record of the memo; sent to the service only when it is the reference.
        payload["memo"] = memo.text
    return _start(
        session,
        "transfer",
        OPERATION_SCOPE,
        payload=payload,
        details=transfer_details(instruction),
    )


def _funding_offered(link: Mapping[str, Any] | None) -> bool:
    """The top-up / move-back form is shown only when it can work: an active link that is not
    flagged, and a service that lists the ``funding`` type (no dead buttons)."""
    return link is not None and not link.get("flagged") and desk().client.supports("funding")


@blueprint.post("/funding")
def start_funding() -> Any:
    """Move money between the customer's own deposit account and CBDC wallet over their link:
    a ``funding`` authorization_details entry through PAR, like a transfer."""
    session = _require_post_session()
    bank = desk()
    person = bank.person(session.person_id)
    if person is None:
        abort(403)
    t = translator()
    form = {name: request.form.get(name, "") for name in ("direction", "funding_amount")}
    if form["direction"] not in DIRECTIONS:
        abort(400)
    link = bank.active_link(person)
    if link is None or not _funding_offered(link):
        return _home(person, session, status=409, funding_error=t("bank.funding.unavailable"))
    deposit = person.account("bank_deposit")
    try:
        amount = bank_form.amount(form["funding_amount"], deposit.currency)
    except FormError:
        error = t("bank.send.bad_amount", currency=deposit.currency)
        return _home(person, session, status=400, funding_error=error, form=form)
    instruction = {
        "direction": form["direction"],
        "amount": str(amount),
        "currency": amount.currency,
        "deposit_account": bank.account_id(person, "bank_deposit"),
        "wallet_account": bank.account_id(person, "cbdc_wallet"),
    }
    link_id = link.get("link_id")
    details = funding_details(instruction, link_id if isinstance(link_id, str) else None)
    payload = {"instruction": instruction, "funding": details[0]}
    return _start(session, "funding", OPERATION_SCOPE, payload=payload, details=details)


# -- the redirect back from the service ---------------------------------------------------------


@blueprint.get("/callback")
def callback() -> Any:
    session = _session()
    if session is None:
        return _error("bank.errors.no_session", 400)
    pending = desk().store.consume_pending(request.args.get("state"), session)
    if pending is None:
        return _error("bank.errors.unknown_state", 400)
    query = request.query_string.decode("ascii", errors="replace")
    if pending.purpose == "login":
        return _finish_login(session, pending, query)
    return _finish_operation(session, pending, query)


def _finish_login(session: Session, pending: Pending, query: str) -> Any:
    t = translator()
    try:
        tokens = desk().client.finish(_as_client_pending(pending), query)
    except AuthorizationRefused as refused:
        return _page(
            "bank/error.html",
            403,
            message=t("bank.errors.login_refused"),
            detail=refused.description or refused.error,
        )
    person = desk().customer_for(tokens.id_claims)
    if person is None:
        return _error("bank.errors.not_a_customer", 403)
    if not desk().store.remember_subject(tokens.sub, person.id):
        return _error("bank.errors.subject_conflict", 403)
    cookie, _fresh = desk().store.sign_in(
        session, person.id, tokens.sub, id_token=tokens.id_token or None
    )
    response = redirect(url_for("demo_bank.home"), 303)
    _set_cookie(response, cookie)
    return response


def _finish_operation(session: Session, pending: Pending, query: str) -> Any:
    bank = desk()
    person = bank.person(session.person_id)
    if person is None or session.sub is None:
        return _error("bank.errors.signed_out", 403)
    requested = dict(pending.payload)
    try:
        tokens = bank.client.finish(_as_client_pending(pending), query)
    except AuthorizationRefused as refused:
        operation_id = bank.store.record_operation(
            person_id=person.id,
            purpose=pending.purpose,
            outcome="denied",
            reason=refused.reason or ("declined" if refused.error == "access_denied" else None),
            message=None if refused.reason else refused.error,
            requested=requested,
        )
        return redirect(url_for("demo_bank.operation", operation_id=operation_id), 303)
    except BankClientError as exc:
        operation_id = bank.store.record_operation(
            person_id=person.id,
            purpose=pending.purpose,
            outcome="failed",
            message=str(exc),
            requested=requested,
        )
        return redirect(url_for("demo_bank.operation", operation_id=operation_id), 303)
    if tokens.sub != session.sub:
        operation_id = bank.store.record_operation(
            person_id=person.id,
            purpose=pending.purpose,
            outcome="failed",
            message="approved by someone other than the signed-in customer",
            requested=requested,
        )
        return redirect(url_for("demo_bank.operation", operation_id=operation_id), 303)
    if tokens.id_token:
        bank.store.remember_id_token(session, tokens.id_token)
    operation_id = bank.store.record_operation(
        person_id=person.id,
        purpose=pending.purpose,
        outcome="allowed",
        requested=requested,
        approved=tokens.authorization_details,
        anchor_set=tokens.anchor_set,
    )
    if pending.purpose in PAYMENTS:
        _submit_to_ledger(operation_id, pending.purpose, tokens, requested)
    return redirect(url_for("demo_bank.operation", operation_id=operation_id), 303)


def _submit_to_ledger(
    operation_id: int, purpose: str, tokens: Tokens, requested: Mapping[str, Any]
) -> None:
    instruction = requested.get("instruction")
    if not isinstance(instruction, dict):
        return
    client = desk().client
    submit = client.submit_funding if purpose == "funding" else client.submit_transfer
    try:
        answer = submit(tokens.access_token, instruction)
    except BankClientError as exc:
        desk().store.record_ledger_answer(operation_id, 0, {"error": str(exc)})
        return
    desk().store.record_ledger_answer(operation_id, answer.status, answer.body)


def _as_client_pending(pending: Pending) -> PendingAuthorization:
    return PendingAuthorization(
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.code_verifier,
        scope=pending.scope,
    )


# -- what happened ------------------------------------------------------------------------------


@blueprint.get("/operations/<int:operation_id>")
def operation(operation_id: int) -> Any:
    session = _session()
    if session is None or not session.signed_in or session.person_id is None:
        return _error("bank.errors.signed_out", 403)
    bank = desk()
    person = bank.person(session.person_id)
    found = bank.store.operation(operation_id, session.person_id)
    if found is None or person is None:
        abort(404)
    t = translator()
    reason_text = None
    if found.reason:
        key = f"bank.reasons.{found.reason}"
        reason_text = t(key) if t.has(key) else t("bank.reasons.generic")
    ledger_text = _ledger_text(found)
    payee = bank.person(str(found.requested.get("payee", "")))
    return _page(
        "bank/operation.html",
        operation=found,
        person=person,
        session=session,
        reason_text=reason_text,
        ledger_text=ledger_text,
        headline=_headline(found, ledger_text),
        # Readable in both languages (tojson would write a Japanese memo as \u escapes).
        requested_json=json.dumps(found.requested, indent=2, sort_keys=True, ensure_ascii=False),
        payee=payee,
    )


def _ledger_text(found: Operation) -> str | None:
    """The ledger's answer in words (None when it was not asked)."""
    if found.ledger_answer is None:
        return None
    t = translator()
    state = found.state
    if state == "executed":
        return t(f"ledger.answer.executed_{found.purpose}")
    if state == "ledger_silent":
        return t("ledger.answer.silent")
    reason = found.ledger_reason
    if reason is not None and t.has(f"ledger.reasons.{reason}"):
        return t(f"ledger.reasons.{reason}")
    return t("ledger.reasons.generic")


def _headline(found: Operation, ledger_text: str | None) -> str:
    """What happened, first. A payment the service approved is "done" only when the ledger
    executed it; a ledger refusal is said as such, with its reason in words."""
    t = translator()
    state = found.state
    if state == "ledger_refused":
        return t("bank.result.ledger_refused", reason=_run_in(ledger_text or ""))
    if state in ("executed", "ledger_silent", "ledger_not_asked"):
        return t(f"bank.result.{found.purpose}_{state}")
    return t(f"bank.operation.{found.purpose}_{found.outcome}")


def _run_in(sentence: str) -> str:
    """A sentence continuing after a colon: "The balance …" → "the balance …" (an initial
    capital of an acronym such as "DPoP" is kept; texts without case are unchanged)."""
    if len(sentence) > 1 and sentence[0].isupper() and sentence[1].islower():
        return sentence[0].lower() + sentence[1:]
    return sentence


def amount_text(amount: str | None, currency: str | None) -> str:
    """An amount as the page's language writes it: ``5,000 JPY``, in Japanese ``5,000円``."""
    if not amount or not currency:
        return ""
    if language() == "ja" and currency == "JPY":
        return money(amount) + "円"
    return money(amount, currency)


@blueprint.context_processor
def _bank_template_context() -> dict[str, Any]:
    return {"amount_text": amount_text}
