"""What every page of the demo parties' app shares: the DemoSite, the language (``?lang=``, then
the ``demo_lang`` cookie, then Accept-Language), the translator over the demo's own catalogs
(``trustanchor/demo/catalogs/<lang>/*.toml``), template helpers and security headers.

Blueprints (bank, ledger, wallet) use :func:`demo_site` and :func:`translator`; templates get
``t``, ``lang``, ``other_lang`` and the ``money`` / ``when`` filters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request

from trustanchor.demo.site import DemoSite
from trustanchor.web.i18n import LANGUAGES, Translator, choose

CATALOGS = Path(__file__).parent / "catalogs"
LANG_COOKIE = "demo_lang"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "form-action 'self' {service}; frame-ancestors 'none'; base-uri 'none'"
)


def demo_site() -> DemoSite:
    site: DemoSite = current_app.extensions["demo_site"]
    return site


def language() -> str:
    value = g.get("demo_lang")
    return value if isinstance(value, str) else "en"


def translator() -> Translator:
    value = g.get("demo_translator")
    if isinstance(value, Translator):
        return value
    return Translator(language(), CATALOGS)


def money(amount: str | None, currency: str | None = None) -> str:
    """``1200000`` → ``1,200,000 JPY`` (decimal text kept exact, never through float)."""
    if not amount:
        return ""
    whole, dot, fraction = amount.partition(".")
    grouped = f"{int(whole):,}" if whole.isdigit() else whole
    text = grouped + (dot + fraction if dot else "")
    return f"{text} {currency}" if currency else text


def when(epoch: int | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _choose_language() -> None:
    explicit = request.args.get("lang")
    lang = choose(
        explicit,
        request.cookies.get(LANG_COOKIE),
        (),
        [value for value, _ in request.accept_languages],
    )
    g.demo_lang = lang
    g.demo_translator = Translator(lang, CATALOGS)
    g.demo_remember_lang = explicit in LANGUAGES


def _after(response: Response) -> Response:
    if g.get("demo_remember_lang"):
        response.set_cookie(
            LANG_COOKIE,
            language(),
            max_age=365 * 24 * 3600,
            path="/",
            samesite="Lax",
            secure=demo_site().parties_url.startswith("https://"),
            httponly=True,
        )
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP.format(service=demo_site().service_url))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response


def lang_url(other: str) -> str:
    """This page in the other language. After a POST (a form answered with a page) the part's
    home page instead; query parameters are dropped (a callback's code never lands in a link)."""
    if request.method == "GET":
        return f"{request.path}?lang={other}"
    part = request.path.strip("/").split("/")[0]
    return f"/{part}/?lang={other}" if part else f"/?lang={other}"


def _template_context() -> dict[str, Any]:
    lang = language()
    other = "en" if lang == "ja" else "ja"
    return {
        "t": translator(),
        "lang": lang,
        "other_lang": other,
        "lang_url": lang_url(other),
        "site": demo_site(),
    }


def install(app: Flask) -> None:
    app.before_request(_choose_language)
    app.after_request(_after)
    app.context_processor(_template_context)
    app.add_template_filter(money, "money")
    app.add_template_filter(when, "when")
