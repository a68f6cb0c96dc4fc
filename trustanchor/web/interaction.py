"""The interaction pages: choose an anchor, present a smartphone credential, consent.

Each interaction is bound to the browser that started it (a cookie holding its id) and every form
carries a CSRF token derived from the interaction id with the cookie secret.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, redirect, request

from trustanchor.digests import equal, keyed_digest
from trustanchor.domain.assurance import level_from_acr
from trustanchor.services import consent, decisions, wallet_login
from trustanchor.services.container import Services
from trustanchor.web import operations
from trustanchor.web.blueprints import current_services
from trustanchor.web.cookies import INTERACTION_COOKIE, SESSION_COOKIE, set_cookie
from trustanchor.web.i18n import Translator
from trustanchor.web.qr import qr_svg
from trustanchor.web.rendering import language, render_page

blueprint = Blueprint("interaction", __name__, url_prefix="/interaction")


def reason_text(reason: str, language: str) -> str:
    """A login failure in plain words (anchor reason codes included)."""
    from trustanchor.anchors.sd_jwt_vc import REASONS

    t = Translator(language)
    if t.has(f"reasons.{reason}"):
        return t(f"reasons.{reason}")
    if language == "en" and reason in REASONS:
        return REASONS[reason]
    return t("reasons.generic")


def _csrf(services: Services, interaction_id: str) -> str:
    return keyed_digest(services.secrets.cookie, "csrf", interaction_id)


def _gone() -> Any:
    return render_page("error.html", status=400, message_key="errors.interaction_gone")


def _bound(interaction_id: str) -> bool:
    """This browser holds the interaction (and the id is one of ours: checked before any query)."""
    cookie = request.cookies.get(INTERACTION_COOKIE, "")
    return (
        wallet_login.well_formed_id(interaction_id)
        and bool(cookie)
        and equal(cookie, interaction_id)
    )


def _csrf_ok(services: Services, interaction_id: str) -> bool:
    sent = request.form.get("csrf", "")
    return bool(sent) and equal(sent, _csrf(services, interaction_id))


@blueprint.get("/<interaction_id>")
def show(interaction_id: str) -> Any:
    services = current_services()
    if not _bound(interaction_id):
        return _gone()
    try:
        login = wallet_login.login_view(services, interaction_id)
    except wallet_login.InteractionGone:
        return _gone()
    if login.state == "consent":
        return _consent_page(services, interaction_id)
    if login.state != "login":
        return _gone()
    g.lang = language(login.request.ui_locales)
    lang = g.lang
    t = Translator(lang)
    step_up = login.step_up
    return render_page(
        "login.html",
        step_up_notice=t("policy.step_up_notice", level=t(f"levels.{step_up.get('assurance')}"))
        if step_up
        else None,
        client_name=login.client.name(lang),
        anchors=login.anchors,
        failure=reason_text(login.failure, lang) if login.failure else None,
        csrf=_csrf(services, interaction_id),
        wallet_action=f"/interaction/{interaction_id}/wallet",
        cancel_action=f"/interaction/{interaction_id}/cancel",
    )


def _consent_page(services: Services, interaction_id: str) -> Any:
    try:
        view = consent.view(services, interaction_id)
    except consent.InteractionGone:
        return _gone()
    g.lang = language(view.request.ui_locales)
    lang = g.lang
    outcome = view.outcome
    return render_page(
        "consent.html",
        operations=operations.describe_all(services, outcome, lang) if outcome else [],
        policy_denied=outcome is not None and not outcome.allowed,
        step_up_text=operations.step_up_text(services, outcome, lang) if outcome else None,
        step_up_action=f"/interaction/{interaction_id}/step-up",
        client_name=view.client.name(lang),
        scopes=view.request.scope,
        anchor_name=view.anchor.name(lang) if view.anchor else None,
        level=level_from_acr(view.authentication.acr) or "low",
        claim_names=view.claim_names,
        csrf=_csrf(services, interaction_id),
        decide_action=f"/interaction/{interaction_id}/consent",
    )


@blueprint.post("/<interaction_id>/wallet")
def start_wallet(interaction_id: str) -> Any:
    services = current_services()
    if not _bound(interaction_id) or not _csrf_ok(services, interaction_id):
        return render_page("error.html", status=400, message_key="errors.csrf")
    try:
        started = wallet_login.begin(services, interaction_id, request.form.get("anchor", ""))
    except wallet_login.InteractionGone:
        return _gone()
    except wallet_login.AnchorUnavailable:
        # Suspended since the page was shown: back to the (now shorter) list of anchors.
        return redirect(f"/interaction/{interaction_id}", code=303)
    return redirect(f"/interaction/{interaction_id}/wallet/{started.transaction_id}", code=303)


@blueprint.get("/<interaction_id>/wallet/<transaction_id>")
def wallet_page(interaction_id: str, transaction_id: str) -> Any:
    services = current_services()
    if not _bound(interaction_id):
        return _gone()
    try:
        view = wallet_login.transaction_view(services, interaction_id, transaction_id)
    except wallet_login.InteractionGone:
        return _gone()
    except wallet_login.AnchorUnavailable:
        return redirect(f"/interaction/{interaction_id}", code=303)
    g.lang = language(view.request.ui_locales)
    t = Translator(g.lang)
    return render_page(
        "wallet.html",
        anchor_name=view.anchor.name(g.lang),
        qr_svg=qr_svg(view.wallet_url, title=t("wallet.qr_title")),
        wallet_url=view.wallet_url,
        status_url=f"/interaction/{interaction_id}/status",
        next_url=f"/interaction/{interaction_id}",
        csrf=_csrf(services, interaction_id),
        cancel_action=f"/interaction/{interaction_id}/cancel",
    )


@blueprint.get("/<interaction_id>/status")
def status(interaction_id: str) -> Any:
    services = current_services()
    if not _bound(interaction_id):
        return jsonify({"done": True, "state": "gone"})
    return jsonify(wallet_login.status(services, interaction_id))


@blueprint.post("/<interaction_id>/consent")
def decide(interaction_id: str) -> Any:
    services = current_services()
    if not _bound(interaction_id) or not _csrf_ok(services, interaction_id):
        return render_page("error.html", status=400, message_key="errors.csrf")
    decision = request.form.get("decision")
    if decision not in ("approve", "deny"):
        return render_page("error.html", status=400, message_key="errors.invalid_request")
    try:
        outcome = consent.decide(
            services,
            interaction_id,
            approve=decision == "approve",
            session_id=request.cookies.get(SESSION_COOKIE),
        )
    except consent.InteractionGone:
        return _gone()
    except decisions.BindingConflict:
        # An account was bound to someone else between the decision and its effect: nothing
        # was written; the page again shows the (now refused) operation.
        return render_page("error.html", status=409, message_key="errors.account_conflict")
    response = redirect(outcome.redirect_url, code=303)
    response.delete_cookie(INTERACTION_COOKIE, path="/")
    if outcome.new_session:
        set_cookie(
            response,
            services,
            SESSION_COOKIE,
            outcome.new_session,
            max_age=services.settings.interaction.session_lifetime,
        )
    return response


@blueprint.post("/<interaction_id>/step-up")
def step_up(interaction_id: str) -> Any:
    """The decision asked for a stronger login: back to the anchor list, limited to anchors
    that can give it."""
    services = current_services()
    if not _bound(interaction_id) or not _csrf_ok(services, interaction_id):
        return render_page("error.html", status=400, message_key="errors.csrf")
    try:
        consent.step_up(services, interaction_id)
    except consent.InteractionGone:
        return _gone()
    return redirect(f"/interaction/{interaction_id}", code=303)


@blueprint.post("/<interaction_id>/cancel")
def cancel(interaction_id: str) -> Any:
    services = current_services()
    if not _bound(interaction_id) or not _csrf_ok(services, interaction_id):
        return render_page("error.html", status=400, message_key="errors.csrf")
    try:
        url = consent.cancel(services, interaction_id)
    except consent.InteractionGone:
        return _gone()
    response = redirect(url, code=303)
    response.delete_cookie(INTERACTION_COOKIE, path="/")
    return response
