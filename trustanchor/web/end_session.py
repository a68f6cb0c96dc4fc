"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0) and the end of the SSO
session when a person logs out of one of the service's own pages.

``GET``/``POST /logout`` with ``id_token_hint``, ``logout_hint``, ``client_id``,
``post_logout_redirect_uri``, ``state``, ``ui_locales`` (``services.end_session`` decides);
``POST /logout/confirm`` is the confirmation page's form (CSRF token bound to the SSO cookie).
A client's POST arrives cross-site, and a ``SameSite=Lax`` cookie is not sent with it: without
the cookie the same parameters are asked again as a top-level GET (which carries it), so a
logout never reports "done" for a session it could not see. Every answer is ``no-store``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from trustanchor.oauth.params import FormData
from trustanchor.services import end_session
from trustanchor.services.container import Services
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.cookies import forget_cookie, session_cookie, sso_session_id
from trustanchor.web.forms import form_body, query
from trustanchor.web.rendering import language, render_page

blueprint = Blueprint("end_session", __name__)
blueprint.after_request(no_store)


def end_sso_session(response: BaseResponse) -> None:
    """Logout on a first-party page: end this browser's SSO session too and delete its cookie,
    so the next authorization request in this browser asks for a login again."""
    session_id = sso_session_id()
    if session_id is None:
        return
    services = current_services()
    end_session.end_browser_session(services, session_id)
    forget_cookie(response, services, session_cookie(services))


@blueprint.route(end_session.PATH, methods=["GET", "POST"])
def logout() -> Any:
    services = current_services()
    if request.method == "POST":
        params = form_body()
        if sso_session_id() is None:
            pairs = [(name, value) for name, values in params.items() for value in values]
            return redirect(f"{end_session.PATH}?{urlencode(pairs)}", code=303)
    else:
        params = query()
    session_id = sso_session_id()
    try:
        outcome = end_session.start(services, params, session_id=session_id)
    except end_session.LogoutRefused as exc:
        return _refused(services, exc, _locales(params))
    if isinstance(outcome, end_session.Confirm):
        assert session_id is not None  # a live session asks
        logout_request = outcome.request
        return render_page(
            "end_session/confirm.html",
            ui_locales=logout_request.ui_locales,
            client_name=logout_request.client.name(language(logout_request.ui_locales))
            if logout_request.client is not None
            else None,
            fields=logout_request.form_fields(),
            returns=logout_request.post_logout_redirect_uri is not None,
            csrf=end_session.csrf_token(services, session_id),
            action=end_session.CONFIRM_PATH,
        )
    return _finished(services, outcome)


@blueprint.post(end_session.CONFIRM_PATH)
def confirm() -> Any:
    services = current_services()
    decision = request.form.get("decision")
    if decision not in ("logout", "stay"):
        return render_page("error.html", status=400, message_key="errors.invalid_request")
    params = {
        name: request.form.getlist(name)
        for name in ("client_id", "post_logout_redirect_uri", "state", "ui_locales")
        if name in request.form
    }
    try:
        outcome = end_session.confirm(
            services,
            params,
            session_id=sso_session_id(),
            csrf=request.form.get("csrf"),
            log_out=decision == "logout",
        )
    except end_session.LogoutRefused as exc:
        if exc.reason == "csrf":
            return render_page("error.html", status=400, message_key="errors.csrf")
        return _refused(services, exc, _locales(params))
    return _finished(services, outcome)


def _finished(services: Services, outcome: end_session.Finished) -> BaseResponse:
    response: BaseResponse
    if outcome.redirect_url is not None:
        response = redirect(outcome.redirect_url, code=303)
    else:
        response = render_page(
            "end_session/done.html", ui_locales=outcome.ui_locales, logged_out=outcome.logged_out
        )
    if outcome.logged_out and sso_session_id() is not None:
        forget_cookie(response, services, session_cookie(services))
    return response


def _refused(
    services: Services, exc: end_session.LogoutRefused, locales: tuple[str, ...]
) -> Response:
    """An invalid request (§4): say so, redirect nowhere; a live session can still be ended here."""
    session_id = sso_session_id()
    live = end_session.has_live_session(services, session_id)
    return render_page(
        "end_session/refused.html",
        status=400,
        ui_locales=locales,
        reason=exc.reason,
        csrf=end_session.csrf_token(services, session_id) if live and session_id else None,
        action=end_session.CONFIRM_PATH,
    )


def _locales(params: FormData) -> tuple[str, ...]:
    values = params.get("ui_locales") or [""]
    return tuple(values[0].split()[:8]) if len(values) == 1 else ()
