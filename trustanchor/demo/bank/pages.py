"""The demo bank's pages (``/bank``): sign in with a smartphone ID, the customer's accounts,
link deposit ↔ CBDC wallet, move money between them, send money, and what the service decided
each time. "Automatic top-up" is a standing authorization (docs/AUTHORIZATION-DETAILS.md §5): the
person approves it once; then a transfer above the wallet's balance is first covered by a top-up
of exactly the missing amount (the reverse waterfall, :meth:`BankDesk.auto_top_up`), and "Stop"
ends it through the links API.

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
from requests_oauth2client import DPoPKey
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
    standing_details,
    transfer_details,
)
from trustanchor.demo.bank.form import FormError
from trustanchor.demo.bank.store import PAYMENTS, Operation, Pending, Session, Standing
from trustanchor.demo.ledger_book import DIRECTIONS
from trustanchor.demo.page_context import demo_site, language, money, translator
from trustanchor.demo.people import Person
from trustanchor.domain.money import Amount

blueprint = Blueprint("demo_bank", __name__)
COOKIE = "demo_bank_session"
COOKIE_PATH = "/bank"
SIGN_IN_SCOPE = "openid"
OPERATION_SCOPE = "openid"
# What "Automatic top-up" offers: the form's first values, and the durations to choose from.
STANDING_DEFAULTS = {"standing_max": "30,000", "standing_daily": "100,000", "standing_days": "30"}
STANDING_DAYS = (7, 30, 90)
NOTICES = ("standing_stopped", "standing_already_ended")


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
    standing_error: str | None = None,
    form: Mapping[str, str] | None = None,
) -> Any:
    bank = desk()
    accounts = bank.accounts_of(person)
    link = bank.active_link(person)
    standing = bank.standing_for(person, link)
    funding = _funding_offered(link)
    notice = request.args.get("notice")
    return _page(
        "bank/home.html",
        status,
        cookie=cookie,
        session=session,
        person=person,
        accounts=accounts,
        wallet=next((a for a in accounts if a.kind == "cbdc_wallet"), None),
        link=link,
        funding=funding,
        standing=_standing_view(standing),
        standing_offered=funding and bank.client.supports("standing_funding"),
        standing_days=STANDING_DAYS,
        notice=notice if notice in NOTICES else None,
        payees=bank.payees(person),
        operations=bank.store.operations(person.id),
        memo_size=bank_form.MAX_MEMO,
        form_error=form_error,
        funding_error=funding_error,
        standing_error=standing_error,
        form={**STANDING_DEFAULTS, **(form or {})},
    )


def _standing_view(standing: Standing | None) -> dict[str, Any] | None:
    """What the home page shows of an active automatic top-up."""
    if standing is None or standing.granted is None:
        return None
    granted = standing.granted
    return {
        "max": granted["max_amount"],
        "daily": granted["daily_amount"],
        "expires_at": standing.expires_at,
        "id": standing.standing_id,
    }


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
    started = desk().client.start(
        scope=scope, claims=claims, authorization_details=details, ui_locales=language()
    )
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
    missing = _missing_in_wallet(person, amount)
    if missing is not None and desk().standing_for(person, desk().active_link(person)):
        # The reverse waterfall: the automatic top-up brings exactly what is missing into the
        # wallet first; if the service or the ledger refuses it, the transfer is not sent.
        for_transfer = {
            "amount": str(amount),
            "currency": amount.currency,
            "payee": payee.person.id,
        }
        topped = desk().auto_top_up(person, missing, context={"for_transfer": for_transfer})
        if not topped.executed:
            return redirect(url_for("demo_bank.operation", operation_id=topped.operation_id), 303)
        payload["top_up"] = {
            "amount": str(missing),
            "currency": missing.currency,
            "operation_id": topped.operation_id,
        }
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


def _missing_in_wallet(person: Person, amount: Amount) -> Amount | None:
    """How much the person's wallet lacks for paying ``amount`` (None when it holds enough)."""
    bank = desk()
    booked = bank.book.account(bank.account_id(person, "cbdc_wallet"))
    if booked is None or booked.currency != amount.currency:
        return None
    lacking = amount.minor - booked.balance_minor
    return Amount(amount.currency, lacking) if lacking > 0 else None


def _standing_form(form: Mapping[str, str], currency: str) -> tuple[Amount, Amount, int] | str:
    """The automatic top-up form read: (per top-up, per day, days), or the error's key."""
    try:
        per_top_up = bank_form.amount(form["standing_max"], currency)
        per_day = bank_form.amount(form["standing_daily"], currency)
    except FormError:
        return "bank.send.bad_amount"
    if per_day < per_top_up:
        return "bank.standing.daily_below_max"
    days = form["standing_days"]
    if not days.isascii() or not days.isdigit() or int(days) not in STANDING_DAYS:
        return "bank.standing.bad_days"
    return per_top_up, per_day, int(days)


@blueprint.post("/standing")
def start_standing() -> Any:
    """Automatic top-up: the person approves once, on the service's consent page, a
    ``standing_funding`` authorization (deposit → wallet within the bounds they chose). Its
    refresh token is bound to a DPoP key of its own, kept with it (it outlives this process)."""
    session = _require_post_session()
    bank = desk()
    person = bank.person(session.person_id)
    if person is None:
        abort(403)
    t = translator()
    form = {n: request.form.get(n, "") for n in ("standing_max", "standing_daily", "standing_days")}
    link = bank.active_link(person)
    if (
        link is None
        or not _funding_offered(link)
        or not bank.client.supports("standing_funding")
        or bank.standing_for(person, link) is not None
    ):
        return _home(person, session, status=409, standing_error=t("bank.standing.unavailable"))
    currency = person.account("bank_deposit").currency
    read = _standing_form(form, currency)
    if isinstance(read, str):
        error = t(read, currency=currency)
        return _home(person, session, status=400, standing_error=error, form=form)
    per_top_up, per_day, days = read
    link_id = link.get("link_id")
    details = standing_details(
        bank.account_id(person, "bank_deposit"),
        bank.account_id(person, "cbdc_wallet"),
        link_id if isinstance(link_id, str) else None,
        max_amount=per_top_up,
        daily_amount=per_day,
        valid_days=days,
    )
    key, pem = bank.client.new_dpop_key()
    started = bank.client.start(
        scope=OPERATION_SCOPE, authorization_details=details, dpop_key=key, ui_locales=language()
    )
    pending = started.pending
    bank.store.save_standing_request(person.id, pending.state, pem)
    bank.store.save_pending(
        session,
        purpose="standing",
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.code_verifier,
        scope=pending.scope,
        payload={"standing": details[0]},
    )
    return redirect(started.url, 303)


@blueprint.post("/standing/stop")
def stop_standing() -> Any:
    """End the automatic top-up through the links API (``DELETE /links/{id}/standing-
    authorizations/{sta}``); the refresh token and its key are forgotten."""
    session = _require_post_session()
    person = desk().person(session.person_id)
    if person is None:
        abort(403)
    stopped = desk().stop_standing(person)
    notice = "standing_stopped" if stopped else "standing_already_ended"
    return redirect(url_for("demo_bank.home", notice=notice) + "#standing-heading", 303)


@blueprint.post("/standing/top-up")
def top_up_now() -> Any:
    """ "Top up now (automatic)": one movement under the automatic top-up, no consent page."""
    session = _require_post_session()
    bank = desk()
    person = bank.person(session.person_id)
    if person is None:
        abort(403)
    t = translator()
    form = {"standing_amount": request.form.get("standing_amount", "")}
    if bank.standing_for(person, bank.active_link(person)) is None:
        return _home(person, session, status=409, standing_error=t("bank.standing.none"))
    currency = person.account("cbdc_wallet").currency
    try:
        amount = bank_form.amount(form["standing_amount"], currency)
    except FormError:
        error = t("bank.send.bad_amount", currency=currency)
        return _home(person, session, status=400, standing_error=error, form=form)
    topped = bank.auto_top_up(person, amount)
    return redirect(url_for("demo_bank.operation", operation_id=topped.operation_id), 303)


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
    if pending.purpose == "standing":
        return _finish_standing(session, pending, query)
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


def _finish_standing(session: Session, pending: Pending, query: str) -> Any:
    """The person came back from approving (or not) an automatic top-up: redeem the code with
    the standing authorization's own DPoP key and keep its refresh token."""
    bank = desk()
    person = bank.person(session.person_id)
    if person is None or session.sub is None:
        return _error("bank.errors.signed_out", 403)
    kept = bank.store.standing_request(pending.state, person.id)
    if kept is None:
        return _error("bank.errors.unknown_state", 400)
    key, _ = bank.client.new_dpop_key(kept.dpop_key)
    return _finish_operation(session, pending, query, dpop_key=key, standing_row=kept.id)


def _finish_operation(
    session: Session,
    pending: Pending,
    query: str,
    *,
    dpop_key: DPoPKey | None = None,
    standing_row: int | None = None,
) -> Any:
    """The person came back from the service: redeem the code, record what was decided, and
    for a payment ask the ledger. ``standing_row``: the automatic top-up being approved (its
    refresh token is kept once everything checks out; anything else drops its key)."""
    bank = desk()
    person = bank.person(session.person_id)
    if person is None or session.sub is None:
        return _error("bank.errors.signed_out", 403)
    requested = dict(pending.payload)

    def not_done(outcome: str, **what: Any) -> Any:
        if standing_row is not None:
            bank.store.drop_standing_request(standing_row)
        operation_id = bank.store.record_operation(
            person_id=person.id,
            purpose=pending.purpose,
            outcome=outcome,
            requested=requested,
            **what,
        )
        return redirect(url_for("demo_bank.operation", operation_id=operation_id), 303)

    try:
        tokens = bank.client.finish(_as_client_pending(pending), query, dpop_key=dpop_key)
    except AuthorizationRefused as refused:
        return not_done(
            "denied",
            reason=refused.reason or ("declined" if refused.error == "access_denied" else None),
            message=None if refused.reason else refused.error,
        )
    except BankClientError as exc:
        return not_done("failed", message=str(exc))
    if tokens.sub != session.sub:
        # A link that someone else approved binds the customer's accounts to that person:
        # removing it undoes the bindings (docs/HOLDER-INTEGRITY.md).
        try:
            undone = bank.remove_wrong_links(tokens.authorization_details, tokens.sub)
        except BankClientError:
            undone = 0
        return not_done(
            "failed",
            message="approved by someone other than the signed-in customer"
            + ("; the link it made was removed" if undone else ""),
        )
    if tokens.id_token:
        bank.store.remember_id_token(session, tokens.id_token)
    if standing_row is not None:
        granted = _granted_standing(tokens)
        if granted is None or tokens.refresh_token is None:
            return not_done(
                "failed", message="the service did not grant an automatic top-up the bank can use"
            )
        bank.store.activate_standing(
            standing_row, refresh_token=tokens.refresh_token, granted=granted
        )
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


def _granted_standing(tokens: Tokens) -> dict[str, Any] | None:
    """The granted ``standing_funding`` entry, with the members the service adds."""
    for entry in tokens.authorization_details:
        if (
            entry.get("type") == "standing_funding"
            and isinstance(entry.get("standing_authorization_id"), str)
            and isinstance(entry.get("link_id"), str)
            and isinstance(entry.get("expires_at"), int)
        ):
            return entry
    return None


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
    requested = found.requested
    reason_text = None
    if found.reason:
        key = f"bank.reasons.{found.reason}"
        kept = requested.get("bounds")
        bounds: Mapping[str, Any] = kept if isinstance(kept, dict) else {}
        reason_text = (
            t(
                key,
                per_top_up=_entry_amount(bounds, "max_amount"),
                per_day=_entry_amount(bounds, "daily_amount"),
            )
            if t.has(key)
            else t("bank.reasons.generic")
        )
    ledger_text = _ledger_text(found)
    payee = bank.person(str(requested.get("payee", "")))
    for_transfer = requested.get("for_transfer")
    transfer_note = None
    if isinstance(for_transfer, dict):
        # An automatic top-up for a transfer: made for it, or (not executed) the transfer was
        # not sent.
        other = bank.person(str(for_transfer.get("payee", "")))
        transfer_note = t(
            "bank.operation.transfer_not_sent"
            if found.state != "executed"
            else "bank.operation.made_for",
            amount=amount_text(
                str(for_transfer.get("amount", "")), str(for_transfer.get("currency", ""))
            ),
            payee=other.display_name.get(language()) if other else "",
        )
    return _page(
        "bank/operation.html",
        operation=found,
        person=person,
        session=session,
        reason_text=reason_text,
        ledger_text=ledger_text,
        headline=_headline(found, ledger_text),
        automatic=bool(requested.get("automatic")),
        not_sent=transfer_note if found.state != "executed" else None,
        made_for=transfer_note if found.state == "executed" else None,
        # Readable in both languages (tojson would write a Japanese memo as \u escapes).
        requested_json=json.dumps(requested, indent=2, sort_keys=True, ensure_ascii=False),
        payee=payee,
    )


def _entry_amount(entry: Mapping[str, Any], member: str) -> str:
    """``{"max_amount": {"currency": "JPY", "amount": "30000"}}`` → "30,000 JPY" (30,000円)."""
    value = entry.get(member)
    if not isinstance(value, dict):
        return ""
    return amount_text(str(value.get("amount", "")), str(value.get("currency", "")))


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
    automatic = found.purpose == "funding" and bool(found.requested.get("automatic"))
    if state == "ledger_refused":
        headline = t("bank.result.ledger_refused", reason=_run_in(ledger_text or ""))
    elif automatic and state in ("executed", "denied"):
        headline = t(f"bank.result.auto_funding_{state}")
    elif state in ("executed", "ledger_silent", "ledger_not_asked"):
        headline = t(f"bank.result.{found.purpose}_{state}")
    else:
        headline = t(f"bank.operation.{found.purpose}_{found.outcome}")
    top_up = found.requested.get("top_up")
    if found.purpose == "transfer" and isinstance(top_up, dict):
        # The reverse waterfall ran first: say so before what happened to the transfer.
        amount = amount_text(str(top_up.get("amount", "")), str(top_up.get("currency", "")))
        return t("bank.result.topped_up_then", amount=amount, then=_run_in(headline))
    return headline


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
