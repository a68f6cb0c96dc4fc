"""Rendering pages in the person's language, with the helpers every template uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, g, make_response, render_template, request

from trustanchor.web.i18n import Translator, choose

LANG_COOKIE = "ta_lang"


def language(ui_locales: tuple[str, ...] = ()) -> str:
    explicit = request.args.get("lang")
    accept = [value for value, _ in request.accept_languages]
    return choose(explicit, request.cookies.get(LANG_COOKIE), ui_locales, accept)


def render_page(
    template: str, *, status: int = 200, ui_locales: tuple[str, ...] = (), **context: Any
) -> Response:
    lang = getattr(g, "lang", None) or language(ui_locales)
    t = Translator(lang)
    # A page answering a form (an error after a POST) has no address to show again in the other
    # language: asking for it would only answer "method not allowed".
    switch_url = (
        language_switch_url(t("common.switch_language_code")) if request.method == "GET" else None
    )
    body = render_template(template, t=t, lang=lang, switch_url=switch_url, **context)
    response = make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    if request.args.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


# Query parameters that say where a person is, and so survive a language switch: auditor paging
# and period, the link being removed. A few pages also keep what they are about, where asking again
# only shows the same page: the pushed request an /authorize error is about, and the wallet's
# response_code on the "continue on the other device" page (it is used up only by the browser
# that started the login, which never sees this page). Other protocol parameters never survive:
# a switch must not send a one-time code or state again.
_PLACE_PARAMETERS = ("before", "window", "link")
_PAGE_PARAMETERS = {
    "oauth.authorization": ("client_id", "request_uri"),
    "wallet.done": ("response_code",),
    "auditor.entries": ("kind", "outcome", "from", "to"),
}


def language_switch_url(target: str) -> str:
    """The same page in the other language (a relative URL: this page's path, the parameters
    that say which page it is, ``lang``)."""
    keep = (*_PLACE_PARAMETERS, *_PAGE_PARAMETERS.get(request.endpoint or "", ()))
    kept = [(name, value) for name, value in request.args.items(multi=True) if name in keep]
    return "?" + urlencode([*kept, ("lang", target)])
