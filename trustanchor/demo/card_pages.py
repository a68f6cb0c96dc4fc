"""The demo phone's My Number Card app (``/card``) and the demo JPKI CA's CRLs (``/jpki``).

The app answers the service's certificate login (:mod:`trustanchor.demo.card_app`):

- ``GET /card/`` — whose phone this is (the same choice as the wallet's: one phone), the two
  certificates on their card, the demo PINs, a link to paste a QR code's URL;
- ``POST /card/person`` — pick the person (CSRF); continues a pending request;
- ``GET /card/authorize?client_id=…&request_uri=…`` — the same-device link target
  (``[interaction] certificate_link_base``): fetch and verify the request, show who asks and
  which certificates, ask for the PIN(s);
- ``GET``/``POST /card/scan`` — paste the URL read from the login page's QR code;
- ``POST /card/respond`` — sign and send (then a 303 to the service's ``redirect_uri``), or
  decline.

``GET /jpki/crl/auth.crl`` and ``/jpki/crl/sign.crl``: the CRL of each demo CA, signed afresh
at every request (the anchor declaration in config/demo.toml names these URLs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from cryptography import x509
from flask import Blueprint, abort, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from trustanchor.digests import equal
from trustanchor.openid4vp.links import LinkError, parse_wallet_request_url

from .branch import COOKIE as BRANCH_COOKIE
from .branch_pages import is_terminal
from .card_app import (
    CARD_REASONS,
    DEMO_AUTH_PIN,
    DEMO_SIGN_PASSWORD,
    CardApp,
    CardError,
    CertificateRequest,
    Pins,
    check_pins,
    local_name,
)
from .holder import REASONS
from .jpki_ca import CRL_MEDIA_TYPE, Card, JpkiError, crl_for, load_card, read_utf8_string
from .page_context import demo_site, language, translator
from .people import Person, load_people
from .phone import service_verifier
from .wallet_pages import PERSON_COOKIE

blueprint = Blueprint("demo_card", __name__)
crl_blueprint = Blueprint("demo_jpki", __name__)
CSRF_COOKIE = "demo_card_csrf"
MAX_PASTED_URL = 2048
ATTRIBUTE_NAMES = {
    "1.2.392.200149.8.5.5.1": "name",
    "1.2.392.200149.8.5.5.3": "gender",
    "1.2.392.200149.8.5.5.4": "birthdate",
    "1.2.392.200149.8.5.5.5": "address",
}


def card_holders() -> tuple[Person, ...]:
    """The people whose phone this can be and who have a card."""
    return tuple(p for p in load_people() if p.smartphone and p.card is not None)


def _current() -> Person | None:
    chosen = request.cookies.get(PERSON_COOKIE)
    return next((p for p in card_holders() if p.id == chosen), None)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the app talks to the service directly: no proxies, no .netrc
    return session


def _app(session: requests.Session) -> CardApp:
    site = demo_site()
    t = translator()
    verifier = service_verifier(site, {language(): t("card.verifier_name")})
    return CardApp(
        http=session,
        clock=site.clock,
        randomness=site.randomness,
        verifiers=[verifier],
        allow_http_loopback=True,  # http only ever for loopback hosts
    )


def _card(person: Person) -> Card:
    return load_card(demo_site().keys_dir, person)


# -- pages ----------------------------------------------------------------------------------------


@blueprint.get("/")
def index() -> Response:
    person = _current()
    certificates: list[dict[str, Any]] = []
    problem = None
    if person is not None:
        try:
            certificates = _certificates_view(_card(person))
        except JpkiError:
            problem = "card_missing"
    return _page(
        "card/index.html", person=person, certificates=certificates, problem=problem, pending=None
    )


@blueprint.post("/person")
def choose_person() -> Response:
    if not _csrf_ok():
        return _error("form_expired", status=403)
    chosen = next((p for p in card_holders() if p.id == request.form.get("person")), None)
    if chosen is None:
        return _error("unknown_person")
    pending = _pending(request.form)
    target = "/card/authorize?" + urlencode(pending) if pending else "/card/"
    response = redirect(target, code=303)
    response.set_cookie(
        PERSON_COOKIE, chosen.id, max_age=30 * 86400, httponly=True, samesite="Lax", path="/"
    )
    return _no_store(response)


@blueprint.get("/authorize")
def authorize() -> Response:
    pending = _pending(request.args)
    if pending is None:
        return _error("invalid_link", "client_id and request_uri are required")
    if is_terminal(request.cookies.get(BRANCH_COOKIE)):
        # A bank branch's counter terminal: its card reader answers, not the phone's app.
        return _no_store(redirect("/branch/reader?" + urlencode(pending), code=303))
    person = _current()
    if person is None:
        return _page("card/index.html", person=None, certificates=[], problem=None, pending=pending)
    session = _session()
    try:
        app = _app(session)
        verified = app.fetch_certificate_request("/card/authorize?" + urlencode(pending))
        _card(person)
    except CardError as exc:
        return _error(exc.reason, exc.detail, person=person)
    except JpkiError:
        return _error("card_missing", person=person)
    finally:
        session.close()
    return _pin_page(verified, person)


@blueprint.get("/scan")
def scan() -> Response:
    return _page("card/scan.html", error=None, pasted="")


@blueprint.post("/scan")
def scan_submit() -> Response:
    if not _csrf_ok():
        return _error("form_expired", status=403)
    pasted = request.form.get("url", "").strip()
    try:
        if len(pasted) > MAX_PASTED_URL:
            raise LinkError("too_long", "the link is too long")
        params = parse_wallet_request_url(pasted, allow_http_loopback=True)
    except LinkError as exc:
        return _page("card/scan.html", status=400, error=exc.detail, pasted=pasted[:MAX_PASTED_URL])
    pending = {"client_id": params.client_id, "request_uri": params.request_uri}
    return _no_store(redirect("/card/authorize?" + urlencode(pending), code=303))


@blueprint.post("/respond")
def respond() -> Response:
    if not _csrf_ok():
        return _error("form_expired", status=403)
    form = request.form
    person = next((p for p in card_holders() if p.id == form.get("person")), None)
    decision = form.get("decision")
    if person is None or decision not in ("sign", "decline"):
        return _error("incomplete_form")
    session = _session()
    try:
        app = _app(session)
        verified = app.verify_certificate_request(
            form.get("request", ""), client_id=form.get("client_id", "")
        )
        if decision == "decline":
            app.decline_request(verified)
            return _page("card/result.html", outcome="declined", person=person)
        pins = Pins(form.get("pin", ""), form.get("password", ""))
        try:
            check_pins(verified, pins)  # the card refuses to sign: ask again
        except CardError as exc:
            return _pin_page(verified, person, pin_error=exc.reason, status=400)
        redirect_uri = app.answer(verified, _card(person), pins)
    except CardError as exc:
        return _error(exc.reason, exc.detail, person=person)
    except JpkiError:
        return _error("card_missing", person=person)
    finally:
        session.close()
    if redirect_uri is None:
        return _page("card/result.html", outcome="sent", person=person)
    return _no_store(redirect(redirect_uri, code=303))


@crl_blueprint.get("/crl/<name>.crl")
def crl(name: str) -> Response:
    site = demo_site()
    try:
        der = crl_for(site.keys_dir, name, load_people(), site.clock.now())
    except JpkiError:
        abort(503)
    if der is None:
        abort(404)
    response = make_response(der, 200)
    response.headers["Content-Type"] = CRL_MEDIA_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response


# -- helpers --------------------------------------------------------------------------------------


def _pin_page(
    verified: CertificateRequest,
    person: Person,
    *,
    pin_error: str | None = None,
    status: int = 200,
) -> Response:
    lang = language()
    t = translator()
    return _page(
        "card/confirm.html",
        status=status,
        person=person,
        client_name=local_name(verified.client_name, lang, verified.client_id),
        anchor_name=local_name(verified.anchor_name, lang, ""),
        service_name=verified.verifier.name(lang) or t("card.verifier_name"),
        certificates=verified.certificates,
        request_token=verified.token,
        client_id=verified.client_id,
        pin_error=pin_error,
        demo_pin=DEMO_AUTH_PIN,
        demo_password=DEMO_SIGN_PASSWORD,
    )


def _certificates_view(card: Card) -> list[dict[str, Any]]:
    views = []
    for profile, certificate in card.certificates.items():
        leaf = certificate.leaf
        attributes = []
        if profile == "signature":
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            for other in san.get_values_for_type(x509.OtherName):
                name = ATTRIBUTE_NAMES.get(other.type_id.dotted_string)
                if name is not None:
                    attributes.append({"name": name, "value": read_utf8_string(other.value)})
        views.append(
            {
                "profile": profile,
                "issuer": leaf.issuer.rfc4514_string(),
                "serial": f"{leaf.serial_number:X}",
                "not_after": leaf.not_valid_after_utc.strftime("%Y-%m-%d"),
                "attributes": attributes,
            }
        )
    return views


def _pending(values: Mapping[str, str]) -> dict[str, str] | None:
    client_id, request_uri = values.get("client_id"), values.get("request_uri")
    if not client_id or not request_uri:
        return None
    return {"client_id": client_id, "request_uri": request_uri}


def _csrf_ok() -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get("csrf", "")
    return bool(cookie) and bool(sent) and equal(cookie, sent)


def reason_text(reason: str) -> str:
    t = translator()
    for key in (f"card.errors.{reason}", f"wallet.errors.{reason}"):
        if t.has(key):
            return t(key)
    return CARD_REASONS.get(reason) or REASONS.get(reason) or reason


def _page(template: str, *, status: int = 200, **context: Any) -> Response:
    existing = request.cookies.get(CSRF_COOKIE)
    csrf = existing if existing and len(existing) >= 32 else demo_site().randomness.token(32)
    context.setdefault("holders", card_holders())
    context.setdefault("switch_url", _switch_url())
    context.setdefault("demo_pin", DEMO_AUTH_PIN)
    context.setdefault("demo_password", DEMO_SIGN_PASSWORD)
    body = render_template(template, csrf=csrf, reason_text=reason_text, **context)
    response = make_response(body, status)
    if csrf != existing:
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="Strict", path="/card")
    return _no_store(response)


def _switch_url() -> str:
    """This page in the other language, its request kept (``/card/authorize?…`` must stay the
    same request); after a POST, the app's home."""
    other = "en" if language() == "ja" else "ja"
    if request.method != "GET":
        return "/card/?" + urlencode({"lang": other})
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + "?" + urlencode([*query, ("lang", other)])


def _error(
    reason: str, detail: str = "", *, status: int = 200, person: Person | None = None
) -> Response:
    return _page("card/error.html", status=status, reason=reason, detail=detail, person=person)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


__all__ = ["blueprint", "card_holders", "crl_blueprint"]
