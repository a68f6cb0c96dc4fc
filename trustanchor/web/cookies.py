"""Cookies: the browser's binding secret for its interactions, the login (SSO) session, and the
sessions of the first-party pages (limited to their path). HttpOnly, SameSite Lax (the
authorization request and the wallet's same-device return arrive as cross-site top-level
navigations), Secure on https issuers.

The binding cookie and the SSO session's cookie are named with the ``__Host-`` prefix where the
issuer is https, so no subdomain and no http page can set or shadow them: a session planted in a
victim's browser would log the victim in as the attacker (session fixation; attack session of
2026-12-07). The first-party pages' cookies are limited to their path, which ``__Host-`` forbids.
"""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response

from trustanchor.services.container import Services
from trustanchor.web.blueprints import current_services

INTERACTION_COOKIE = "ta_interaction"
SESSION_COOKIE = "ta_session"


def _secure(services: Services) -> bool:
    return services.settings.issuer.startswith("https://")


def interaction_cookie(services: Services) -> str:
    """The binding cookie's name: ``__Host-ta_interaction`` on https issuers."""
    return f"__Host-{INTERACTION_COOKIE}" if _secure(services) else INTERACTION_COOKIE


def session_cookie(services: Services) -> str:
    """The SSO session cookie's name: ``__Host-ta_session`` on https issuers."""
    return f"__Host-{SESSION_COOKIE}" if _secure(services) else SESSION_COOKIE


def sso_session_id() -> str | None:
    """The SSO session id this browser presents, if any."""
    return request.cookies.get(session_cookie(current_services())) or None


def browser_secret() -> str | None:
    """The binding secret this browser presents, if any."""
    return request.cookies.get(interaction_cookie(current_services())) or None


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
        secure=_secure(services),
        path=path,
    )


def forget_cookie(response: Response, services: Services, name: str, *, path: str = "/") -> None:
    """Delete a cookie with the attributes it was set with (browsers match on them)."""
    response.delete_cookie(name, path=path, httponly=True, samesite="Lax", secure=_secure(services))
