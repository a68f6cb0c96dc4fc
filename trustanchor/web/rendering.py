"""Rendering pages in the person's language, with the helpers every template uses."""

from __future__ import annotations

from typing import Any

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
    body = render_template(template, t=t, lang=lang, **context)
    response = make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    if request.args.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
