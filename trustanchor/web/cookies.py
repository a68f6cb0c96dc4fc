"""Cookies: the browser's binding to an interaction, the login session, and the sessions of the
first-party pages (limited to their path). HttpOnly, SameSite Lax (the authorization request
arrives as a top-level navigation), Secure on https issuers."""

from __future__ import annotations

from werkzeug.wrappers import Response

from trustanchor.services.container import Services

INTERACTION_COOKIE = "ta_interaction"
SESSION_COOKIE = "ta_session"


def set_cookie(
    response: Response,
    services: Services,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=services.settings.issuer.startswith("https://"),
        path=path,
    )
