"""The interaction pages: choose an anchor, present a smartphone credential, consent.

Every page opens its interaction through the seam (``services/interaction.py``) with the browser
secret from the binding cookie, so only the browser that started the interaction gets anywhere;
every form carries the CSRF token derived from that secret. Refusals come from the seam's one
vocabulary (:class:`~trustanchor.services.interaction.InteractionRefused`) and are turned into
pages in one place, :func:`refused`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, redirect, request
from werkzeug.wrappers import Response

from trustanchor.domain.assurance import level_from_acr
from trustanchor.services import (
    certificate_login,
    consent,
    interaction,
    login_choice,
    wallet_login,
)
from trustanchor.services.container import Services
from trustanchor.services.interaction import Interaction, InteractionRefused
from trustanchor.services.payment_wording import LoginState
from trustanchor.web import operations
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.cookies import (
    browser_secret,
    forget_cookie,
    interaction_cookie,
    session_cookie,
    set_cookie,
    sso_session_id,
)
from trustanchor.web.i18n import Translator
from trustanchor.web.qr import qr_svg
from trustanchor.web.rendering import language, render_page

blueprint = Blueprint("interaction", __name__, url_prefix="/interaction")
blueprint.after_request(no_store)

# The pages' refusal vocabulary: reason → (status, message key).
REFUSALS: dict[str, tuple[int, str]] = {
    "interaction_gone": (400, "errors.interaction_gone"),
    "not_this_browser": (400, "errors.interaction_gone"),
    "csrf": (400, "errors.csrf"),
    "account_conflict": (409, "errors.account_conflict"),
    "wallet_return": (400, "errors.wallet_return"),
    "certificate_return": (400, "errors.certificate_return"),
    # An upstream provider's answer in a browser that did not start the login (a relay?).
    "upstream_other_browser": (400, "errors.upstream_other_browser"),
    "too_many_attempts": (429, "errors.too_many_attempts"),
    # An in-person step-up asked through a client that is no branch counter terminal.
    "step_up_at_branch": (403, "errors.step_up_at_branch"),
}


class CsrfRefused(InteractionRefused):
    reason = "csrf"


@blueprint.app_errorhandler(InteractionRefused)
def refused(exc: InteractionRefused) -> Any:
    """Every refusal of the interaction pages (and of the wallet's same-device return), in one
    place. An anchor that became unavailable sends the person back to the (now shorter) list of
    anchors; the status poll answers JSON."""
    if isinstance(exc, interaction.AnchorUnavailable):
        interaction_id = request.view_args.get("interaction_id", "") if request.view_args else ""
        if interaction.well_formed_id(interaction_id):
            return redirect(f"/interaction/{interaction_id}", code=303)
    if request.endpoint == "interaction.status":
        return jsonify({"done": True, "state": "gone"})
    status, key = REFUSALS.get(exc.reason, REFUSALS["interaction_gone"])
    return render_page("error.html", status=status, message_key=key)


def reason_text(reason: str, language: str) -> str:
    """A login failure in plain words (anchor reason codes included)."""
    from trustanchor.anchors.sd_jwt_vc import REASONS

    t = Translator(language)
    if t.has(f"reasons.{reason}"):
        return t(f"reasons.{reason}")
    if language == "en" and reason in REASONS:
        return REASONS[reason]
    return t("reasons.generic")


def _open(interaction_id: str) -> Interaction:
    """The interaction, for this browser only."""
    return interaction.open_bound(current_services(), interaction_id, browser_secret())


def _open_form(interaction_id: str) -> Interaction:
    """The interaction for a form post: this browser, and the form's CSRF token."""
    services = current_services()
    secret = browser_secret()
    if not interaction.csrf_ok(services, secret, request.form.get("csrf")):
        raise CsrfRefused(interaction_id)
    return interaction.open_bound(services, interaction_id, secret)


def _csrf(services: Services) -> str:
    secret = browser_secret()
    assert secret is not None  # only called after _open succeeded
    return interaction.csrf_token(services, secret)


@blueprint.get("/<interaction_id>")
def show(interaction_id: str) -> Any:
    services = current_services()
    current = _open(interaction_id)
    if current.state == "consent":
        return _consent_page(services, current)
    if current.state != "login":
        raise interaction.InteractionGone(interaction_id)
    login = login_choice.login_view(services, current)
    g.lang = language(login.request.ui_locales)
    lang = g.lang
    step_up = login.step_up
    return render_page(
        "login.html",
        # Not a refusal: what the new login must be (the consent page said why).
        step_up_notice=operations.step_up_notice(services, step_up, lang) if step_up else None,
        client_name=login.client.name(lang),
        anchors=login.anchors,
        failure=reason_text(login.failure, lang) if login.failure else None,
        csrf=_csrf(services),
        # Each anchor's form posts to its kind's login method (services/login_choice.py).
        actions={
            kind: f"/interaction/{interaction_id}/{method}"
            for kind, method in login_choice.METHOD_OF_KIND.items()
        },
        cancel_action=f"/interaction/{interaction_id}/cancel",
    )


def _consent_page(services: Services, current: Interaction) -> Any:
    view = consent.view(services, current)
    g.lang = language(view.request.ui_locales)
    lang = g.lang
    outcome = view.outcome
    who = view.logged_in
    authentication = view.authentication
    login = LoginState(
        level=level_from_acr(authentication.acr) or "low",
        auth_time=authentication.auth_time,
        fresh=current.fresh_login,
        channel=authentication.channel,
    )
    described = (
        operations.describe_all(
            services, outcome, lang, operations.Viewer(authentication.holder_id, current.client_id)
        )
        if outcome
        else []
    )
    return render_page(
        "consent.html",
        operations=described,
        # A payment, funding movement or standing authorization leads the page, before who
        # logged in.
        payment_first=any(op.money for op in described),
        policy_denied=outcome is not None and not outcome.allowed,
        step_up=operations.step_up_view(services, outcome, lang, login, here=view.step_up_here)
        if outcome
        else None,
        anchor_set_name=operations.set_name(services, outcome.anchor_set_id, lang)
        if outcome is not None and outcome.allowed and outcome.anchor_set_id
        else None,
        # No "log in again" button where logging in again cannot help (an in-person step-up
        # through a client that is no counter terminal): the text sends the person to a branch.
        step_up_action=f"/interaction/{current.id}/step-up" if view.step_up_here else None,
        client_name=view.client.name(lang),
        scopes=view.request.scope,
        anchor_name=view.anchor.name(lang) if view.anchor else None,
        level=level_from_acr(view.authentication.acr) or "low",
        claim_names=view.claim_names,
        who_name=who.masked_name,
        who_reference=who.reference,
        from_sso=not current.fresh_login,
        not_me_action=f"/interaction/{current.id}/not-me",
        csrf=_csrf(services),
        decide_action=f"/interaction/{current.id}/consent",
    )


@blueprint.post("/<interaction_id>/wallet")
def start_wallet(interaction_id: str) -> Any:
    services = current_services()
    current = _open_form(interaction_id)
    started = wallet_login.begin(services, current, request.form.get("anchor", ""))
    return redirect(f"/interaction/{interaction_id}/wallet/{started.transaction_id}", code=303)


@blueprint.get("/<interaction_id>/wallet/<transaction_id>")
def wallet_page(interaction_id: str, transaction_id: str) -> Any:
    services = current_services()
    view = wallet_login.transaction_view(services, _open(interaction_id), transaction_id)
    g.lang = language(view.request.ui_locales)
    t = Translator(g.lang)
    return render_page(
        "wallet.html",
        anchor_name=view.anchor.name(g.lang),
        qr_svg=qr_svg(view.wallet_url, title=t("wallet.qr_title")),
        wallet_url=view.wallet_url,
        status_url=f"/interaction/{interaction_id}/status",
        next_url=f"/interaction/{interaction_id}",
        csrf=_csrf(services),
        cancel_action=f"/interaction/{interaction_id}/cancel",
    )


@blueprint.post("/<interaction_id>/certificate")
def start_certificate(interaction_id: str) -> Any:
    services = current_services()
    current = _open_form(interaction_id)
    started = certificate_login.begin(services, current, request.form.get("anchor", ""))
    return redirect(f"/interaction/{interaction_id}/certificate/{started.transaction_id}", code=303)


@blueprint.get("/<interaction_id>/certificate/<transaction_id>")
def certificate_page(interaction_id: str, transaction_id: str) -> Any:
    services = current_services()
    view = certificate_login.transaction_view(services, _open(interaction_id), transaction_id)
    g.lang = language(view.request.ui_locales)
    t = Translator(g.lang)
    return render_page(
        "certificate.html",
        anchor_name=view.anchor.name(g.lang),
        enrolment="signature" in view.certificates,
        qr_svg=qr_svg(view.link, title=t("certificate.qr_title")),
        certificate_url=view.link,
        status_url=f"/interaction/{interaction_id}/status",
        next_url=f"/interaction/{interaction_id}",
        csrf=_csrf(services),
        cancel_action=f"/interaction/{interaction_id}/cancel",
    )


@blueprint.get("/<interaction_id>/status")
def status(interaction_id: str) -> Any:
    return jsonify(login_choice.status(current_services(), _open(interaction_id)))


@blueprint.post("/<interaction_id>/consent")
def decide(interaction_id: str) -> Any:
    services = current_services()
    current = _open_form(interaction_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "deny"):
        return render_page("error.html", status=400, message_key="errors.invalid_request")
    outcome = consent.decide(
        services,
        current,
        approve=decision == "approve",
        session_id=sso_session_id(),
    )
    response = redirect(outcome.redirect_url, code=303)
    if outcome.new_session:
        set_cookie(
            response,
            services,
            session_cookie(services),
            outcome.new_session,
            max_age=services.settings.interaction.session_lifetime,
        )
    return response


@blueprint.post("/<interaction_id>/step-up")
def step_up(interaction_id: str) -> Any:
    """The decision asked for a stronger login: back to the anchor list, limited to anchors
    that can give it. Refused (``step_up_at_branch``) when the login must be made in person and
    this request's client is no branch counter terminal."""
    consent.step_up(current_services(), _open_form(interaction_id))
    return redirect(f"/interaction/{interaction_id}", code=303)


@blueprint.post("/<interaction_id>/cancel")
def cancel(interaction_id: str) -> Any:
    return _abandon(interaction_id, not_me=False)


@blueprint.post("/<interaction_id>/not-me")
def not_me(interaction_id: str) -> Any:
    """ "Not you? Start again": the person does not recognise the login shown at consent."""
    return _abandon(interaction_id, not_me=True)


def _abandon(interaction_id: str, *, not_me: bool) -> Response:
    services = current_services()
    abandoned = consent.cancel(
        services,
        _open_form(interaction_id),
        not_me=not_me,
        session_id=sso_session_id(),
    )
    response = redirect(abandoned.redirect_url, code=303)
    if abandoned.session_ended:
        forget_cookie(response, services, session_cookie(services))
    return response


def bind_browser(response: Response, services: Services, secret: str) -> None:
    """Give the browser its binding cookie (``/authorize`` does, when it parks a request)."""
    set_cookie(
        response,
        services,
        interaction_cookie(services),
        secret,
        max_age=services.settings.interaction.lifetime,
    )
