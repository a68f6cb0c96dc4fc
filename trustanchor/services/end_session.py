"""Ending a browser's single sign-on session: logout on the service's own pages, and the
end-session endpoint of OpenID Connect RP-Initiated Logout 1.0.

The SSO session (``sessions``, the ``ta_session`` cookie holding its secret) is what lets a later
authorization request in the same browser skip the login. It ends

- when the person logs out of one of the service's own pages (``/my``, ``/auditor``):
  :func:`end_browser_session`;
- at the end-session endpoint (:data:`PATH`, GET or POST), where a client sends the browser
  (RP-Initiated Logout 1.0 §2): :func:`start`, then :func:`confirm` when the person is asked.

The endpoint ends the session without asking only when ``id_token_hint`` names this browser's
live session: an ID token this service signed (a published key of ours, ``typ`` JWT, our ``iss``;
an expired one is accepted, §2), whose ``sid`` is the session's and whose ``sub`` is the
session holder's pairwise subject at the client the token was issued to. Anything else (no hint,
a hint for another session or person) shows a confirmation page whose form carries a CSRF token
bound to the session cookie: no request the person did not confirm ends a session.

``post_logout_redirect_uri`` is followed only when it is exactly one of the
``post_logout_redirect_uris`` registered for the client that the hint (``azp``, else ``aud``) or
``client_id`` names, with ``state`` appended (§3). A hint that is not ours, a ``client_id`` that
disagrees with the hint, an unknown client, an unregistered URI, or a URI without a client to
check it against is refused: an error page, never a redirect (§4). ``logout_hint`` is accepted
and not used (§2 leaves it to the OP); it never skips the confirmation.

Logout ends the SSO session, not the grants: tokens already issued to clients stay valid until
they expire or are revoked. No audit entry is written: none of the log's kinds is a logout
(docs/AUDIT-FORMAT.md), and an endpoint anyone may call must not be a way to grow the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection

from trustanchor.digests import equal, keyed_digest
from trustanchor.domain.clients import Client
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.oauth.authorization_request import UI_LOCALES
from trustanchor.oauth.authorization_response import redirect_with
from trustanchor.oauth.errors import InvalidRequest
from trustanchor.oauth.jwt_tokens import ID_TOKEN_TYP
from trustanchor.oauth.pairwise import pairwise_subject
from trustanchor.oauth.params import FormData, single
from trustanchor.oauth.redirect_uri import MAX_URI_LENGTH
from trustanchor.services.container import Services
from trustanchor.storage import sessions_repo
from trustanchor.storage.sessions_repo import SsoSession

PATH = "/logout"
CONFIRM_PATH = "/logout/confirm"
ID_TOKEN_ALGS = ("ES256", "EdDSA")
# The SSO cookie's secret (base64url); anything else is not looked up.
_SESSION_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")


class LogoutRefused(Exception):
    """The logout request is not valid (RP-Initiated Logout 1.0 §4): show an error page, redirect
    nowhere. ``reason``: ``malformed`` (a repeated or over-long parameter), ``invalid_hint`` (not
    an ID token this service signed), ``unknown_client``, ``client_mismatch`` (``client_id`` is
    not the client the hint was issued to), ``no_client`` (``post_logout_redirect_uri`` without
    ``client_id`` or hint), ``unregistered_uri`` (not one of the client's
    ``post_logout_redirect_uris``), ``csrf`` (a confirmation not from this browser's page)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    """What a verified ``id_token_hint`` says: to which client it was issued, about whom (the
    pairwise ``sub``), and in which SSO session (``sid``, when it carries one)."""

    client_id: str
    sub: str
    sid: str | None


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    client: Client | None  # the client the hint or client_id names (they agree)
    post_logout_redirect_uri: str | None  # registered for ``client``, exactly
    state: str | None
    ui_locales: tuple[str, ...]
    hint: IdTokenHint | None = None

    def redirect_url(self) -> str | None:
        """Where to send the browser afterwards (§3), or None for our own page."""
        if self.post_logout_redirect_uri is None:
            return None
        return redirect_with(self.post_logout_redirect_uri, {"state": self.state})

    def form_fields(self) -> dict[str, str]:
        """What the confirmation form carries (checked again when it comes back)."""
        fields = {
            "client_id": self.client.client_id if self.client is not None else None,
            "post_logout_redirect_uri": self.post_logout_redirect_uri,
            "state": self.state,
            "ui_locales": " ".join(self.ui_locales) or None,
        }
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Confirm:
    """Ask the person; nothing has been ended."""

    request: LogoutRequest


@dataclass(frozen=True, slots=True)
class Finished:
    """``logged_out``: this browser has no SSO session any more (ended now, or there was none);
    False when the person chose to stay logged in. ``redirect_url``: to the client, or None."""

    logged_out: bool
    redirect_url: str | None
    ui_locales: tuple[str, ...] = ()  # for our own page, when there is no redirect


def parse(
    services: Services, params: FormData, *, at: int, with_hint: bool = True
) -> LogoutRequest:
    """Check a logout request's parameters (§2, §3, §4); :class:`LogoutRefused` if invalid."""
    try:
        token = (
            single(params, "id_token_hint", max_len=services.settings.limits.max_jws_bytes)
            if with_hint
            else None
        )
        single(params, "logout_hint", max_len=1024)  # accepted, unused (§2: the OP's choice)
        client_id = single(params, "client_id", max_len=128)
        uri = single(params, "post_logout_redirect_uri", max_len=MAX_URI_LENGTH)
        state = single(params, "state", max_len=1024)
        locales = single(params, "ui_locales", max_len=256)
    except InvalidRequest as exc:
        raise LogoutRefused("malformed", exc.description) from exc
    hint = verify_hint(services, token, at=at) if token is not None else None
    if hint is not None and client_id is not None and client_id != hint.client_id:
        raise LogoutRefused("client_mismatch", "client_id is not the client of the id_token_hint")
    named = hint.client_id if hint is not None else client_id
    client = services.clients.get(named) if named is not None else None
    if named is not None and client is None:
        raise LogoutRefused("unknown_client", "the client is not registered")
    if uri is not None:
        if client is None:
            raise LogoutRefused(
                "no_client", "post_logout_redirect_uri needs client_id or id_token_hint"
            )
        if uri not in client.post_logout_redirect_uris:
            raise LogoutRefused(
                "unregistered_uri", "post_logout_redirect_uri is not registered for the client"
            )
    ui_locales = tuple(
        tag for tag in (locales or "").split() if tag.split("-")[0].lower() in UI_LOCALES
    )
    return LogoutRequest(client, uri, state, ui_locales, hint)


def verify_hint(services: Services, token: str, *, at: int) -> IdTokenHint:
    """An ID token this service issued: a published key of ours, ``typ`` JWT, our ``iss``, a
    ``sub``, and the client in ``azp`` (which must be among ``aud``) or a single ``aud``.
    ``exp`` is not checked: an expired ID token still says who it was issued to (§2)."""
    try:
        parsed = jws.parse(
            token, max_bytes=services.settings.limits.max_jws_bytes, allowed_algs=ID_TOKEN_ALGS
        )
        jws.check_typ(parsed.header, ID_TOKEN_TYP)
        kid = parsed.header.get("kid")
        key = services.keys.verification_key(kid, at) if isinstance(kid, str) else None
        if key is None:
            raise LogoutRefused("invalid_hint", "not signed by a published key of this service")
        jws.verify_signature(parsed, key)
        claims = parsed.claims()
    except JoseError as exc:
        raise LogoutRefused("invalid_hint", exc.reason) from exc
    if claims.get("iss") != services.settings.issuer:
        raise LogoutRefused("invalid_hint", "issued by someone else")
    sub, aud, azp, sid = (claims.get(name) for name in ("sub", "aud", "azp", "sid"))
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not audiences or not all(isinstance(a, str) for a in audiences):
        raise LogoutRefused("invalid_hint", "no audience")
    if azp is not None:
        if not isinstance(azp, str) or azp not in audiences:
            raise LogoutRefused("invalid_hint", "azp is not among the audiences")
        client_id = azp
    elif len(audiences) == 1:
        client_id = audiences[0]
    else:
        raise LogoutRefused("invalid_hint", "several audiences and no azp")
    if not isinstance(sub, str) or not sub:
        raise LogoutRefused("invalid_hint", "no sub")
    if sid is not None and not isinstance(sid, str):
        raise LogoutRefused("invalid_hint", "sid is not a string")
    return IdTokenHint(client_id=client_id, sub=sub, sid=sid)


def names_session(services: Services, request: LogoutRequest, session: SsoSession) -> bool:
    """The request's hint names ``session``: the same ``sid``, and its ``sub`` is the session
    holder's pairwise subject at the hinted client."""
    hint, client = request.hint, request.client
    if hint is None or client is None or hint.sid is None or session.sid is None:
        return False
    subject = pairwise_subject(
        services.secrets.pairwise, client.sector_identifier, session.holder_id
    )
    return equal(hint.sid, session.sid) and equal(hint.sub, subject)


def _live(conn: Connection, session_id: str | None, at: int) -> SsoSession | None:
    if session_id is None or not _SESSION_SECRET.fullmatch(session_id):
        return None
    return sessions_repo.get(conn, session_id, now=at)


def start(services: Services, params: FormData, *, session_id: str | None) -> Confirm | Finished:
    """A logout request at the end-session endpoint. Ends the browser's session only when the
    hint names it; :class:`Confirm` when a live session needs the person's answer."""
    at = services.clock.now()
    request = parse(services, params, at=at)
    with services.db.transaction() as conn:
        session = _live(conn, session_id, at)
        if session is None:
            return Finished(True, request.redirect_url(), request.ui_locales)
        if not names_session(services, request, session):
            return Confirm(request)
        assert session_id is not None
        sessions_repo.end(conn, session_id, now=at)
    return Finished(True, request.redirect_url(), request.ui_locales)


def confirm(
    services: Services,
    params: FormData,
    *,
    session_id: str | None,
    csrf: str | None,
    log_out: bool,
) -> Finished:
    """The person's answer on the confirmation page (a form bound to this browser's session by
    its CSRF token). The carried client and URI are checked again."""
    if not csrf_ok(services, session_id, csrf):
        raise LogoutRefused("csrf", "the confirmation form does not belong to this browser")
    at = services.clock.now()
    request = parse(services, params, at=at, with_hint=False)
    if log_out:
        assert session_id is not None
        with services.db.transaction() as conn:
            sessions_repo.end(conn, session_id, now=at)
    return Finished(log_out, request.redirect_url(), request.ui_locales)


def has_live_session(services: Services, session_id: str | None) -> bool:
    with services.db.reader() as conn:
        return _live(conn, session_id, services.clock.now()) is not None


def csrf_token(services: Services, session_id: str) -> str:
    """The confirmation form's CSRF token: a MAC of the session cookie's secret, never stored
    and never equal to the stored digest."""
    return keyed_digest(services.secrets.cookie, "end-session-csrf", session_id)


def csrf_ok(services: Services, session_id: str | None, sent: str | None) -> bool:
    if session_id is None or not _SESSION_SECRET.fullmatch(session_id) or not sent:
        return False
    return equal(sent, csrf_token(services, session_id))


def end_browser_session(services: Services, session_id: str | None) -> bool:
    """End this browser's SSO session (logout on one of the service's own pages); True when one
    was open."""
    if session_id is None or not _SESSION_SECRET.fullmatch(session_id):
        return False
    with services.db.transaction() as conn:
        return sessions_repo.end(conn, session_id, now=services.clock.now())
