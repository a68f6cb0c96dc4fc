"""Cookies: the browser's binding secret for its interactions, the login (SSO) session, and the
sessions of the first-party pages (limited to their path). HttpOnly, SameSite Lax (the
authorization request and the wallet's same-device return arrive as cross-site top-level
navigations), Secure on https issuers.

The binding cookie is named with the ``__Host-`` prefix where the issuer is https, so no
subdomain and no http page can set or shadow it.
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
