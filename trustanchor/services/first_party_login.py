"""Logging people in to this service's own pages: first-party clients of the service, going
through the same path every client uses.

People never authenticate to a page of ours directly. Each page family that needs to know who
is there (the auditor console, the holders' self-service page) is a built-in OAuth client,
described by a :class:`FirstPartyClient`; a login is a pushed authorization request
(``services.par``), ``/authorize``, the interaction pages (wallet login through a trust anchor,
consent) and a redirect to the client's callback with ``code``, ``state`` and ``iss``, where the
page redeems the code with the token service (``services.token``), exactly as an intermediary
would.

A built-in client is a confidential ``private_key_jwt`` client. Its key is derived from the
service's cookie secret (HMAC with a context of the client's own), so every worker process holds
the same key, it survives restarts, and it never exists outside the service's memory: nobody on
the network can authenticate as it, although the client itself is an ordinary registry entry
(registered at ``init`` and at every start). Its only redirect URI is its callback on this
service's own origin.

On the callback the page checks ``iss`` (RFC 9207) and that ``state`` equals the value bound to
the browser by a cookie when the login started; the PKCE verifier and the OpenID nonce are
derived from that state with the same secret, so nothing of a pending login is stored. The
redeemed grant names the holder; the client's :class:`SessionStore` records a session (id stored
as a digest) tied to that grant, so revoking the grant ends the session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import Connection, select

from trustanchor.config.settings import Settings
from trustanchor.digests import b64url_decode, equal, keyed_digest
from trustanchor.jose import jws
from trustanchor.jose.jwk import public_jwk, thumbprint
from trustanchor.oauth import pkce
from trustanchor.oauth.client_auth import JWT_BEARER_ASSERTION
from trustanchor.oauth.client_metadata import client_from_declaration
from trustanchor.oauth.errors import OAuthError
from trustanchor.secrets_store import ServiceSecrets
from trustanchor.services import audit_trail, par, token
from trustanchor.services.client_registry import upsert_row
from trustanchor.services.container import Services
from trustanchor.storage import grants_repo
from trustanchor.storage.database import Database
from trustanchor.storage.grants_repo import Grant
from trustanchor.storage.tables import clients

SCOPE = "openid"
ASSERTION_LIFETIME = 60
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class SessionStore(Protocol):
    """Where a first-party client keeps its sessions (one table per client)."""

    def create(
        self,
        services: Services,
        conn: Connection,
        session_id: str,
        grant: Grant,
        *,
        now: int,
        expires_at: int,
    ) -> None:
        """Record a new session for the holder of ``grant`` (id stored only as a digest)."""

    def end(self, conn: Connection, session_id: str, *, now: int) -> bool:
        """End the session if it is open; False when it was not."""


@dataclass(frozen=True, slots=True)
class FirstPartyClient:
    """One built-in client: its registry entry, where its callback is, how its secrets are
    separated from other clients' (``context``), and where its sessions live."""

    client_id: str
    callback_path: str
    client_name: Mapping[str, str]
    context: str  # domain separation of the derived key, PKCE verifier, nonce and CSRF token
    title: str  # for the operator's messages, e.g. "auditor console"
    session_lifetime: Callable[[Settings], int]
    sessions: SessionStore


class ClientUnavailable(Exception):
    """The client cannot log anyone in with this configuration (the message says why)."""


class LoginsBusy(Exception):
    """Too many logins on the service's own pages were started just now (per process: anyone
    may start one, and each is stored until the daily purge). The person tries again shortly."""


class LoginRefused(Exception):
    """The callback was refused. ``reason``: ``state_mismatch`` (no login, or another one, was
    started in this browser), ``wrong_issuer`` (``iss`` missing or not ours), ``declined`` (the
    person cancelled or denied), ``malformed`` (a repeated parameter, no code) or
    ``code_refused`` (the token service refused the code: used, expired, not ours)."""

    def __init__(self, reason: str, detail: str = "", *, state_matched: bool = False) -> None:
        self.reason = reason
        self.detail = detail
        # True once the response was recognised as this browser's login: that login is over.
        self.state_matched = state_matched
        super().__init__(f"{reason}: {detail}" if detail else reason)


# --- the built-in client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientKey:
    private_key: PrivateKey
    alg: str
    kid: str

    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}


def client_key(settings: Settings, secrets: ServiceSecrets, client: FirstPartyClient) -> ClientKey:
    """The client-authentication key: ES256 (or EdDSA when only that is allowed for client
    assertions), derived deterministically from the cookie secret and the client's context."""
    seed = b64url_decode(keyed_digest(secrets.cookie, f"{client.context}-client-key"))
    allowed = settings.client_auth.allowed_algs
    key: PrivateKey
    if "ES256" in allowed:
        alg = "ES256"
        key = ec.derive_private_key(
            int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1()
        )
    elif "EdDSA" in allowed:
        alg = "EdDSA"
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    else:
        raise ClientUnavailable(
            f"client_auth.allowed_algs must include ES256 or EdDSA for the {client.title}"
        )
    return ClientKey(key, alg, thumbprint(public_jwk(key)))


def callback_url(settings: Settings, client: FirstPartyClient) -> str:
    return settings.issuer + client.callback_path


def client_declaration(
    settings: Settings, secrets: ServiceSecrets, client: FirstPartyClient
) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "client_name": dict(client.client_name),
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [client_key(settings, secrets, client).public_jwk()]},
        "redirect_uris": [callback_url(settings, client)],
        "grant_types": ["authorization_code"],
        "scope": SCOPE,
    }


def register_client(
    settings: Settings,
    db: Database,
    secrets: ServiceSecrets,
    client: FirstPartyClient,
    *,
    now: int,
) -> list[str]:
    """Register (or bring up to date) the built-in client; idempotent, and each change recorded
    as an ``operator_change`` like declared clients'. Messages for the operator: empty when
    nothing changed. A declared client may not take the reserved id (ValueError)."""
    if any(decl.get("client_id") == client.client_id for decl in settings.clients):
        raise ValueError(
            f"client {client.client_id!r}: this client id is reserved for the built-in "
            f"{client.title}; remove the [[clients]] table that declares it"
        )
    try:
        registered, _ = client_from_declaration(
            client_declaration(settings, secrets, client),
            mode=settings.service.mode,
            base_dir=settings.config_dir,
        )
    except (ValueError, ClientUnavailable) as exc:
        return [f"{client.title} not available: {exc}"]
    with db.transaction() as conn:
        existed = conn.execute(
            select(clients.c.client_id).where(clients.c.client_id == client.client_id)
        ).first()
        written = upsert_row(conn, registered, None, now)
        if written:  # like every client change: in the log, in the same transaction
            audit_trail.record(
                conn,
                audit_trail.operator_change(
                    at=now,
                    what="client",
                    id=client.client_id,
                    action="updated" if existed else "added",
                ),
            )
    return [f"client {client.client_id} (built-in {client.title}) written"] if written else []


def _assertion(services: Services, client: FirstPartyClient, at: int) -> dict[str, list[str]]:
    """private_key_jwt client authentication for one in-process call (single-use jti)."""
    key = client_key(services.settings, services.secrets, client)
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": services.settings.issuer,
        "iat": at,
        "exp": at + ASSERTION_LIFETIME,
        "jti": services.randomness.token(16),
    }
    assertion = jws.sign(claims, key.private_key, alg=key.alg, headers={"kid": key.kid})
    return {
        "client_id": [client.client_id],
        "client_assertion_type": [JWT_BEARER_ASSERTION],
        "client_assertion": [assertion],
    }


# --- login ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginStart:
    state: str  # to bind to the browser (cookie)
    authorization_url: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    session_id: str  # to hand to the browser (cookie); stored only as a digest
    grant: Grant  # the login's grant; its holder_id is set


def _derived(services: Services, client: FirstPartyClient, purpose: str, state: str) -> str:
    """The PKCE verifier and nonce of a login, from its state: 43 base64url characters."""
    return keyed_digest(services.secrets.cookie, client.context, purpose, state)


def begin_login(services: Services, client: FirstPartyClient, *, language: str) -> LoginStart:
    """Push the client's authorization request; where to send the browser, and the state.
    Raises :class:`LoginsBusy` beyond the rate anyone may start such logins at."""
    at = services.clock.now()
    if not services.login_start_budget.admit(at, "login_start")[0]:
        raise LoginsBusy(client.client_id)
    state = services.randomness.token(32)
    form = {
        **_assertion(services, client, at),
        "response_type": ["code"],
        "redirect_uri": [callback_url(services.settings, client)],
        "scope": [SCOPE],
        "state": [state],
        "nonce": [_derived(services, client, "nonce", state)],
        "code_challenge": [pkce.challenge_for(_derived(services, client, "pkce", state))],
        "code_challenge_method": [pkce.S256],
        # A fresh proof at a trust anchor for every login, never single sign-on.
        "prompt": ["login"],
        "ui_locales": [language],
    }
    pushed = par.push(services, form, authorization=None, dpop_headers=[])
    query = urlencode({"client_id": client.client_id, "request_uri": pushed.request_uri})
    return LoginStart(state, f"{services.endpoints.authorize}?{query}")


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise LoginRefused("malformed", f"{name} is repeated")
    return values[0] if values else None


def finish_login(
    services: Services,
    client: FirstPartyClient,
    params: Mapping[str, list[str]],
    *,
    bound_state: str | None,
) -> LoggedIn:
    """Check the authorization response and redeem its code; a new session of the client."""
    issuer, state = _one(params, "iss"), _one(params, "state")
    error, code = _one(params, "error"), _one(params, "code")
    if not state or not bound_state or not equal(state, bound_state):
        raise LoginRefused("state_mismatch", "state does not match the login of this browser")
    if issuer is None or not equal(issuer, services.settings.issuer):
        raise LoginRefused("wrong_issuer", "iss is missing or not this service", state_matched=True)
    if error is not None:
        raise LoginRefused("declined", error[:64], state_matched=True)
    if not code:
        raise LoginRefused("malformed", "no code", state_matched=True)
    at = services.clock.now()
    form = {
        **_assertion(services, client, at),
        "grant_type": ["authorization_code"],
        "code": [code],
        "redirect_uri": [callback_url(services.settings, client)],
        "code_verifier": [_derived(services, client, "pkce", state)],
    }
    try:
        issued = token.token(services, form, authorization=None, dpop_headers=[])
        claims = services.access_tokens.verify(str(issued.body["access_token"]), at=at)
    except OAuthError as exc:
        raise LoginRefused("code_refused", exc.log_detail, state_matched=True) from exc
    session_id = services.randomness.token(32)
    with services.db.transaction() as conn:
        grant_id = grants_repo.grant_of_access_token(conn, claims.jti)
        grant = grants_repo.get_grant(conn, grant_id) if grant_id is not None else None
        if grant is None or grant.client_id != client.client_id or grant.holder_id is None:
            raise LoginRefused(
                "code_refused", "the redeemed grant names no holder", state_matched=True
            )
        client.sessions.create(
            services,
            conn,
            session_id,
            grant,
            now=at,
            expires_at=at + client.session_lifetime(services.settings),
        )
    return LoggedIn(session_id, grant)


# --- sessions -------------------------------------------------------------------------------


def well_formed_session(session_id: str | None) -> bool:
    return session_id is not None and _SESSION_ID.fullmatch(session_id) is not None


def csrf_token(services: Services, client: FirstPartyClient, session_id: str) -> str:
    """The CSRF token of a session: bound to it, never stored."""
    return keyed_digest(services.secrets.cookie, f"{client.context}-csrf", session_id)


def csrf_ok(
    services: Services, client: FirstPartyClient, session_id: str | None, sent: str | None
) -> bool:
    if not well_formed_session(session_id) or not sent:
        return False
    assert session_id is not None
    return equal(sent, csrf_token(services, client, session_id))


def logout(services: Services, client: FirstPartyClient, session_id: str | None) -> None:
    if not well_formed_session(session_id):
        return
    assert session_id is not None
    with services.db.transaction() as conn:
        client.sessions.end(conn, session_id, now=services.clock.now())
