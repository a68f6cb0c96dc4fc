"""The authorization endpoint: accept only pushed requests, park the request as an interaction,
and decide whether the person must log in (prompt, max_age, acr_values, an existing session).

The protocol engine does not know how people authenticate: it parks the request in the
interaction seam (``services/interaction.py``) for the browser that asked, and resumes it in
``services/consent.py`` with a finished :class:`Authentication`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustanchor.domain.assurance import level_from_acr
from trustanchor.domain.identity import Authentication
from trustanchor.oauth import authorization_response
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.oauth.errors import InvalidRequest, InvalidRequestUri, OAuthError
from trustanchor.oauth.params import FormData, single
from trustanchor.services import interaction
from trustanchor.services.container import Services
from trustanchor.storage import par_repo, sessions_repo


class AuthorizeErrorPage(Exception):
    """An error that must be shown to the person, not redirected: the redirect target is unknown
    or unverified at this point."""

    def __init__(self, error: OAuthError) -> None:
        self.error = error
        super().__init__(error.error)


@dataclass(frozen=True, slots=True)
class Parked:
    interaction_id: str
    browser_secret: str  # the binding cookie's value: new, or the one this browser already held


@dataclass(frozen=True, slots=True)
class Redirect:
    url: str


def start(
    services: Services,
    query: FormData,
    *,
    session_id: str | None,
    browser_secret: str | None = None,
) -> Parked | Redirect:
    """``browser_secret`` is the binding cookie this browser already holds (several
    interactions of one browser share it); a new one is made when it has none."""
    at = services.clock.now()
    try:
        client_id = single(query, "client_id", required=True, max_len=128)
        request_uri = single(query, "request_uri", max_len=256)
    except OAuthError as exc:
        raise AuthorizeErrorPage(exc) from exc
    if request_uri is None:
        raise AuthorizeErrorPage(
            InvalidRequest("this service accepts only pushed authorization requests (request_uri)")
        )
    assert client_id is not None
    client = services.clients.get(client_id)
    if client is None:
        raise AuthorizeErrorPage(InvalidRequest("unknown client"))
    with services.db.transaction() as conn:
        stored = par_repo.consume(conn, request_uri, client_id, now=at)
        if stored is None:
            raise AuthorizeErrorPage(
                InvalidRequestUri("the request_uri is unknown, expired or already used")
            )
        request = AuthorizationRequest.from_json(stored)
        session = sessions_repo.get(conn, session_id, now=at) if session_id else None
        authentication = _reusable(request, session.authentication if session else None, at)
        if client.branch is not None:
            # A branch counter terminal's browser is shared by every customer of the counter:
            # its requests never take over an SSO session (services/counter_login.py).
            authentication = None
        if "none" in request.prompt:
            error = "login_required" if authentication is None else "consent_required"
            return Redirect(
                authorization_response.error(
                    request.redirect_uri,
                    error=error,
                    description=None,
                    state=request.state,
                    issuer=services.settings.issuer,
                )
            )
        if not interaction.well_formed_secret(browser_secret):
            browser_secret = interaction.new_browser_secret(services)
        assert browser_secret is not None
        interaction_id = interaction.park(
            conn,
            services,
            client_id,
            request,
            browser_secret=browser_secret,
            sso_authentication=authentication,
            at=at,
        )
    return Parked(interaction_id, browser_secret)


def _reusable(
    request: AuthorizationRequest, session: dict[str, Any] | None, at: int
) -> Authentication | None:
    """The session's authentication if it satisfies prompt, max_age and acr_values.

    ``max_age=0`` is effectively ``prompt=login`` (OpenID Connect Core 1.0 errata, issue #993):
    otherwise a login in the same second would count as "no time elapsed"."""
    if session is None or "login" in request.prompt or "select_account" in request.prompt:
        return None
    authentication = Authentication.from_json(session)
    if request.max_age is not None and (
        request.max_age == 0 or at - authentication.auth_time > request.max_age
    ):
        return None
    if request.acr_values and authentication.acr not in request.acr_values:
        return None
    if level_from_acr(authentication.acr) is None:
        return None
    return authentication
