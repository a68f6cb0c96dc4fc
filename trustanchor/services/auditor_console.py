"""The auditor console's login: a first-party client of this service, logging people in through
the same path every client uses.

People never authenticate to the console directly. The console is the built-in OAuth client
:data:`CLIENT_ID`; a login is a pushed authorization request (``services.par``), ``/authorize``,
the interaction pages (wallet login through a trust anchor, consent) and a redirect to the
console's callback with ``code``, ``state`` and ``iss``, where the console redeems the code with
the token service (``services.token``), exactly as an intermediary would.

The built-in client is a confidential ``private_key_jwt`` client. Its key is derived from the
service's cookie secret (HMAC with a context of its own), so every worker process holds the same
key, it survives restarts, and it never exists outside the service's memory: nobody on the
network can authenticate as the console, although the client itself is an ordinary registry
entry (registered at ``init`` and at every start). Its only redirect URI is the console's
callback on this service's own origin.

On the callback the console checks ``iss`` (RFC 9207) and that ``state`` equals the value bound
to the browser by a cookie when the login started; the PKCE verifier and the OpenID nonce are
derived from that state with the same secret, so nothing of a pending login is stored. From the
redeemed grant the console knows the holder; the holder's **auditor reference** is the holder
pseudonym the audit log's login entries carry. A console session (id stored as a digest) is
created for anyone who logs in; whether they may read anything is decided on every request by
looking the reference up among the designated auditors (``services.auditors``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import select

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
from trustanchor.services.container import Services
from trustanchor.storage import auditors_repo, grants_repo
from trustanchor.storage.auditors_repo import SessionAccess
from trustanchor.storage.clients_repo import upsert_row
from trustanchor.storage.database import Database
from trustanchor.storage.tables import clients

CLIENT_ID = "trustanchor-auditor-console"
CALLBACK_PATH = "/auditor/callback"
CLIENT_NAME = {"en": "trustanchor auditor console", "ja": "trustanchor 監査コンソール"}
SCOPE = "openid"
ASSERTION_LIFETIME = 60
_KEY_CONTEXT = "auditor-console-client-key"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class ConsoleUnavailable(Exception):
    """The console cannot log anyone in with this configuration (the message says why)."""


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
class ConsoleKey:
    private_key: PrivateKey
    alg: str
    kid: str

    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}


def console_key(settings: Settings, secrets: ServiceSecrets) -> ConsoleKey:
    """The console's client-authentication key: ES256 (or EdDSA when only that is allowed for
    client assertions), derived deterministically from the cookie secret."""
    seed = b64url_decode(keyed_digest(secrets.cookie, _KEY_CONTEXT))
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
        raise ConsoleUnavailable(
            "client_auth.allowed_algs must include ES256 or EdDSA for the auditor console"
        )
    return ConsoleKey(key, alg, thumbprint(public_jwk(key)))


def callback_url(settings: Settings) -> str:
    return settings.issuer + CALLBACK_PATH


def client_declaration(settings: Settings, secrets: ServiceSecrets) -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_name": dict(CLIENT_NAME),
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [console_key(settings, secrets).public_jwk()]},
        "redirect_uris": [callback_url(settings)],
        "grant_types": ["authorization_code"],
        "scope": SCOPE,
    }


def register_client(
    settings: Settings, db: Database, secrets: ServiceSecrets, *, now: int
) -> list[str]:
    """Register (or bring up to date) the built-in client; idempotent, and each change recorded
    as an ``operator_change`` like declared clients'. Messages for the operator: empty when
    nothing changed. A declared client may not take the reserved id (ValueError)."""
    if any(decl.get("client_id") == CLIENT_ID for decl in settings.clients):
        raise ValueError(
            f"client {CLIENT_ID!r}: this client id is reserved for the built-in auditor console; "
            "remove the [[clients]] table that declares it"
        )
    try:
        client, _ = client_from_declaration(
            client_declaration(settings, secrets),
            mode=settings.service.mode,
            base_dir=settings.config_dir,
        )
    except (ValueError, ConsoleUnavailable) as exc:
        return [f"auditor console not available: {exc}"]
    with db.transaction() as conn:
        existed = conn.execute(
            select(clients.c.client_id).where(clients.c.client_id == CLIENT_ID)
        ).first()
        written = upsert_row(conn, client, None, now)
        if written:  # like every client change: in the log, in the same transaction
            audit_trail.record(
                conn,
                audit_trail.operator_change(
                    at=now, what="client", id=CLIENT_ID, action="updated" if existed else "added"
                ),
            )
    return [f"client {CLIENT_ID} (built-in auditor console) written"] if written else []


def _assertion(services: Services, at: int) -> dict[str, list[str]]:
    """private_key_jwt client authentication for one in-process call (single-use jti)."""
    key = console_key(services.settings, services.secrets)
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": services.settings.issuer,
        "iat": at,
        "exp": at + ASSERTION_LIFETIME,
        "jti": services.randomness.token(16),
    }
    assertion = jws.sign(claims, key.private_key, alg=key.alg, headers={"kid": key.kid})
    return {
        "client_id": [CLIENT_ID],
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
    holder_ref: str


def _derived(services: Services, purpose: str, state: str) -> str:
    """The PKCE verifier and nonce of a login, from its state: 43 base64url characters."""
    return keyed_digest(services.secrets.cookie, "auditor-console", purpose, state)


def begin_login(services: Services, *, language: str) -> LoginStart:
    """Push the console's authorization request; where to send the browser, and the state."""
    at = services.clock.now()
    state = services.randomness.token(32)
    form = {
        **_assertion(services, at),
        "response_type": ["code"],
        "redirect_uri": [callback_url(services.settings)],
        "scope": [SCOPE],
        "state": [state],
        "nonce": [_derived(services, "nonce", state)],
        "code_challenge": [pkce.challenge_for(_derived(services, "pkce", state))],
        "code_challenge_method": [pkce.S256],
        # A fresh proof at a trust anchor for every console login, never single sign-on.
        "prompt": ["login"],
        "ui_locales": [language],
    }
    pushed = par.push(services, form, authorization=None, dpop_headers=[])
    query = urlencode({"client_id": CLIENT_ID, "request_uri": pushed.request_uri})
    return LoginStart(state, f"{services.endpoints.authorize}?{query}")


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise LoginRefused("malformed", f"{name} is repeated")
    return values[0] if values else None


def finish_login(
    services: Services, params: Mapping[str, list[str]], *, bound_state: str | None
) -> LoggedIn:
    """Check the authorization response and redeem its code; a new console session."""
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
        **_assertion(services, at),
        "grant_type": ["authorization_code"],
        "code": [code],
        "redirect_uri": [callback_url(services.settings)],
        "code_verifier": [_derived(services, "pkce", state)],
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
        if grant is None or grant.client_id != CLIENT_ID or grant.holder_id is None:
            raise LoginRefused(
                "code_refused", "the redeemed grant names no holder", state_matched=True
            )
        holder_ref = audit_trail.holder_pseudonym(services.secrets.pairwise, grant.holder_id)
        auditors_repo.create_session(
            conn,
            session_id,
            holder_ref,
            grant.id,
            now=at,
            expires_at=at + services.settings.auditor_console.session_lifetime,
        )
    return LoggedIn(session_id, holder_ref)


# --- sessions -------------------------------------------------------------------------------


def well_formed_session(session_id: str | None) -> bool:
    return session_id is not None and _SESSION_ID.fullmatch(session_id) is not None


def access(services: Services, session_id: str | None) -> SessionAccess | None:
    """The live session behind the cookie with its current designation, or None (no cookie,
    unknown, expired or ended)."""
    if not well_formed_session(session_id):
        return None
    assert session_id is not None
    with services.db.reader() as conn:
        return auditors_repo.session_access(conn, session_id, now=services.clock.now())


def csrf_token(services: Services, session_id: str) -> str:
    return keyed_digest(services.secrets.cookie, "auditor-console-csrf", session_id)


def csrf_ok(services: Services, session_id: str | None, sent: str | None) -> bool:
    if not well_formed_session(session_id) or not sent:
        return False
    assert session_id is not None
    return equal(sent, csrf_token(services, session_id))


def logout(services: Services, session_id: str | None) -> None:
    if not well_formed_session(session_id):
        return
    assert session_id is not None
    with services.db.transaction() as conn:
        auditors_repo.end_session(conn, session_id, now=services.clock.now())
