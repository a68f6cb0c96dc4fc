"""The demo wallet's pages: a phone-styled web page holding the demo people's credentials.

Mounting (the demo parties' app does this)::

    from trustanchor.demo import wallet_pages
    app.register_blueprint(wallet_pages.blueprint, url_prefix="/wallet")
    wallet_pages.init_app(app, site)

:func:`init_app` stores the wallet's state in ``app.extensions["demo_wallet"]`` and the
:class:`~trustanchor.demo.site.DemoSite` in ``app.extensions["demo_site"]`` (unless the app put
one there already, which is then used). Without ``init_app`` the blueprint falls back to
``app.extensions["demo_site"]``.

Pages (all under the blueprint's prefix, ``/wallet``):

- ``GET /`` — whose phone this is (pick a person), their credentials as cards;
- ``POST /person`` — pick the person (CSRF); continues a pending request if there is one;
- ``GET /authorize?client_id=…&request_uri=…`` — the same-device link target: fetches and
  verifies the Request Object, matches its DCQL query and shows the confirm page: the payment
  the request asks to sign, if any (OpenID4VP ``transaction_data``: amount, payee, references),
  what is shared, and the other people of this phone, to answer as one of them instead (the
  request is fetched again for the person chosen);
- ``GET /scan`` + ``POST /scan`` — paste the URL read from the service's QR code;
- ``POST /respond`` — Confirm (presentation, then a 303 to the service's ``redirect_uri``) or
  Decline (``error=access_denied`` to the service, then a page saying so).

No JavaScript; every control is a labelled form control or button; texts in
``trustanchor/demo/catalogs/{en,ja}/wallet.toml``; language by ``?lang=``, then the
``demo_lang`` cookie, then Accept-Language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import requests
from flask import (
    Blueprint,
    Flask,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from trustanchor.digests import equal
from trustanchor.domain.money import MINOR_UNITS, MoneyError, parse_amount
from trustanchor.openid4vp.links import LinkError, parse_wallet_request_url
from trustanchor.web.i18n import Translator, choose

from .holder import (
    REASONS,
    HeldCredential,
    Holder,
    HolderError,
    HttpClient,
    Proposal,
    TransactionItem,
    TrustedVerifier,
)
from .issuer import IssuerError
from .people import Person, load_people
from .phone import held_credentials, service_verifier
from .phone import holder as phone_holder
from .site import DemoSite

CATALOGS = Path(__file__).parent / "catalogs"
EXTENSION = "demo_wallet"
SITE_EXTENSION = "demo_site"
LANG_COOKIE = "demo_lang"
PERSON_COOKIE = "demo_wallet_person"
CSRF_COOKIE = "demo_wallet_csrf"
MAX_PASTED_URL = 2048
LANGUAGES = ("en", "ja")
# Refusals of the pages themselves (the holder's own are holder.REASONS).
PAGE_REASONS: dict[str, str] = {
    "form_expired": "The form has expired. Reload the wallet and try again.",
    "unknown_person": "Choose whose phone this is first.",
    "incomplete_form": "The form was incomplete.",
    "credential_missing": "This wallet holds no readable credential.",
}

blueprint = Blueprint(
    "demo_wallet",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


class PageError(Exception):
    """A refusal by the wallet's pages; ``reason`` is a key of :data:`PAGE_REASONS`."""

    def __init__(self, reason: str, detail: str = "", *, status: int = 400) -> None:
        assert reason in PAGE_REASONS, reason
        self.reason = reason
        self.detail = detail
        self.status = status
        super().__init__(reason)


@dataclass(frozen=True)
class WalletState:
    site: DemoSite
    people: tuple[Person, ...]
    http_factory: Callable[[], HttpClient]
    allow_http_loopback: bool = True  # http only ever for loopback hosts (links.check_https_url)

    def verifier(self) -> TrustedVerifier:
        return service_verifier(
            self.site,
            {lang: Translator(lang, CATALOGS)("wallet.verifier_name") for lang in LANGUAGES},
        )

    def person(self, person_id: str | None) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)


def init_app(
    app: Flask, site: DemoSite, *, http_factory: Callable[[], HttpClient] | None = None
) -> None:
    """Give the wallet its site (and, for tests, another HTTP client than requests)."""
    app.extensions.setdefault(SITE_EXTENSION, site)
    app.extensions[EXTENSION] = WalletState(
        site=app.extensions[SITE_EXTENSION],
        people=tuple(p for p in load_people() if p.smartphone),  # whose phone this can be
        http_factory=http_factory or _requests_session,
    )


def _requests_session() -> HttpClient:
    session = requests.Session()
    session.trust_env = False  # the wallet talks to the service directly: no proxies, no .netrc
    return session


def _state() -> WalletState:
    state = current_app.extensions.get(EXTENSION)
    if state is None:
        site = current_app.extensions.get(SITE_EXTENSION)
        if site is None:
            raise RuntimeError("call trustanchor.demo.wallet_pages.init_app(app, site) first")
        init_app(current_app, site)
        state = current_app.extensions[EXTENSION]
    return cast(WalletState, state)


# -- pages ----------------------------------------------------------------------------------------


@blueprint.get("/")
def index() -> Response:
    state = _state()
    current = state.person(request.cookies.get(PERSON_COOKIE))
    cards: list[dict[str, Any]] = []
    problem = None
    if current is not None:
        try:
            cards = [_card(c, _language()) for c in _credentials(state, current)]
        except PageError as exc:
            problem = exc
    return _page(
        "wallet/index.html",
        person=current,
        people=state.people,
        cards=cards,
        problem=problem,
        pending=None,
    )


@blueprint.post("/person")
def choose_person() -> Response:
    state = _state()
    if not _csrf_ok():
        return _error_page(PageError("form_expired", status=403))
    chosen = state.person(request.form.get("person"))
    if chosen is None:
        return _error_page(PageError("unknown_person"))
    pending = _pending_from(request.form)
    target = _authorize_url(pending) if pending else _url("index")
    response = redirect(target, code=303)
    response.set_cookie(
        PERSON_COOKIE, chosen.id, max_age=30 * 86400, httponly=True, samesite="Lax", path="/"
    )
    return _no_store(response)


@blueprint.get("/authorize")
def authorize() -> Response:
    state = _state()
    pending = _pending_from(request.args)
    if pending is None:
        return _error_page(
            HolderError("invalid_link", "client_id and request_uri are required"), status=400
        )
    current = state.person(request.cookies.get(PERSON_COOKIE))
    if current is None:
        return _page(
            "wallet/index.html",
            person=None,
            people=state.people,
            cards=[],
            problem=None,
            pending=pending,
        )
    http = state.http_factory()
    try:
        holder = _holder(state, http)
        verified = holder.fetch_request(_invocation_url(pending))
        proposal = holder.propose(verified, _credentials(state, current))
    except (HolderError, PageError) as exc:
        return _error_page(exc, person=current)
    finally:
        _close(http)
    return _confirm_page(proposal, current, pending, state.people)


@blueprint.get("/scan")
def scan() -> Response:
    return _page("wallet/scan.html", error=None, pasted="")


@blueprint.post("/scan")
def scan_submit() -> Response:
    if not _csrf_ok():
        return _error_page(PageError("form_expired", status=403))
    pasted = request.form.get("url", "").strip()
    try:
        if len(pasted) > MAX_PASTED_URL:
            raise LinkError("too_long", "the link is too long")
        params = parse_wallet_request_url(pasted, allow_http_loopback=_state().allow_http_loopback)
    except LinkError as exc:
        return _page(
            "wallet/scan.html",
            status=400,
            error=HolderError("invalid_link", exc.detail),
            pasted=pasted[:MAX_PASTED_URL],
        )
    pending = {"client_id": params.client_id, "request_uri": params.request_uri}
    if params.request_uri_method is not None:
        pending["request_uri_method"] = params.request_uri_method
    return _no_store(redirect(_authorize_url(pending), code=303))


@blueprint.post("/respond")
def respond() -> Response:
    state = _state()
    if not _csrf_ok():
        return _error_page(PageError("form_expired", status=403))
    form = request.form
    current = state.person(form.get("person"))
    decision = form.get("decision")
    if current is None or decision not in ("confirm", "decline"):
        return _error_page(PageError("incomplete_form"))
    http = state.http_factory()
    try:
        holder = _holder(state, http)
        verified = holder.verify_request_object(
            form.get("request", ""),
            client_id=form.get("client_id", ""),
            wallet_nonce=form.get("wallet_nonce") or None,
        )
        if decision == "decline":
            holder.decline(verified)
            return _page(
                "wallet/result.html", outcome="declined", verifier=verified.verifier, person=current
            )
        redirect_uri = holder.present(holder.propose(verified, _credentials(state, current)))
    except (HolderError, PageError) as exc:
        return _error_page(exc, person=current)
    finally:
        _close(http)
    if redirect_uri is None:
        return _page(
            "wallet/result.html", outcome="sent", verifier=verified.verifier, person=current
        )
    return _no_store(redirect(redirect_uri, code=303))


@blueprint.after_request
def _security_headers(response: Response) -> Response:
    service = urlsplit(_state().site.service_url)
    # form-action: the Confirm POST answers with a redirect to the service, which Chromium
    # checks against form-action too.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action 'self' {service.scheme}://{service.netloc}"
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the request_uri stays out of Referers
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


# -- helpers --------------------------------------------------------------------------------------


def _holder(state: WalletState, http: HttpClient) -> Holder:
    return phone_holder(
        state.site, http, state.verifier(), allow_http_loopback=state.allow_http_loopback
    )


def _credentials(state: WalletState, person: Person) -> list[HeldCredential]:
    """The person's credentials, as prepare issued them (bound to their holder key)."""
    try:
        return held_credentials(state.site, person)
    except (IssuerError, ValueError) as exc:
        raise PageError(
            "credential_missing", "run python -m trustanchor.demo.prepare", status=500
        ) from exc


def _confirm_page(
    proposal: Proposal,
    person: Person,
    pending: Mapping[str, str],
    people: tuple[Person, ...],
) -> Response:
    lang = _language()
    verified = proposal.request
    payments = [_payment(item, lang) for item in verified.transaction_data]
    return _page(
        "wallet/confirm.html",
        person=person,
        others=[p for p in people if p.id != person.id],
        pending=pending,
        payments=payments,
        payment_texts=payment_texts(payments),
        verifier_name=verified.verifier.name(lang),
        matches=[
            {
                "issuer": match.credential.issuer_name_in(lang),
                "claims": [_claim(name, value) for name, value in match.disclosed],
            }
            for match in proposal.matches
        ],
        request_token=verified.token,
        client_id=verified.client_id,
        wallet_nonce=verified.wallet_nonce or "",
    )


def payment_texts(payments: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The confirm page's heading and signing note (catalog keys) for what it signs: a payment
    to someone ("Approve this payment?") as soon as one element is a transfer; a movement
    between the person's own accounts ("Approve this movement between your own accounts?")
    when every element is a funding movement or a standing authorization of them; standing
    authorizations only: "Approve these automatic movements?"."""
    kinds = {payment["kind"] for payment in payments}
    if not kinds or "transfer" in kinds:
        which = ""
    elif kinds == {"standing"}:
        which = "_standing"
    else:
        which = "_funding"
    return {
        "heading": f"wallet.payment.heading{which}",
        "signing": f"wallet.payment.signing{which}",
    }


def _payment(item: TransactionItem, lang: str) -> dict[str, Any]:
    """What the confirm page shows of one transaction data element (all of it, as text)."""
    element = item.element
    if item.type.endswith(":standing_funding:1"):
        return _standing(element, lang)
    shown: dict[str, Any] = {
        "kind": "funding" if item.type.endswith(":funding:1") else "transfer",
        "amount": _amount_text(str(element["amount"]), str(element["currency"]), lang),
    }
    if shown["kind"] == "transfer":
        creditor = element["creditor"]
        shown["payee"] = creditor["label"]
        shown["intermediary"] = creditor["intermediary"]
        shown["account"] = creditor["account_reference"]
        shown["reference"] = element.get("remittance_reference")
    else:
        # Both accounts named by the masked references the element carries, in the order the
        # money moves: from the bank account to the wallet, or back.
        shown["direction"] = element["direction"]
        shown["deposit"] = element["deposit_account_reference"]
        shown["wallet"] = element["wallet_account_reference"]
        t = Translator(lang, CATALOGS)
        deposit = t("wallet.payment.your_deposit", reference=shown["deposit"])
        wallet = t("wallet.payment.your_wallet", reference=shown["wallet"])
        into_wallet = shown["direction"] == "deposit_to_wallet"
        shown["from"], shown["to"] = (deposit, wallet) if into_wallet else (wallet, deposit)
    return shown


def _standing(element: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A standing authorization of funding in words: which way, at most how much each time and
    a day, for how many days ("Automatic top-ups: at most JPY 30,000 each, JPY 100,000 a day,
    for 30 days"), and the two masked accounts."""
    directions = list(element["directions"])
    which = directions[0] if len(directions) == 1 else "both"
    t = Translator(lang, CATALOGS)
    days = int(element["valid_days"])
    summary = t(
        "wallet.payment.standing_summary_one_day"
        if days == 1
        else "wallet.payment.standing_summary",
        what=t(f"wallet.payment.standing_{which}"),
        max=_bound_text(element["max_amount"], lang),
        daily=_bound_text(element["daily_amount"], lang),
        days=str(days),
    )
    return {
        "kind": "standing",
        "which": which,
        "summary": summary,
        "deposit": element["deposit_account_reference"],
        "wallet": element["wallet_account_reference"],
    }


def _bound_text(bound: Mapping[str, Any], lang: str) -> str:
    return _amount_text(str(bound["amount"]), str(bound["currency"]), lang)


def _amount_text(amount: str, currency: str, lang: str) -> str:
    """``5,000円`` in Japanese for yen, otherwise ``JPY 5,000`` (the consent page's style)."""
    try:
        parsed = parse_amount(amount, currency)
    except MoneyError:
        return f"{currency} {amount}"
    decimals = MINOR_UNITS[currency]
    whole, fraction = divmod(parsed.minor, 10**decimals)
    number = f"{whole:,}" + (f".{fraction:0{decimals}d}" if decimals else "")
    return number + "円" if lang == "ja" and currency == "JPY" else f"{currency} {number}"


def _card(credential: HeldCredential, lang: str) -> dict[str, Any]:
    return {
        "issuer": credential.issuer_name_in(lang),
        "vct": credential.vct,
        "expires_at": credential.expires_at,
        "claims": [_claim(n, v) for n, v in credential.disclosable_claims().items()],
    }


def _claim(name: str, value: Any) -> dict[str, str]:
    return {"name": name, "value": _claim_text(value)}


def _claim_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(_claim_text(v) for v in value.values())
    if isinstance(value, list):
        return ", ".join(_claim_text(v) for v in value)
    return str(value)


def _pending_from(values: Mapping[str, str]) -> dict[str, str] | None:
    """The wallet request being answered (the invocation URL's parameters), if any."""
    client_id, request_uri = values.get("client_id"), values.get("request_uri")
    if not client_id or not request_uri:
        return None
    pending = {"client_id": client_id, "request_uri": request_uri}
    method = values.get("request_uri_method")
    if method:
        pending["request_uri_method"] = method
    return pending


def _authorize_url(pending: Mapping[str, str]) -> str:
    return _url("authorize") + "?" + urlencode(pending)


def _invocation_url(pending: Mapping[str, str]) -> str:
    """The invocation URL as the service made it (only its query string matters)."""
    return request.base_url + "?" + urlencode(pending)


def _url(endpoint: str) -> str:
    return url_for(f"demo_wallet.{endpoint}")


def _close(http: HttpClient) -> None:
    close = getattr(http, "close", None)
    if callable(close):
        close()


def _language() -> str:
    accept = [value for value, _ in request.accept_languages]
    return choose(request.args.get("lang"), request.cookies.get(LANG_COOKIE), (), accept)


def _switch_url(target: str) -> str:
    """The current page in the other language (a POST result links the wallet's home)."""
    if request.method != "GET":
        return _url("index") + "?" + urlencode({"lang": target})
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + "?" + urlencode([*query, ("lang", target)])


def _csrf_token() -> tuple[str, bool]:
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing, False
    return _state().site.randomness.token(32), True


def _csrf_ok() -> bool:
    """Double-submit check: the form's token equals the wallet's cookie (constant time)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get("csrf", "")
    return bool(cookie) and bool(sent) and equal(cookie, sent)


def _page(template: str, *, status: int = 200, **context: Any) -> Response:
    lang = _language()
    t = Translator(lang, CATALOGS)
    csrf, fresh = _csrf_token()
    other = "ja" if lang == "en" else "en"
    body = render_template(
        template,
        t=t,
        lang=lang,
        csrf=csrf,
        reason_text=_reason_text,
        switch_url=_switch_url(other),
        switch_lang=other,
        **context,
    )
    response = make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    if fresh:
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="Strict", path="/")
    if request.args.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="Lax")
    return _no_store(response)


def _reason_text(t: Translator, reason: str) -> str:
    key = f"wallet.errors.{reason}"
    return t(key) if t.has(key) else REASONS.get(reason) or PAGE_REASONS.get(reason, reason)


def _error_page(
    exc: HolderError | PageError, *, status: int | None = None, person: Person | None = None
) -> Response:
    """A refusal, in words. Holder refusals are about the request (200: the wallet worked);
    page refusals carry their own status."""
    code = status if status is not None else getattr(exc, "status", 200)
    return _page("wallet/error.html", status=code, error=exc, person=person)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


__all__ = ["CATALOGS", "EXTENSION", "SITE_EXTENSION", "WalletState", "blueprint", "init_app"]
