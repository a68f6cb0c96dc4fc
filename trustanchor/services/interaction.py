"""The interaction seam: one parked authorization request between ``/authorize`` and its answer.

The protocol engine does not know how people authenticate. ``/authorize`` *parks* the request
here; a login method (the wallet login today; certificate and upstream-OpenID-Provider logins
beside it) ends in :func:`login_finished`; a policy decision may ask for a stronger login
(:func:`step_up_asked`, back to ``login``); consent ends it (:func:`consent_finished`), or the
person gives up or does not recognise the login (:func:`abandoned`). Every transition is one
conditional UPDATE, so a double submit or two racing wallets give one outcome::

    park ─▶ login ──login_finished──▶ consent ──consent_finished──▶ done | denied
              ▲                         │
              └──────step_up_asked──────┘        login | consent ──abandoned──▶ denied

**The browser that started it finishes it.** Parking hands out (or reuses) a *browser secret*,
a random value only the starting browser holds (its binding cookie); the interaction stores its
digest. :func:`open_bound` refuses an interaction to any request that does not present the
secret, so the interaction id in a URL, a screenshot or a log opens nothing. Forms carry
:func:`csrf_token`, a keyed MAC of the secret (never the secret or its stored digest). Neither
appears in a URL.

**Where the login came from.** ``login_via`` is ``"anchor"`` for a login performed in this
interaction and ``"sso"`` for one taken over from the browser's SSO session at ``/authorize``.
An SSO session never satisfies a step-up by itself: the policy decision sees an SSO login as not
fresh (:attr:`Interaction.fresh_login`).

**Where the login's answer arrived.** ``login_device`` is ``"this"`` when the answer of the
login transaction reached the browser holding the interaction (an upstream provider's callback
in it, or the same-device return of the wallet or card app, :func:`answer_returned`), and
``"other"`` while it came only from another device (a QR code answered from a phone, noticed by
the status poll). A protocol cannot tell a person scanning their own screen from a QR code
relayed from an attacker's browser, so only a login answered in this browser starts an SSO
session at consent (:attr:`Interaction.login_here`; docs/HOLDER-INTEGRITY.md, "Relay").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection

from trustanchor.digests import equal, keyed_digest, secret_digest
from trustanchor.domain.identity import Authentication
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.services.container import Services
from trustanchor.storage import interactions_repo

State = Literal["login", "consent", "done", "denied"]
LoginVia = Literal["anchor", "sso"]
# Where a login's answer arrived: in this interaction's browser, or only on another device.
LoginDevice = Literal["this", "other"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43,128}")
BROWSER_SECRET_BYTES = 32
_CSRF_CONTEXT = "interaction-csrf"


class InteractionRefused(Exception):
    """A page request about an interaction that cannot go on. ``reason`` is one word of the
    pages' refusal vocabulary; the web layer maps it to one page in one place."""

    reason = "interaction_gone"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail


class InteractionGone(InteractionRefused):
    """Unknown, expired, finished, or not in the state this step needs."""

    reason = "interaction_gone"


class NotThisBrowser(InteractionRefused):
    """The request does not carry the secret of the browser that started the interaction (or
    the form's CSRF token is not the one derived from it)."""

    reason = "not_this_browser"


class AnchorUnavailable(InteractionRefused):
    """The chosen anchor cannot be used for this interaction (any more): the person goes back to
    the list of anchors."""

    reason = "anchor_unavailable"


class BindingConflict(InteractionRefused):
    """An account was bound to someone else between the decision and its effect."""

    reason = "account_conflict"


def well_formed_id(value: str) -> bool:
    """Interaction and transaction ids are our own base64url tokens. Anything else (a NUL byte,
    say, which PostgreSQL refuses in text) is unknown without asking the database."""
    return bool(_ID.fullmatch(value))


def well_formed_secret(value: str | None) -> bool:
    return value is not None and bool(_SECRET.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Interaction:
    """A parked authorization request, typed: the request parsed once, the finished
    authentication (once there is one) and the pending step-up (while there is one)."""

    id: str
    client_id: str
    state: State
    request: AuthorizationRequest
    authentication: Authentication | None
    step_up: Mapping[str, Any] | None
    login_via: LoginVia | None
    expires_at: int
    login_device: LoginDevice | None = None

    @property
    def fresh_login(self) -> bool:
        """The authentication was performed in this interaction (not taken from SSO)."""
        return self.login_via == "anchor"

    @property
    def login_here(self) -> bool:
        """The login was performed in this interaction and its answer reached this browser."""
        return self.login_via == "anchor" and self.login_device == "this"


def _typed(row: interactions_repo.InteractionRow) -> Interaction:
    return Interaction(
        id=row.id,
        client_id=row.client_id,
        state=row.state,  # type: ignore[arg-type]  # the repository only stores these four
        request=AuthorizationRequest.from_json(row.request),
        authentication=Authentication.from_json(row.authentication)
        if row.authentication is not None
        else None,
        step_up=row.step_up,
        login_via=row.login_via,  # type: ignore[arg-type]
        expires_at=row.expires_at,
        login_device=row.login_device if row.login_device in ("this", "other") else None,  # type: ignore[arg-type]
    )


# -- the browser secret ---------------------------------------------------------------------


def new_browser_secret(services: Services) -> str:
    return services.randomness.token(BROWSER_SECRET_BYTES)


def csrf_token(services: Services, browser_secret: str) -> str:
    """The forms' token: a keyed MAC of the browser secret, unlike its stored (plain) digest."""
    return keyed_digest(services.secrets.cookie, _CSRF_CONTEXT, browser_secret)


def csrf_ok(services: Services, browser_secret: str | None, sent: str | None) -> bool:
    if not well_formed_secret(browser_secret) or not sent:
        return False
    assert browser_secret is not None
    return equal(sent, csrf_token(services, browser_secret))


# -- reading ----------------------------------------------------------------------------------


def load(services: Services, interaction_id: str) -> Interaction:
    """The live interaction, whatever browser asks (for the wallet's side, which has no cookie
    of ours). Pages use :func:`open_bound`."""
    if not well_formed_id(interaction_id):
        raise InteractionGone(interaction_id)
    with services.db.reader() as conn:
        row = interactions_repo.get(conn, interaction_id, now=services.clock.now())
    if row is None:
        raise InteractionGone(interaction_id)
    return _typed(row)


def open_bound(services: Services, interaction_id: str, browser_secret: str | None) -> Interaction:
    """The live interaction, only for the browser holding its secret."""
    if not well_formed_id(interaction_id) or not well_formed_secret(browser_secret):
        raise NotThisBrowser(interaction_id)
    assert browser_secret is not None
    with services.db.reader() as conn:
        row = interactions_repo.get(conn, interaction_id, now=services.clock.now())
    if row is None:
        raise InteractionGone(interaction_id)
    if row.browser_digest is None or not equal(secret_digest(browser_secret), row.browser_digest):
        raise NotThisBrowser(interaction_id)
    return _typed(row)


def held_by(services: Services, interaction_id: str, browser_secret: str | None) -> bool:
    """Whether this browser holds the interaction (no exception: for the wallet's same-device
    return, where another device is an ordinary case)."""
    try:
        open_bound(services, interaction_id, browser_secret)
    except InteractionRefused:
        return False
    return True


# -- transitions ------------------------------------------------------------------------------


def park(
    conn: Connection,
    services: Services,
    client_id: str,
    request: AuthorizationRequest,
    *,
    browser_secret: str,
    sso_authentication: Authentication | None,
    at: int,
) -> str:
    """Park an authorization request for the browser holding ``browser_secret``; with the SSO
    session's authentication when it satisfies the request (the interaction starts at consent)."""
    interaction_id = services.randomness.token(24)
    interactions_repo.create(
        conn,
        interaction_id,
        client_id,
        request.to_json(),
        browser_digest=secret_digest(browser_secret),
        now=at,
        expires_at=at + services.settings.interaction.lifetime,
    )
    if sso_authentication is not None:
        interactions_repo.authenticated(
            conn, interaction_id, sso_authentication.to_json(), login_via="sso", now=at
        )
    return interaction_id


def login_finished(
    conn: Connection,
    interaction_id: str,
    authentication: Authentication,
    *,
    transaction_id: str,
    device: LoginDevice,
    at: int,
) -> bool:
    """A login method finished with the answer of ``transaction_id``, which arrived on
    ``device``: record who logged in, only while the interaction waits for a login. False when
    it did not (any more)."""
    return interactions_repo.authenticated(
        conn,
        interaction_id,
        authentication.to_json(),
        login_via="anchor",
        login_transaction=transaction_id,
        login_device=device,
        now=at,
    )


def answer_returned(conn: Connection, interaction_id: str, transaction_id: str) -> bool:
    """The same-device return of ``transaction_id`` reached the interaction's browser: its
    login, while still the current one, now counts as made here."""
    return interactions_repo.answer_reached_browser(conn, interaction_id, transaction_id)


def step_up_asked(
    conn: Connection, interaction_id: str, requirement: Mapping[str, Any], *, at: int
) -> bool:
    """Back to login for a stronger authentication; the earlier one stays: the new login must
    be of the same holder."""
    return interactions_repo.require_step_up(conn, interaction_id, dict(requirement), now=at)


def step_up_amended(
    conn: Connection, interaction_id: str, requirement: Mapping[str, Any], *, at: int
) -> bool:
    """Replace the pending step-up while the interaction still waits for a login (identity
    joining notes which credential the person may present again)."""
    return interactions_repo.amend_step_up(conn, interaction_id, dict(requirement), now=at)


def consent_finished(
    conn: Connection, interaction_id: str, *, approved: bool, at: int
) -> Interaction | None:
    """The person approved or denied (or the policy denied): exactly one outcome."""
    row = interactions_repo.finish(conn, interaction_id, "done" if approved else "denied", now=at)
    return None if row is None else _typed(row)


def abandoned(conn: Connection, interaction_id: str, *, at: int) -> Interaction | None:
    """The person gave up, or did not recognise the login shown at consent ("not you?")."""
    row = interactions_repo.abandon(conn, interaction_id, now=at)
    return None if row is None else _typed(row)
