"""The holders' self-service page for account links (/my/): list your active links, remove one.

Login is the service's own login (``services.my_links``, a first-party client): a person proves
who they are at a trust anchor, and the session knows the holder that login resolved to. Cookies,
both HttpOnly, SameSite=Lax, limited to /my, Secure on https issuers:

- ``ta_my_login``: the state of the login this browser started (checked on the callback);
- ``ta_my``: the session id (stored server-side as a digest).

Every page re-checks the session (not expired, not ended, its grant not revoked). Removing a link
is a confirmation page (GET) and a POST with a CSRF token tied to the session; a link id that is
not one of the holder's active links gets the same 404 whatever the reason. Answers are
``no-store``; no script, no external assets.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, redirect, request
from markupsafe import Markup

from trustanchor.services import first_party_login, my_links
from trustanchor.services.container import Services
from trustanchor.services.payment_wording import format_amount
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.end_session import end_sso_session
from trustanchor.web.first_party_cookies import PageCookies
from trustanchor.web.rendering import language, render_page

blueprint = Blueprint("my_links", __name__, url_prefix="/my")

SESSION_COOKIE = "ta_my"
LOGIN_COOKIE = "ta_my_login"
COOKIE_PATH = "/my"
NOTICES = ("logged_out", "removed")


blueprint.after_request(no_store)


COOKIES = PageCookies(path=COOKIE_PATH, session=SESSION_COOKIE, login=LOGIN_COOKIE)


def _message(key: str, *, status: int, retry: bool = False) -> Response:
    return render_page("my_links/message.html", status=status, message_key=key, retry=retry)


def utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def local_time(seconds: int) -> Markup:
    """A ``<time>`` the page's script (static/local-time.js) rewrites in the viewer's time
    zone; the UTC text stays without script."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    return Markup('<time datetime="{}" data-local>{}</time>').format(iso, utc(seconds))


# --- login and logout -------------------------------------------------------------------------


@blueprint.get("/login")
def login_page() -> Any:
    services = current_services()
    if my_links.session(services, request.cookies.get(SESSION_COOKIE)) is not None:
        return redirect("/my/links", code=303)
    notice = request.args.get("notice")
    return render_page("my_links/login.html", notice=notice if notice == "logged_out" else None)


@blueprint.post("/login")
def start_login() -> Any:
    """Push the page's authorization request and send the browser to /authorize."""
    services = current_services()
    try:
        started = first_party_login.begin_login(services, my_links.CLIENT, language=language())
    except first_party_login.ClientUnavailable:
        return _message("my_links.unavailable", status=503)
    except first_party_login.LoginsBusy:
        busy = _message("my_links.busy", status=429, retry=True)
        busy.headers["Retry-After"] = "2"
        return busy
    return COOKIES.to_authorization(started.authorization_url, started.state)


@blueprint.get("/callback")
def callback() -> Any:
    services = current_services()
    params = {name: request.args.getlist(name) for name in request.args}
    try:
        logged_in = first_party_login.finish_login(
            services, my_links.CLIENT, params, bound_state=request.cookies.get(LOGIN_COOKIE)
        )
    except first_party_login.LoginRefused as exc:
        refused = _message(f"my_links.refused.{exc.reason}", status=400, retry=True)
        if exc.state_matched:
            # This browser's login is over either way. (Anything else leaves the cookie alone:
            # a forged callback must not break a login in progress.)
            COOKIES.forget(refused, LOGIN_COOKIE)
        return refused
    # A fresh session id at every login; any earlier session of this browser ends.
    first_party_login.logout(services, my_links.CLIENT, request.cookies.get(SESSION_COOKIE))
    response = redirect("/my/links", code=303)
    COOKIES.forget(response, LOGIN_COOKIE)
    COOKIES.set(response, SESSION_COOKIE, logged_in.session_id, max_age=my_links.SESSION_LIFETIME)
    return response


@blueprint.post("/logout")
def logout() -> Any:
    services = current_services()
    session_id = request.cookies.get(SESSION_COOKIE)
    if not first_party_login.csrf_ok(
        services, my_links.CLIENT, session_id, request.form.get("csrf")
    ):
        return _message("errors.csrf", status=400)
    first_party_login.logout(services, my_links.CLIENT, session_id)
    response = redirect("/my/login?notice=logged_out", code=303)
    COOKIES.forget(response, SESSION_COOKIE)
    end_sso_session(response)  # the next authorization request in this browser logs in again
    return response


# --- the links --------------------------------------------------------------------------------


def _csrf(services: Services) -> str:
    return first_party_login.csrf_token(
        services, my_links.CLIENT, request.cookies.get(SESSION_COOKIE, "")
    )


def _row(view: my_links.LinkView) -> dict[str, Any]:
    return {
        "id": view.id,
        "deposit": view.deposit_label,
        "wallet": view.wallet_label,
        "intermediaries": ", ".join(view.intermediaries),
        "since": local_time(view.since),
        "flagged": view.needs_reverification,
    }


@blueprint.get("/links")
def links_page() -> Any:
    services = current_services()
    holder = my_links.session(services, request.cookies.get(SESSION_COOKIE))
    if holder is None:
        return COOKIES.to_login()
    lang = language()
    views = my_links.links_of(services, holder.holder_id, language=lang)
    standing = my_links.standing_of(services, holder.holder_id, language=lang)
    notice = request.args.get("notice")
    return render_page(
        "my_links/links.html",
        links=[
            _row(view) | {"standing": [_standing_row(s, lang) for s in standing.get(view.id, [])]}
            for view in views
        ],
        notice=notice if notice in ("removed", "stopped") else None,
        csrf=_csrf(services),
    )


def _standing_row(view: my_links.StandingView, lang: str) -> dict[str, Any]:
    return {
        "id": view.id,
        "intermediary": view.intermediary,
        "directions": list(view.directions),
        "max_amount": format_amount(view.max_amount, lang),
        "daily_amount": format_amount(view.daily_amount, lang),
        "since": local_time(view.since),
        "until": local_time(view.until),
        "movements": [
            {
                "at": local_time(m.at),
                "direction": m.direction,
                "amount": format_amount(m.amount, lang),
            }
            for m in view.movements
        ],
    }


@blueprint.post("/standing/stop")
def stop_standing() -> Any:
    """The holder ends a standing authorization: the intermediary can no longer move money
    automatically over the link (movement tokens already minted stop being active)."""
    services = current_services()
    session_id = request.cookies.get(SESSION_COOKIE)
    holder = my_links.session(services, session_id)
    if holder is None:
        return COOKIES.to_login()
    if not first_party_login.csrf_ok(
        services, my_links.CLIENT, session_id, request.form.get("csrf")
    ):
        return _message("errors.csrf", status=400)
    ids = request.form.getlist("standing")
    if len(ids) != 1 or not my_links.stop_standing(services, holder.holder_id, ids[0]):
        return _message("my_links.standing.not_found", status=404)
    return redirect("/my/links?notice=stopped", code=303)


@blueprint.get("/links/remove")
def confirm_removal() -> Any:
    """What removing this link means, with the button that does it."""
    services = current_services()
    holder = my_links.session(services, request.cookies.get(SESSION_COOKIE))
    if holder is None:
        return COOKIES.to_login()
    view = my_links.link_of(
        services, holder.holder_id, request.args.get("link", ""), language=language()
    )
    if view is None:
        return _message("my_links.not_found", status=404)
    return render_page("my_links/confirm.html", link=_row(view), csrf=_csrf(services))


@blueprint.post("/links/remove")
def remove() -> Any:
    services = current_services()
    session_id = request.cookies.get(SESSION_COOKIE)
    holder = my_links.session(services, session_id)
    if holder is None:
        return COOKIES.to_login()
    if not first_party_login.csrf_ok(
        services, my_links.CLIENT, session_id, request.form.get("csrf")
    ):
        return _message("errors.csrf", status=400)
    link_ids = request.form.getlist("link")
    if len(link_ids) != 1 or not my_links.remove(services, holder.holder_id, link_ids[0]):
        return _message("my_links.not_found", status=404)
    return redirect("/my/links?notice=removed", code=303)
