"""The demo eKYC bank's OpenID Provider: a real OpenID Connect provider (not a stub), built with
Authlib's server components and mounted in the demo parties' app under ``/ekyc-bank``. The
trustanchor service uses it as an upstream anchor of kind ``oidc`` (``demo-ekyc-bank`` in
config/demo.toml), the way it would use a bank's eKYC'd provider or the Digital Agency's JPKI
login app.

What it speaks, and why each piece is there:

- discovery (``<issuer>/.well-known/openid-configuration``) and its signing JWKS;
- authorization code flow only, PKCE with S256 required, ``nonce`` required, the exact
  registered redirect URI, RFC 9207 ``iss`` on every authorization response (against mix-up);
- pushed authorization requests (RFC 9126; optional for the client, one use per request_uri);
- ``private_key_jwt`` client authentication only: the service's client assertion is checked
  against the JWKS the service publishes for this provider, fetched at use time and cached;
  the assertion's ``aud`` may be the issuer or the token endpoint, each ``jti`` is used once;
- ID tokens signed ES256 with the key prepare.py makes (``keys/demo/ekyc-bank``), with
  ``nonce``, ``at_hash``, ``auth_time`` and ``acr``; pairwise subjects per redirect host;
- UserInfo with plain claims by scope and OpenID Connect for Identity Assurance
  ``verified_claims`` (trust framework ``jp_aml``) when the ``claims`` parameter asks for them.

The login page is the bank's own sign-in (demo credentials shown on it, clearly the upstream's:
trustanchor never sees them), followed by the bank's consent page. There is no provider session:
every authorization signs in again, so ``auth_time`` is always the moment of this login and
``max_age`` / ``prompt=login`` are always met. The acr value says how the bank proofed the
customer's identity (an eKYC check of the My Number Card's IC chip at account opening).

State (pending sign-ins, pushed requests, codes, tokens, used ``jti``s and nonces) lives in
memory, behind one lock, for the parties' single process; every one-time artefact is removed by
the same call that reads it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
    scope_to_list,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import OpenIDCode, UserInfoEndpoint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
)
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from trustanchor.demo.ekyc_customers import (
    SCOPE_CLAIMS,
    TRUST_FRAMEWORK,
    VERIFIED_CLAIMS,
    Customer,
    customer_by_login,
    load_customers,
)
from trustanchor.demo.page_context import demo_site, translator
from trustanchor.demo.site import DemoSite

log = logging.getLogger(__name__)

ISSUER_PATH = "/ekyc-bank"
ANCHOR_ID = "demo-ekyc-bank"  # the service's anchor declaration for this provider
CLIENT_ID = "trustanchor-demo"  # the service, as a relying party of the bank
KEY_GROUP, KEY_NAME = "ekyc-bank", "op-signing"  # keys/demo/ekyc-bank/op-signing.key.pem
ACR_EKYC = "https://demo-ekyc-bank/acr/ekyc-high"
SCOPES = ("openid", "profile", "address")
ID_TOKEN_ALG = "ES256"  # noqa: S105 (an algorithm name)
ASSERTION_ALGS = ("ES256", "RS256", "PS256")
PAR_URN = "urn:ietf:params:oauth:request_uri:"
PAR_LIFETIME = 90
PENDING_LIFETIME = 600  # a sign-in page left open longer starts again at the service
CODE_LIFETIME = 60
TOKEN_LIFETIME = 300
NONCE_MEMORY = 3600  # a nonce seen in an issued code is refused again for this long
LOGIN_ATTEMPTS = 5
JWKS_TTL = 300
JWKS_REFETCH_GAP = 10  # an unknown kid refetches the client's JWKS at most this often
JWKS_MAX_BYTES = 65536
JWKS_WARM_RETRY = 2  # seconds between background fetches until the client answers
ASSERTION_MAX_LIFETIME = 600
BROWSER_COOKIE = "ekyc_browser"
MAX_PARAM = 4096

blueprint = Blueprint("demo_ekyc", __name__)


# -- the registered client (the trustanchor service) ----------------------------------------------


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """A relying party of the bank: its exact redirect URI and where its public keys are."""

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    jwks_uri: str
    client_metadata: dict[str, Any] = field(default_factory=dict)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # the request must name its redirect URI

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope_to_list(scope) or [] if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "private_key_jwt"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"

    @property
    def sector(self) -> str:
        """The pairwise sector: the redirect URI's host (OpenID Connect Core 8.1)."""
        return urlsplit(self.redirect_uris[0]).hostname or ""


def service_client(site: DemoSite) -> RegisteredClient:
    """The trustanchor service as the bank registered it: its callback and upstream JWKS for
    this provider (``<service>/upstream/<anchor-id>/...``)."""
    return RegisteredClient(
        client_id=CLIENT_ID,
        client_name="trustanchor",
        redirect_uris=(site.service(f"/upstream/{ANCHOR_ID}/callback"),),
        jwks_uri=site.service(f"/upstream/{ANCHOR_ID}/jwks.json"),
    )


# -- what the flow carries ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """A customer who signed in to the bank in this authorization."""

    customer: Customer
    auth_time: int
    acr: str = ACR_EKYC


@dataclass(frozen=True)
class Subject:
    """The customer as one client sees them: pairwise ``sub`` and the claims the request asked
    for (the ``claims`` parameter's ``userinfo`` member)."""

    customer: Customer
    sub: str
    userinfo_request: dict[str, Any]


@dataclass
class Pending:
    """An authorization request shown to a browser: validated parameters, bound to the
    browser's cookie; after sign-in, who signed in."""

    params: dict[str, str]
    browser_digest: str
    expires_at: int
    sign_in: SignIn | None = None
    attempts: int = 0


@dataclass(frozen=True)
class IssuedCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    sign_in: SignIn
    code_challenge: str
    code_challenge_method: str
    claims_request: dict[str, Any]
    expires_at: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.sign_in.auth_time

    def get_acr(self) -> str:
        return self.sign_in.acr

    def get_amr(self) -> list[str]:
        return ["pwd"]


@dataclass(frozen=True)
class IssuedToken(TokenMixin):  # type: ignore[misc]
    access_token: str
    client: RegisteredClient
    subject: Subject
    scope: str
    issued_at: int
    expires_in: int
    now: Callable[[], int]

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.now() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> Subject:
        return self.subject

    def get_client(self) -> RegisteredClient:
        return self.client


class OpState:
    """Everything the provider remembers, behind one lock; one-time artefacts are taken (read
    and removed) by one call."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self.pending: dict[str, Pending] = {}
        self.pushed: dict[str, tuple[str, dict[str, str], int]] = {}
        self.codes: dict[str, IssuedCode] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.jtis: dict[str, int] = {}
        self.nonces: dict[str, int] = {}

    def _prune(self) -> None:
        now = self._now()
        self.pending = {k: v for k, v in self.pending.items() if v.expires_at > now}
        self.pushed = {k: v for k, v in self.pushed.items() if v[2] > now}
        self.codes = {k: v for k, v in self.codes.items() if v.expires_at > now}
        self.tokens = {k: v for k, v in self.tokens.items() if not v.is_expired()}
        self.jtis = {k: v for k, v in self.jtis.items() if v > now}
        self.nonces = {k: v for k, v in self.nonces.items() if v > now}

    def push(self, request_uri: str, client_id: str, params: dict[str, str]) -> None:
        with self._lock:
            self._prune()
            self.pushed[request_uri] = (client_id, params, self._now() + PAR_LIFETIME)

    def take_pushed(self, request_uri: str) -> tuple[str, dict[str, str]] | None:
        with self._lock:
            entry = self.pushed.pop(request_uri, None)
        if entry is None or entry[2] <= self._now():
            return None
        return entry[0], entry[1]

    def add_pending(self, pending_id: str, pending: Pending) -> None:
        with self._lock:
            self._prune()
            self.pending[pending_id] = pending

    def get_pending(self, pending_id: str) -> Pending | None:
        with self._lock:
            pending = self.pending.get(pending_id)
            if pending is not None and pending.expires_at <= self._now():
                del self.pending[pending_id]
                return None
            return pending

    def take_pending(self, pending_id: str) -> Pending | None:
        with self._lock:
            pending = self.pending.pop(pending_id, None)
        if pending is None or pending.expires_at <= self._now():
            return None
        return pending

    def save_code(self, code: IssuedCode) -> None:
        with self._lock:
            self._prune()
            self.codes[code.code] = code
            self.nonces[f"{code.client_id}\x00{code.nonce}"] = self._now() + NONCE_MEMORY

    def take_code(self, code: str, client_id: str) -> IssuedCode | None:
        """The code, removed whatever happens next (a code is redeemed at most once)."""
        with self._lock:
            issued = self.codes.pop(code, None)
        if issued is None or issued.expires_at <= self._now():
            return None
        if not hmac.compare_digest(issued.client_id, client_id):
            return None
        return issued

    def nonce_seen(self, client_id: str, nonce: str) -> bool:
        with self._lock:
            return self.nonces.get(f"{client_id}\x00{nonce}", 0) > self._now()

    def save_token(self, token: IssuedToken) -> None:
        with self._lock:
            self._prune()
            self.tokens[token.access_token] = token

    def token(self, access_token: str) -> IssuedToken | None:
        with self._lock:
            return self.tokens.get(access_token)

    def use_jti(self, client_id: str, jti: str, until: int) -> bool:
        """Record a client assertion's ``jti``; False when it was used already."""
        key = f"{client_id}\x00{jti}"
        with self._lock:
            self._prune()
            if key in self.jtis:
                return False
            self.jtis[key] = until + 60
            return True


# -- Authlib server parts -------------------------------------------------------------------------


class StoredRequest(OAuth2Request):  # type: ignore[misc]
    """An authorization request from parameters the provider holds (a pushed request, or the
    request a sign-in page was shown for), not from the current HTTP request."""

    def __init__(self, uri: str, params: dict[str, str]) -> None:
        super().__init__("GET", uri)
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data

    @property
    def form(self) -> dict[str, str]:
        return {}


class EkycServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, op: EkycProvider) -> None:
        super().__init__()
        self.op = op
        self.load_config({"OAUTH2_ACCESS_TOKEN_GENERATOR": lambda *_a, **_k: op.random()})

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.op.clients.get(client_id)

    def save_token(self, token: dict[str, Any], oauth_request: OAuth2Request) -> None:
        self.op.state.save_token(
            IssuedToken(
                access_token=token["access_token"],
                client=oauth_request.client,
                subject=oauth_request.user,
                scope=token["scope"],
                issued_at=self.op.now(),
                expires_in=TOKEN_LIFETIME,
                now=self.op.now,
            )
        )

    def create_oauth2_request(self, oauth_request: Any) -> OAuth2Request:
        if isinstance(oauth_request, OAuth2Request):
            return oauth_request
        return super().create_oauth2_request(oauth_request)


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE, required, S256 only (a missing method would mean ``plain``: refused)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]


class EkycCodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["private_key_jwt"]

    @property
    def op(self) -> EkycProvider:
        provider: EkycProvider = self.server.op
        return provider

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        payload = self.request.payload
        try:
            if "openid" not in (scope_to_list(payload.scope) or []):
                raise InvalidScopeError("This provider serves OpenID Connect: scope openid.")
            if not payload.data.get("code_challenge"):
                raise InvalidRequestError("PKCE is required: code_challenge with S256.")
            if payload.data.get("code_challenge_method") != "S256":
                raise InvalidRequestError("code_challenge_method must be S256.")
            if payload.data.get("request_uri") or payload.data.get("request"):
                raise InvalidRequestError("Request objects are not supported.")
            if any(len(value) > MAX_PARAM for value in payload.data.values()):
                raise InvalidRequestError("A parameter is too long.")
            claims_request(payload.data.get("claims"))
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def generate_authorization_code(self) -> str:
        return self.op.random()

    def save_authorization_code(self, code: str, oauth_request: OAuth2Request) -> None:
        data = oauth_request.payload.data
        self.op.state.save_code(
            IssuedCode(
                code=code,
                client_id=oauth_request.client.client_id,
                redirect_uri=data["redirect_uri"],
                scope=oauth_request.scope,
                nonce=data["nonce"],
                sign_in=oauth_request.user,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                claims_request=claims_request(data.get("claims")),
                expires_at=self.op.now() + CODE_LIFETIME,
            )
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> IssuedCode | None:
        return self.op.state.take_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Nothing left to delete: :meth:`query_authorization_code` took the code."""

    def authenticate_user(self, authorization_code: IssuedCode) -> Subject:
        client = self.op.clients[authorization_code.client_id]
        userinfo = authorization_code.claims_request.get("userinfo")
        return Subject(
            customer=authorization_code.sign_in.customer,
            sub=self.op.subject(authorization_code.sign_in.customer, client),
            userinfo_request=userinfo if isinstance(userinfo, dict) else {},
        )


class EkycOpenIDCode(OpenIDCode):  # type: ignore[misc]
    """The ID token: ES256 with the bank's key; ``sub`` only (the claims are at UserInfo)."""

    def __init__(self, op: EkycProvider) -> None:
        super().__init__(require_nonce=True)
        self.op = op

    def exists_nonce(self, nonce: str, oauth_request: OAuth2Request) -> bool:
        return self.op.state.nonce_seen(oauth_request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: RegisteredClient) -> ECKey:
        return self.op.signing_key

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return ID_TOKEN_ALG

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        return {"alg": ID_TOKEN_ALG, "kid": self.op.kid, "typ": "JWT"}

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        now = self.op.now()
        return {"iss": self.op.issuer, "aud": client.client_id, "iat": now, "exp": now + 300}

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        return {"sub": user.sub}


class EkycUserInfo(UserInfoEndpoint):  # type: ignore[misc]
    def __init__(self, op: EkycProvider, protector: ResourceProtector) -> None:
        super().__init__(resource_protector=protector)
        self.op = op

    def get_issuer(self) -> str:
        return self.op.issuer

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        return userinfo_claims(user, scope)


class EkycTokenValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, op: EkycProvider) -> None:
        super().__init__()
        self.op = op

    def authenticate_token(self, token_string: str) -> IssuedToken | None:
        return self.op.state.token(token_string)


class ServiceAssertion(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` (RFC 7523, OpenID Connect Core 9): the client's signed assertion,
    verified with the keys at its registered ``jwks_uri``."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, op: EkycProvider) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.op = op

    def get_audiences(self) -> list[str]:
        """The issuer, or the endpoint the assertion is sent to (RFC 7523 3, RFC 9126 2)."""
        return [self.op.issuer, self.op.endpoint("/token"), self.op.endpoint("/par")]

    def verify_claims(self, claims: dict[str, Any]) -> None:
        """Authlib's checks (RFC 7523 3), on the provider's clock rather than the host's."""
        registry = jwt.JWTClaimsRegistry(
            now=self.op.now,
            leeway=self.leeway,
            iss={"essential": True},
            sub={"essential": True},
            aud={"essential": True, "values": self.get_audiences()},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise InvalidClientError(description=error.description) from error
        if claims["sub"] != claims["iss"]:
            raise InvalidClientError(description="Issuer and Subject MUST match.")
        if "jti" not in claims or not self.validate_jti(claims, claims["jti"]):
            raise InvalidClientError(description="The assertion's jti is missing or used.")

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        exp = claims.get("exp")
        if not isinstance(jti, str) or not jti or not isinstance(exp, int):
            return False
        if exp > self.op.now() + ASSERTION_MAX_LIFETIME:
            raise InvalidClientError(description="The assertion lives too long.")
        return self.op.state.use_jti(claims["sub"], jti, exp)

    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        kid = None
        assertion = request.form.get("client_assertion", "")
        try:
            header = jws.extract_compact(assertion.encode("ascii")).headers()
            kid = header.get("kid")
            if header.get("alg") not in ASSERTION_ALGS:
                raise InvalidClientError(description="The assertion's alg is not accepted.")
        except (ValueError, UnicodeError) as exc:
            raise InvalidClientError(description="Invalid JWT assertion.") from exc
        return self.op.client_keys.get(client, kid if isinstance(kid, str) else None)


class ClientKeys:
    """Each client's public JWKS, fetched from its ``jwks_uri`` when first needed, kept for
    ``JWKS_TTL`` seconds, fetched again early for an unknown ``kid`` (at most every
    ``JWKS_REFETCH_GAP`` seconds, so a flood of unknown kids costs one fetch)."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[KeySet, set[str], int]] = {}

    def get(self, client: RegisteredClient, kid: str | None) -> KeySet:
        now = self._now()
        with self._lock:
            cached = self._cache.get(client.client_id)
        if cached is not None:
            keys, kids, fetched_at = cached
            fresh = now - fetched_at < JWKS_TTL
            known = kid is None or kid in kids
            if fresh and (known or now - fetched_at < JWKS_REFETCH_GAP):
                return keys
        return self.refresh(client)

    def refresh(self, client: RegisteredClient) -> KeySet:
        """Fetch the client's JWKS now and keep it."""
        now = self._now()
        keys, kids = self._fetch(client.jwks_uri)
        with self._lock:
            self._cache[client.client_id] = (keys, kids, now)
        return keys

    def keep_warm(self, clients: list[RegisteredClient], stop: threading.Event) -> None:
        """Refresh every client's JWKS in the background (every half TTL; after a failure
        again soon, backing off), so that verifying an assertion does not wait on the client.
        The trustanchor service on SQLite answers one request at a time: while it waits for our
        PAR or token response it cannot also serve us its JWKS, and a fetch made then would
        time out."""
        retry: float = JWKS_WARM_RETRY
        while not stop.is_set():
            failed = False
            for client in clients:
                try:
                    self.refresh(client)
                except InvalidClientError:
                    failed = True
            if failed:
                pause, retry = retry, min(retry * 2, JWKS_TTL / 2)
            else:
                pause, retry = JWKS_TTL / 2, JWKS_WARM_RETRY
            stop.wait(pause)

    @staticmethod
    def _fetch(url: str) -> tuple[KeySet, set[str]]:
        try:
            response = requests.get(
                url, timeout=5, headers={"Accept": "application/json"}, allow_redirects=False
            )
            if response.status_code != 200 or len(response.content) > JWKS_MAX_BYTES:
                raise ValueError(f"status {response.status_code}")
            data = response.json()
            keys = [k for k in data["keys"] if k.get("kty") in ("EC", "RSA") and "d" not in k]
            key_set = KeySet.import_key_set({"keys": keys})
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            log.warning("the client's JWKS could not be fetched: %s", type(exc).__name__)
            raise InvalidClientError(description="The client's keys are unavailable.") from exc
        return key_set, {k["kid"] for k in keys if isinstance(k.get("kid"), str)}


# -- the provider ---------------------------------------------------------------------------------


class EkycProvider:
    """The bank's OpenID Provider over one signing key, its clients and its customers."""

    def __init__(
        self,
        site: DemoSite,
        *,
        clients: tuple[RegisteredClient, ...] | None = None,
        customers: tuple[Customer, ...] | None = None,
    ) -> None:
        self.site = site
        self.issuer = site.party(ISSUER_PATH)
        private = load_signing_key(site.keys_dir)
        self.signing_key = ECKey.import_key(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.kid = self.signing_key.thumbprint()
        self._pairwise_secret = hashlib.sha256(
            b"demo-ekyc-bank pairwise subjects\x00"
            + private.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ).digest()
        registered = clients if clients is not None else (service_client(site),)
        self.clients = {client.client_id: client for client in registered}
        self.customers = customers if customers is not None else load_customers()
        self.state = OpState(self.now)
        self.client_keys = ClientKeys(self.now)
        self.server = EkycServer(self)
        self.server.register_client_auth_method("private_key_jwt", ServiceAssertion(self))
        self.server.register_grant(
            EkycCodeGrant, [S256Challenge(required=True), EkycOpenIDCode(self)]
        )
        self.server.register_extension(_Issuer(self.issuer))
        protector = ResourceProtector()
        protector.register_token_validator(EkycTokenValidator(self))
        self.server.register_endpoint(EkycUserInfo(self, protector))

    def now(self) -> int:
        return self.site.clock.now()

    def random(self) -> str:
        return self.site.randomness.token(32)

    def endpoint(self, path: str) -> str:
        return self.issuer + path

    def subject(self, customer: Customer, client: RegisteredClient) -> str:
        """A pairwise ``sub``: the same customer differs between sectors, stays the same within
        one (OpenID Connect Core 8.1)."""
        mac = hmac.new(
            self._pairwise_secret,
            f"{client.sector}\x00{customer.customer_number}".encode(),
            hashlib.sha256,
        )
        return mac.hexdigest()[:40]

    def public_jwks(self) -> dict[str, Any]:
        jwk = self.signing_key.as_dict(private=False)
        return {"keys": [{**jwk, "kid": self.kid, "alg": ID_TOKEN_ALG, "use": "sig"}]}

    def metadata(self) -> dict[str, Any]:
        """The discovery document (OpenID Connect Discovery 1.0, RFC 8414, RFC 9126, RFC 9207,
        OpenID Connect for Identity Assurance)."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("/authorize"),
            "pushed_authorization_request_endpoint": self.endpoint("/par"),
            "require_pushed_authorization_requests": False,
            "token_endpoint": self.endpoint("/token"),
            "userinfo_endpoint": self.endpoint("/userinfo"),
            "jwks_uri": self.endpoint("/jwks.json"),
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "code_challenge_methods_supported": ["S256"],
            "acr_values_supported": [ACR_EKYC],
            "claims_supported": ["sub", "acr", "auth_time", *VERIFIED_CLAIMS, "verified_claims"],
            "claims_parameter_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "ui_locales_supported": ["ja", "en"],
            "verified_claims_supported": True,
            "trust_frameworks_supported": [TRUST_FRAMEWORK],
            "evidence_supported": ["document"],
            "documents_supported": ["idcard", "residence_permit"],
            "documents_check_methods_supported": ["vcrypt"],
            "claims_in_verified_claims_supported": list(VERIFIED_CLAIMS),
        }


class _Issuer(IssuerParameter):  # type: ignore[misc]
    """RFC 9207: ``iss`` on every authorization response, errors included."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


def load_signing_key(keys_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The bank's ID token key, made by ``python -m trustanchor.demo.prepare``."""
    path = keys_dir / KEY_GROUP / f"{KEY_NAME}.key.pem"
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an EC private key")
    return key


# -- claims ---------------------------------------------------------------------------------------


def claims_request(raw: str | None) -> dict[str, Any]:
    """The ``claims`` parameter (OpenID Connect Core 5.5), parsed; malformed is invalid_request."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidRequestError("The claims parameter is not JSON.") from None
    if not isinstance(value, dict) or not all(
        isinstance(value.get(member, {}), dict) for member in ("userinfo", "id_token")
    ):
        raise InvalidRequestError("The claims parameter must be a JSON object of objects.")
    return value


def userinfo_claims(user: Subject, scope: str) -> dict[str, Any]:
    """Plain claims by scope and by name, ``verified_claims`` when the request asked for them
    (IDA: only the requested claims, and only under a trust framework the request accepts)."""
    held = user.customer.claims()
    wanted: list[str] = []
    for granted in scope_to_list(scope) or []:
        wanted += SCOPE_CLAIMS.get(granted, ())
    wanted += [name for name in user.userinfo_request if name in held]
    result: dict[str, Any] = {"sub": user.sub}
    result.update({name: held[name] for name in dict.fromkeys(wanted) if name in held})
    verified = _verified_claims(user.customer, user.userinfo_request.get("verified_claims"))
    if verified is not None:
        result["verified_claims"] = verified
    return result


def _verified_claims(customer: Customer, asked: Any) -> dict[str, Any] | None:
    if isinstance(asked, list):  # several alternatives: the first one this bank can answer
        for alternative in asked:
            answer = _verified_claims(customer, alternative)
            if answer is not None:
                return answer
        return None
    if not isinstance(asked, dict) or not isinstance(asked.get("claims"), dict):
        return None
    framework = (asked.get("verification") or {}).get("trust_framework")
    if isinstance(framework, dict):
        accepted = framework.get("values") or (
            [framework["value"]] if "value" in framework else None
        )
        if accepted is not None and TRUST_FRAMEWORK not in accepted:
            return None
    held = customer.claims()
    names = [name for name in asked["claims"] if name in held and name in VERIFIED_CLAIMS]
    if not names:
        return None
    return {
        "verification": customer.verification_element(),
        "claims": {name: held[name] for name in names},
    }


def requested_claim_names(params: dict[str, str]) -> tuple[list[str], list[str]]:
    """What the consent page lists: the plain claims and the verified claims asked for."""
    held_names = set(VERIFIED_CLAIMS)
    plain: list[str] = []
    for granted in scope_to_list(params.get("scope", "")) or []:
        plain += SCOPE_CLAIMS.get(granted, ())
    try:
        asked = claims_request(params.get("claims"))
    except OAuth2Error:
        asked = {}
    userinfo = asked.get("userinfo") or {}
    plain += [name for name in userinfo if name in held_names]
    verified_request = userinfo.get("verified_claims")
    if isinstance(verified_request, list):
        verified_request = next((v for v in verified_request if isinstance(v, dict)), None)
    verified: list[str] = []
    if isinstance(verified_request, dict) and isinstance(verified_request.get("claims"), dict):
        verified = [name for name in verified_request["claims"] if name in held_names]
    return list(dict.fromkeys(plain)), verified


# -- pages and endpoints --------------------------------------------------------------------------


def provider() -> EkycProvider:
    op: EkycProvider = current_app.extensions["demo_ekyc_op"]
    return op


def init_app(app: Flask, site: DemoSite) -> None:
    """The provider for the parties' app, its clients' keys kept warm by a daemon thread."""
    op = EkycProvider(site)
    app.extensions["demo_ekyc_op"] = op
    stop = threading.Event()
    app.extensions["demo_ekyc_op_stop"] = stop
    warmer = threading.Thread(
        target=op.client_keys.keep_warm,
        args=(list(op.clients.values()), stop),
        name="ekyc-client-keys",
        daemon=True,
    )
    warmer.start()


@blueprint.get("/")
def home() -> str:
    op = provider()
    return render_template("ekyc/home.html", customers=op.customers, issuer=op.issuer)


@blueprint.get("/.well-known/openid-configuration")
def discovery() -> Response:
    return _json(provider().metadata())


@blueprint.get("/jwks.json")
def jwks() -> Response:
    response = _json(provider().public_jwks())
    response.headers["Cache-Control"] = "max-age=300"
    response.content_type = "application/jwk-set+json"
    return response


@blueprint.post("/par")
def pushed_authorization_request() -> Response:
    """RFC 9126: the client, authenticated, pushes its request; it gets a one-use request_uri."""
    op = provider()
    form = {key: request.form[key] for key in request.form}
    if len(request.form.getlist("client_id")) > 1 or any(
        len(request.form.getlist(key)) > 1 for key in request.form
    ):
        return _oauth_error(InvalidRequestError("A parameter is repeated."))
    oauth_request = op.server.create_oauth2_request(request)
    try:
        client = op.server.authenticate_client(oauth_request, ["private_key_jwt"], "par")
    except OAuth2Error as error:
        return _oauth_error(error)
    params = {
        key: value
        for key, value in form.items()
        if key not in ("client_assertion", "client_assertion_type")
    }
    if params.get("client_id", client.client_id) != client.client_id:
        return _oauth_error(InvalidRequestError("client_id is not the authenticated client."))
    params["client_id"] = client.client_id
    if "request_uri" in params:
        return _oauth_error(InvalidRequestError("request_uri is not allowed in a pushed request."))
    try:
        op.server.get_consent_grant(StoredRequest(op.endpoint("/authorize"), params))
    except OAuth2Error as error:
        error.redirect_uri = None  # PAR answers the client directly, never by redirect
        return _oauth_error(error)
    request_uri = PAR_URN + op.random()
    op.state.push(request_uri, client.client_id, params)
    response = jsonify({"request_uri": request_uri, "expires_in": PAR_LIFETIME})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/authorize")
def authorize() -> Response | tuple[str, int]:
    """Validate the request (pushed or plain), remember it for this browser, show the sign-in."""
    op = provider()
    params, problem = _authorization_params(op)
    if params is None:
        return _error_page(problem or "invalid_request")
    oauth_request = StoredRequest(op.endpoint("/authorize"), params)
    try:
        op.server.get_consent_grant(oauth_request)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _redirect_error(op, oauth_request, error)
        return _error_page(error.error)
    browser = request.cookies.get(BROWSER_COOKIE) or op.random()
    pending_id = op.random()
    op.state.add_pending(
        pending_id,
        Pending(
            params=params,
            browser_digest=_digest(browser),
            expires_at=op.now() + PENDING_LIFETIME,
        ),
    )
    response = Response(_login_page(op, pending_id, params))
    response.set_cookie(
        BROWSER_COOKIE,
        browser,
        path=ISSUER_PATH,
        httponly=True,
        samesite="Lax",
        secure=op.issuer.startswith("https://"),
    )
    return response


@blueprint.post("/login")
def login() -> Response | str | tuple[str, int]:
    """The bank's own sign-in (its demo password); trustanchor never sees it."""
    op = provider()
    pending_id = request.form.get("pending", "")
    pending = _pending_of_browser(op, pending_id)
    if pending is None:
        return _error_page("expired")
    customer = customer_by_login(request.form.get("login_id", "")[:64], op.customers)
    offered = request.form.get("password", "")[:256]
    if customer is None or not customer.password_matches(offered):
        pending.attempts += 1
        if pending.attempts >= LOGIN_ATTEMPTS:
            op.state.take_pending(pending_id)
            return _error_page("too_many_attempts")
        return Response(_login_page(op, pending_id, pending.params, failed=True), status=401)
    pending.sign_in = SignIn(customer=customer, auth_time=op.now())
    plain, verified = requested_claim_names(pending.params)
    client = op.clients[pending.params["client_id"]]
    return render_template(
        "ekyc/consent.html",
        pending_id=pending_id,
        customer=customer,
        client=client,
        plain=plain,
        verified=verified,
    )


@blueprint.post("/consent")
def consent() -> Response | tuple[str, int]:
    """The customer's decision: a code (or access_denied) back to the client, with ``iss``."""
    op = provider()
    pending_id = request.form.get("pending", "")
    if _pending_of_browser(op, pending_id) is None:
        return _error_page("expired")
    pending = op.state.take_pending(pending_id)
    if pending is None or pending.sign_in is None:
        return _error_page("expired")
    approved = request.form.get("decision") == "approve"
    oauth_request = StoredRequest(op.endpoint("/authorize"), pending.params)
    try:
        grant = op.server.get_authorization_grant(oauth_request)
    except OAuth2Error as error:
        return _error_page(error.error)
    response: Response = op.server.create_authorization_response(
        oauth_request, pending.sign_in if approved else None, grant
    )
    return response


@blueprint.post("/token")
def token() -> Response:
    response: Response = provider().server.create_token_response()
    return response


@blueprint.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    response: Response = provider().server.create_endpoint_response("userinfo")
    response.headers["Cache-Control"] = "no-store"
    return response


def _authorization_params(op: EkycProvider) -> tuple[dict[str, str] | None, str | None]:
    """The request's parameters: the pushed ones for a ``request_uri`` (taken: one use), else
    the query's. Repeated parameters are refused."""
    args = request.args
    if any(len(args.getlist(key)) > 1 for key in args):
        return None, "invalid_request"
    request_uri = args.get("request_uri")
    if request_uri is None:
        return {key: args[key] for key in args}, None
    if not request_uri.startswith(PAR_URN):
        return None, "invalid_request_uri"
    pushed = op.state.take_pushed(request_uri)
    if pushed is None:
        return None, "invalid_request_uri"
    client_id, params = pushed
    if not hmac.compare_digest(args.get("client_id", ""), client_id):
        return None, "invalid_request_uri"
    return dict(params), None


def _pending_of_browser(op: EkycProvider, pending_id: str) -> Pending | None:
    pending = op.state.get_pending(pending_id) if pending_id else None
    browser = request.cookies.get(BROWSER_COOKIE, "")
    if pending is None or not browser:
        return None
    if not hmac.compare_digest(pending.browser_digest, _digest(browser)):
        return None
    return pending


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _login_page(
    op: EkycProvider, pending_id: str, params: dict[str, str], *, failed: bool = False
) -> str:
    return render_template(
        "ekyc/login.html",
        pending_id=pending_id,
        customers=op.customers,
        client=op.clients[params["client_id"]],
        failed=failed,
    )


def _error_page(problem: str) -> tuple[str, int]:
    t = translator()
    key = f"ekyc.errors.{problem}"
    message = t(key) if t.has(key) else t("ekyc.errors.invalid_request")
    return render_template("ekyc/error.html", message=message), 400


def _redirect_error(op: EkycProvider, oauth_request: OAuth2Request, error: OAuth2Error) -> Response:
    params = [("error", error.error)]
    if error.description:
        params.append(("error_description", error.description))
    if oauth_request.payload.state:
        params.append(("state", oauth_request.payload.state))
    params.append(("iss", op.issuer))
    return Response(status=302, headers={"Location": add_params_to_uri(error.redirect_uri, params)})


def _oauth_error(error: OAuth2Error) -> Response:
    status, body, headers = error()
    response = Response(json.dumps(dict(body)), status=status, headers=headers)
    response.content_type = "application/json"
    return response


def _json(data: dict[str, Any]) -> Response:
    response = jsonify(data)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# The demo site accessor is re-exported for the templates' helpers (url building).
__all__ = [
    "ACR_EKYC",
    "ANCHOR_ID",
    "CLIENT_ID",
    "EkycProvider",
    "RegisteredClient",
    "blueprint",
    "demo_site",
    "init_app",
    "service_client",
]
