"""The demo bank as an OAuth client of the service, built on requests-oauth2client (an
independent client library), without Flask so the launcher can use it to seed.

Everything a FAPI 2.0 intermediary does: discovery, ``private_key_jwt`` with the bank's key under
``keys/demo/clients/demo-bank.key.pem`` (``kid`` = its RFC 7638 thumbprint, as in the published
``demo-bank.jwks.json``), pushed authorization requests with PKCE S256, ``state``, ``nonce`` and
``authorization_details``, DPoP with one key per bank process (the authorization code is bound to
it at PAR with ``dpop_jkt``), the code exchange with the ID token checked (signature against the
service's JWKS, ``iss``, ``aud``, ``nonce``, expiry), and the accounts API with a
client_credentials token carrying the ``accounts`` scope. The bank talks to the service only over
HTTP.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from requests_oauth2client import (
    AuthorizationRequest,
    AuthorizationResponse,
    AuthorizationResponseError,
    BearerToken,
    DPoPKey,
    DPoPToken,
    OAuth2Client,
    PrivateKeyJwt,
)
from requests_oauth2client.exceptions import EndpointError, InvalidAuthResponse, OAuth2Error
from requests_oauth2client.tokens import IdToken, InvalidIdToken

from trustanchor.demo.site import DemoSite
from trustanchor.digests import b64url_encode
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import keys_from_jwks, public_jwk, thumbprint

CLIENT_ID = "demo-bank"
CALLBACK_PATH = "/bank/callback"
LEDGER_TRANSFERS_PATH = "/ledger/transfers"
LEDGER_FUNDINGS_PATH = "/ledger/fundings"
POLICY_PREFIX = "denied by policy: "
MAX_TOKEN_BYTES = 16384
TIMEOUT = 10.0


class MovementRefused(Exception):
    """The token endpoint refused a movement under a standing authorization. ``error`` and
    ``description`` are the service's (RFC 6749 §5.2); ``reason`` is the bank's reading of them
    (:func:`movement_reason`); ``ended`` says the standing authorization is over (its refresh
    token will never work again)."""

    def __init__(self, error: str, description: str | None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.reason = movement_reason(error, description)

    @property
    def ended(self) -> bool:
        return self.error == "invalid_grant" and self.reason in ENDED_REASONS


# The token endpoint's error descriptions for a refused movement (services/standing_movements.py,
# services/grants/refresh_token.py) read as reason codes the bank words for the person. Matched
# on the text: the HTTP answer carries only ``error`` and ``error_description``.
_MOVEMENT_REASONS: tuple[tuple[str, str], ...] = (
    ("daily amount", "standing_daily_limit_exceeded"),
    ("not within the standing authorization", "standing_movement_not_covered"),
    ("cumulative funding limit", "cumulative_limit_exceeded"),
    ("funding limit", "limit_exceeded"),
    ("no longer allows standing", "standing_not_allowed"),
    ("link is flagged", "link_flagged"),
    ("does not approve debits", "debit_not_approved"),
    ("no longer active or the holder", "standing_accounts_changed"),
    ("standing authorization has ended", "standing_ended"),
    ("revoked", "standing_ended"),
    ("refresh token is invalid or expired", "standing_ended"),
    ("bound to another DPoP key", "standing_key_mismatch"),
)
ENDED_REASONS = frozenset({"standing_ended", "standing_key_mismatch"})


def movement_reason(error: str, description: str | None) -> str:
    """The reason code the bank shows for a refused movement (``standing_refused`` when the
    description is none it knows)."""
    text = description or ""
    for fragment, reason in _MOVEMENT_REASONS:
        if fragment in text:
            return reason
    return "standing_ended" if error == "invalid_grant" else "standing_refused"


@dataclass(frozen=True, slots=True)
class Movement:
    """A movement token minted under a standing authorization, and the refresh token that
    replaces the one spent."""

    access_token: str  # DPoP-bound to the standing authorization's key
    refresh_token: str
    funding: Mapping[str, Any]  # the granted funding entry (link and standing ids filled in)
    anchor_set: str | None = None


class BankClientError(Exception):
    """The service could not be reached, or answered something the bank cannot use. The message
    is for the bank's own log and page; it never contains a token or a key."""


class AccountConflict(BankClientError):
    """``POST /accounts`` answered 409: the reference is registered with another label (or kind,
    or KYC attributes)."""


class AuthorizationRefused(Exception):
    """The authorization response carried an error (the person declined, or the policy denied).
    ``reason`` is the policy's reason code when the service said ``denied by policy: <reason>``."""

    def __init__(self, error: str, description: str | None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description

    @property
    def reason(self) -> str | None:
        if self.error != "access_denied" or not self.description:
            return None
        if not self.description.startswith(POLICY_PREFIX):
            return None
        code = self.description[len(POLICY_PREFIX) :]
        return code if code.replace("_", "").isalnum() and code.isascii() else None


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """What the bank keeps between pushing a request and the person coming back."""

    state: str
    nonce: str
    code_verifier: str
    scope: str


@dataclass(frozen=True, slots=True)
class StartedAuthorization:
    pending: PendingAuthorization
    url: str  # where to send the person's browser: <issuer>/authorize?client_id=…&request_uri=…


@dataclass(frozen=True, slots=True)
class Tokens:
    """The outcome of a successful code exchange. ``id_claims`` come from the validated ID token;
    ``access_claims`` from the access token (signature checked against the service's JWKS — the
    bank reads its own token only to show what was approved)."""

    access_token: str  # DPoP-bound to the bank's key
    expires_in: int | None
    id_claims: Mapping[str, Any]
    access_claims: Mapping[str, Any]
    id_token: str = ""  # as received (validated): the bank's id_token_hint at logout
    refresh_token: str | None = None  # a standing authorization's (DPoP-bound, rotating)

    @property
    def sub(self) -> str:
        return str(self.id_claims["sub"])

    @property
    def authorization_details(self) -> list[dict[str, Any]]:
        details = self.access_claims.get("authorization_details", [])
        return (
            [dict(d) for d in details if isinstance(d, dict)] if isinstance(details, list) else []
        )

    @property
    def anchor_set(self) -> str | None:
        value = self.access_claims.get("anchor_set")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RegisteredAccount:
    account_id: str
    bound: bool


@dataclass(frozen=True, slots=True)
class LedgerAnswer:
    status: int
    body: Mapping[str, Any]

    @property
    def accepted(self) -> bool:
        return self.status in (200, 201)


def load_signing_key(keys_dir: Path, client_id: str = CLIENT_ID) -> ec.EllipticCurvePrivateKey:
    """The bank's private_key_jwt key made by ``python -m trustanchor.demo.prepare``."""
    path = keys_dir / "clients" / f"{client_id}.key.pem"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise BankClientError(
            f"{path} is missing: run python -m trustanchor.demo.prepare first"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise BankClientError(f"{path}: not an EC private key")
    return key


def private_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The key as a private JWK whose ``kid`` is the thumbprint (as prepare publishes it)."""
    public = public_jwk(key)
    size = (key.curve.key_size + 7) // 8
    d = b64url_encode(key.private_numbers().private_value.to_bytes(size, "big"))
    return {**public, "d": d, "kid": thumbprint(public), "alg": "ES256"}


def access_token_hash(token: str) -> str:
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


class BankClient:
    """One bank process's client. Thread-safe: the OAuth client is built once (discovery and
    JWKS fetched at first use) and the DPoP key lives as long as the process."""

    def __init__(
        self,
        site: DemoSite,
        signing_key: ec.EllipticCurvePrivateKey,
        *,
        client_id: str = CLIENT_ID,
        timeout: float = TIMEOUT,
    ) -> None:
        self.site = site
        self.signing_key = signing_key
        self.client_id = client_id
        self.timeout = timeout
        self.dpop_key = DPoPKey(
            ec.generate_private_key(ec.SECP256R1()),
            alg="ES256",
            jti_generator=lambda: site.randomness.token(18),
            iat_generator=site.clock.now,
        )
        self._oauth: OAuth2Client | None = None
        self._jwks: dict[str, Any] = {}
        self._end_session_endpoint: str | None = None
        self._detail_types: frozenset[str] = frozenset()
        self._accounts_token: tuple[DPoPToken, int] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_site(cls, site: DemoSite, client_id: str = CLIENT_ID) -> BankClient:
        return cls(site, load_signing_key(site.keys_dir, client_id), client_id=client_id)

    @property
    def redirect_uri(self) -> str:
        return self.site.party(CALLBACK_PATH)

    @property
    def issuer(self) -> str:
        return self.site.service_url

    # -- the OAuth client ---------------------------------------------------------------------

    def oauth(self) -> OAuth2Client:
        with self._lock:
            if self._oauth is None:
                self._oauth = self._discover()
            return self._oauth

    def _discover(self) -> OAuth2Client:
        session = requests.Session()
        try:
            discovery = _get_json(
                session, self.site.service("/.well-known/openid-configuration"), self.timeout
            )
            if discovery.get("issuer") != self.issuer:
                raise BankClientError("the discovery document names another issuer")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise BankClientError("the discovery document has no jwks_uri")
            self._jwks = _get_json(session, jwks_uri, self.timeout)
            end_session = discovery.get("end_session_endpoint")
            if isinstance(end_session, str) and end_session.startswith(self.issuer + "/"):
                self._end_session_endpoint = end_session
            types = discovery.get("authorization_details_types_supported")
            if isinstance(types, list):
                self._detail_types = frozenset(t for t in types if isinstance(t, str))
            return OAuth2Client.from_discovery_document(
                discovery,
                issuer=self.issuer,
                auth=PrivateKeyJwt(
                    self.client_id,
                    private_jwk(self.signing_key),
                    alg="ES256",
                    aud=self.issuer,  # FAPI 2.0: the issuer identifier only
                ),
                authorization_server_jwks=self._jwks,
                redirect_uri=self.redirect_uri,
                session=session,
                id_token_signed_response_alg="ES256",  # noqa: S106 (an algorithm name)
                dpop_bound_access_tokens=True,
                # The demo service speaks http on 127.0.0.1; the library refuses that otherwise.
                testing=self.issuer.startswith("http://"),
            )
        except requests.RequestException as exc:
            raise BankClientError(f"the service at {self.issuer} does not answer") from exc

    def new_dpop_key(self, pem: bytes | None = None) -> tuple[DPoPKey, bytes]:
        """A DPoP key of its own (for one standing authorization: its refresh token is bound
        to it and must outlive this process), and its private key as PKCS#8 PEM to keep;
        ``pem``: such a key kept earlier."""
        if pem is None:
            private = ec.generate_private_key(ec.SECP256R1())
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise BankClientError("a kept DPoP key is not an EC private key")
            private = loaded
        key = DPoPKey(
            private,
            alg="ES256",
            jti_generator=lambda: self.site.randomness.token(18),
            iat_generator=self.site.clock.now,
        )
        return key, pem

    def _known_kid(self, token: str) -> bool:
        try:
            header = jws.unverified_header(token, max_bytes=MAX_TOKEN_BYTES)
            return str(header.get("kid")) in keys_from_jwks(self._jwks)
        except JoseError:
            return True  # malformed: the full check refuses it

    def _refresh_jwks(self) -> None:
        """A token names a key we do not know (the service rotated): fetch its JWKS again."""
        client = self.oauth()
        try:
            keys = _get_json(client.session, str(client.jwks_uri), self.timeout)
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        with self._lock:
            self._jwks = keys
            client.authorization_server_jwks.update(keys)

    # -- authorization code flow --------------------------------------------------------------

    def start(
        self,
        *,
        scope: str = "openid",
        claims: Mapping[str, Any] | None = None,
        authorization_details: Sequence[Mapping[str, Any]] | None = None,
        prompt: str | None = None,
        dpop_key: DPoPKey | None = None,
        ui_locales: str | None = None,
    ) -> StartedAuthorization:
        """Push an authorization request (PAR); the URL to send the person to. ``prompt``:
        ``login`` asks for a fresh login whatever the browser's session at the service;
        ``dpop_key``: the key the code is bound to (``dpop_jkt``), the process's by default;
        ``ui_locales``: the language the bank's page was in, so the service's pages match."""
        client = self.oauth()
        randomness = self.site.randomness
        extra: dict[str, Any] = {}
        if prompt is not None:
            extra["prompt"] = prompt
        if ui_locales is not None:
            extra["ui_locales"] = ui_locales
        if claims is not None:
            extra["claims"] = json.dumps(claims, separators=(",", ":"))
        if authorization_details is not None:
            extra["authorization_details"] = json.dumps(
                list(authorization_details), separators=(",", ":")
            )
        request = client.authorization_request(
            scope=scope,
            state=randomness.token(24),
            nonce=randomness.token(24),
            code_verifier=randomness.token(48),
            dpop_key=dpop_key or self.dpop_key,
            **extra,
        )
        try:
            pushed = client.pushed_authorization_request(request)
        except OAuth2Error as exc:
            raise BankClientError(f"the service refused the pushed request: {exc}") from exc
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        pending = PendingAuthorization(
            state=str(request.state),
            nonce=str(request.nonce),
            code_verifier=str(request.code_verifier),
            scope=scope,
        )
        return StartedAuthorization(pending, str(pushed.uri))

    def finish(
        self, pending: PendingAuthorization, query: str, *, dpop_key: DPoPKey | None = None
    ) -> Tokens:
        """Check the authorization response (``iss``, ``state``), redeem the code with DPoP and
        validate the ID token. ``query`` is the callback's query string; the URL it is checked
        as is built from the configured redirect URI, never from the request's Host.
        ``dpop_key``: the key given to :meth:`start`."""
        key = dpop_key or self.dpop_key
        client = self.oauth()
        request = AuthorizationRequest(
            str(client.authorization_endpoint),
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scope=pending.scope,
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
            issuer=self.issuer,
            authorization_response_iss_parameter_supported=True,
            dpop_key=key,
        )
        callback = f"{self.redirect_uri}?{query}"
        params = parse_qs(query, keep_blank_values=True)
        if any(len(values) != 1 for values in params.values()):
            raise BankClientError("a parameter appears twice in the authorization response")
        try:
            response = request.validate_callback(callback)
        except AuthorizationResponseError as exc:
            raise AuthorizationRefused(exc.error, exc.description) from exc
        except InvalidAuthResponse as exc:  # missing code, wrong or missing iss, wrong state
            raise BankClientError(f"the authorization response is not valid: {exc}") from exc
        return self._redeem(client, response, key)

    def _redeem(
        self, client: OAuth2Client, response: AuthorizationResponse, key: DPoPKey
    ) -> Tokens:
        try:
            token = client.authorization_code(response, validate=False)
        except OAuth2Error as exc:
            raise BankClientError(f"the token endpoint refused the code: {exc}") from exc
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        if not isinstance(token, DPoPToken) or str(token.token_type).lower() != "dpop":
            raise BankClientError("the service issued a token that is not DPoP-bound")
        if not token.id_token:
            raise BankClientError("the token response has no ID token")
        id_claims = self._validated_id_token(client, token, response)
        access_token = str(token.access_token)
        access_claims = self.verify_access_token(access_token)
        cnf = access_claims.get("cnf")
        if not isinstance(cnf, dict) or cnf.get("jkt") != key.dpop_jkt:
            raise BankClientError("the access token is not bound to this bank's DPoP key")
        if access_claims.get("sub") != id_claims["sub"]:
            raise BankClientError("the access token and the ID token name different people")
        expires_in = token.expires_in
        return Tokens(
            access_token=access_token,
            expires_in=int(expires_in) if expires_in is not None else None,
            id_claims=id_claims,
            access_claims=access_claims,
            id_token=str(token.id_token),
            refresh_token=str(token.refresh_token) if token.refresh_token else None,
        )

    def _validated_id_token(
        self, client: OAuth2Client, token: BearerToken, response: AuthorizationResponse
    ) -> dict[str, Any]:
        """The library checks signature, iss, aud, azp, exp and nonce (requests-oauth2client
        1.8 cannot rebuild a DPoPToken after validating, so it validates a plain copy)."""
        raw = str(token.id_token)
        if not self._known_kid(raw):
            self._refresh_jwks()
        copy = BearerToken(access_token=token.access_token, id_token=raw, expires_in=60)
        try:
            validated = copy.validate_id_token(client, response)
        except InvalidIdToken as exc:
            raise BankClientError(f"the ID token is not valid: {exc}") from exc
        id_token = validated.id_token
        claims = dict(id_token.claims) if isinstance(id_token, IdToken) else {}
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise BankClientError("the ID token has no subject")
        if claims.get("nonce") != response.nonce:  # the library skips this without a nonce
            raise BankClientError("the ID token's nonce is not this request's")
        return claims

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The access token's claims after checking its signature against the service's keys.
        The bank is not its audience; it reads its own token to show what was approved."""
        if not self._known_kid(token):
            self._refresh_jwks()
        try:
            header = jws.unverified_header(token, max_bytes=MAX_TOKEN_BYTES)
            key = keys_from_jwks(self._jwks).get(str(header.get("kid")))
            if key is None:
                raise JoseError("unknown_key", "no key with this kid")
            _, claims = jws.verify(
                token, key, allowed_algs=("ES256", "EdDSA"), max_bytes=MAX_TOKEN_BYTES, typ="at+jwt"
            )
        except JoseError as exc:
            raise BankClientError(f"the access token is not valid: {exc.reason}") from exc
        if claims.get("iss") != self.issuer or claims.get("client_id") != self.client_id:
            raise BankClientError("the access token names another issuer or client")
        return claims

    def supports(self, detail_type: str) -> bool:
        """Whether the service's discovery document lists ``detail_type`` among its
        ``authorization_details_types_supported`` (read once, at the first use)."""
        self.oauth()
        return detail_type in self._detail_types

    # -- standing authorizations ------------------------------------------------------------

    def movement(
        self, refresh_token: str, dpop_key: DPoPKey, funding: Mapping[str, Any]
    ) -> Movement:
        """One movement token under a standing authorization: a refresh token request with a
        DPoP proof of the standing authorization's key, naming the one ``funding`` movement in
        ``authorization_details`` (docs/AUTHORIZATION-DETAILS.md §5). The service rotates the
        refresh token: the answer's replaces ``refresh_token``, which is spent. Raises
        :class:`MovementRefused` when the service refuses the movement (nothing spent then)."""
        client = self.oauth()
        data = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "authorization_details": json.dumps([dict(funding)], separators=(",", ":")),
        }
        try:
            token = client.token_request(data, dpop_key=dpop_key)
        except EndpointError as exc:
            raise MovementRefused(exc.error, exc.description) from exc
        except OAuth2Error as exc:
            raise BankClientError(f"the token endpoint answered something else: {exc}") from exc
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        if not isinstance(token, DPoPToken) or not token.refresh_token:
            raise BankClientError(
                "the movement token is not DPoP-bound or came without a refresh token"
            )
        access_token = str(token.access_token)
        claims = self.verify_access_token(access_token)
        cnf = claims.get("cnf")
        if not isinstance(cnf, dict) or cnf.get("jkt") != dpop_key.dpop_jkt:
            raise BankClientError("the movement token is not bound to the standing key")
        details = claims.get("authorization_details")
        granted = details[0] if isinstance(details, list) and len(details) == 1 else None
        if not isinstance(granted, dict) or granted.get("type") != "funding":
            raise BankClientError("the movement token does not hold one funding movement")
        anchor_set = claims.get("anchor_set")
        return Movement(
            access_token,
            str(token.refresh_token),
            granted,
            anchor_set if isinstance(anchor_set, str) else None,
        )

    def end_standing(self, link_id: str, standing_id: str) -> bool:
        """``DELETE /links/{link_id}/standing-authorizations/{standing_id}``: True when the
        service ended it now, False when it had ended already (404)."""
        url = self.site.service(f"/links/{link_id}/standing-authorizations/{standing_id}")
        try:
            response = self.oauth().session.delete(
                url, auth=self._machine_token(), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        if response.status_code == 204:
            return True
        if response.status_code == 404:
            return False
        raise BankClientError(
            f"DELETE standing authorization: HTTP {response.status_code} {_error_text(response)}"
        )

    def remove_link(self, link_id: str) -> bool:
        """``DELETE /links/{link_id}``: True when the service removed it now (and undid the
        account bindings it made), False when it was not active (404)."""
        url = self.site.service(f"/links/{link_id}")
        try:
            response = self.oauth().session.delete(
                url, auth=self._machine_token(), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        if response.status_code == 204:
            return True
        if response.status_code == 404:
            return False
        raise BankClientError(f"DELETE link: HTTP {response.status_code} {_error_text(response)}")

    # -- RP-Initiated Logout -------------------------------------------------------------------

    def logout_url(
        self,
        *,
        id_token_hint: str | None,
        post_logout_redirect_uri: str,
        state: str | None = None,
        ui_locales: str | None = None,
    ) -> str:
        """Where to send the browser to end its SSO session at the service (OpenID Connect
        RP-Initiated Logout 1.0): the discovery document's ``end_session_endpoint`` with the
        latest ID token as ``id_token_hint`` (the service then ends the session without asking
        when it is this browser's), or ``client_id`` without one (the service asks first)."""
        self.oauth()
        if self._end_session_endpoint is None:
            raise BankClientError("the service publishes no end_session_endpoint")
        params: dict[str, str] = {"post_logout_redirect_uri": post_logout_redirect_uri}
        if state is not None:
            params["state"] = state
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        else:
            params["client_id"] = self.client_id
        if ui_locales:
            params["ui_locales"] = ui_locales
        return f"{self._end_session_endpoint}?{urlencode(params)}"

    # -- the accounts API ---------------------------------------------------------------------

    def _machine_token(self) -> DPoPToken:
        now = self.site.clock.now()
        with self._lock:
            cached = self._accounts_token
        if cached is not None and cached[1] > now + 10:
            return cached[0]
        try:
            token = self.oauth().client_credentials(scope="accounts", dpop_key=self.dpop_key)
        except OAuth2Error as exc:
            raise BankClientError(f"the service refused the accounts token: {exc}") from exc
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        if not isinstance(token, DPoPToken):
            raise BankClientError("the service issued an accounts token that is not DPoP-bound")
        lifetime = int(token.expires_in or 60)
        with self._lock:
            self._accounts_token = (token, now + lifetime)
        return token

    def register_account(
        self, reference: str, kind: str, label: str, kyc: Mapping[str, str] | None = None
    ) -> RegisteredAccount:
        """``POST /accounts``: the same reference again returns the same account. ``kyc``: the
        holder's identified name (and birth date), so the service binds the account only to a
        person verified with those (services/account_kyc.py)."""
        url = self.site.service("/accounts")
        body: dict[str, Any] = {"reference": reference, "kind": kind, "label": label}
        if kyc is not None:
            body["kyc"] = dict(kyc)
        try:
            response = self.oauth().session.post(
                url,
                json=body,
                auth=self._machine_token(),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        if response.status_code not in (200, 201):
            error = AccountConflict if response.status_code == 409 else BankClientError
            raise error(f"POST /accounts: HTTP {response.status_code} {_error_text(response)}")
        body = response.json()
        account_id = body.get("account_id") if isinstance(body, dict) else None
        if not isinstance(account_id, str) or not account_id.startswith("acc_"):
            raise BankClientError("POST /accounts: no account_id in the answer")
        return RegisteredAccount(account_id, bool(body.get("bound")))

    def links(self) -> list[dict[str, Any]]:
        """``GET /links``: the links touching the bank's accounts."""
        try:
            response = self.oauth().session.get(
                self.site.service("/links"), auth=self._machine_token(), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise BankClientError("the service does not answer") from exc
        if response.status_code != 200:
            raise BankClientError(f"GET /links: HTTP {response.status_code}")
        body = response.json()
        items = body.get("links", []) if isinstance(body, dict) else body
        return [dict(item) for item in items if isinstance(item, dict)]

    # -- the ledger ---------------------------------------------------------------------------

    def ledger_headers(
        self,
        access_token: str,
        url: str,
        method: str = "POST",
        *,
        dpop_key: DPoPKey | None = None,
    ) -> dict[str, str]:
        """``Authorization: DPoP <token>`` and a fresh proof for exactly this request (with
        ``dpop_key``, the key the token is bound to, the process's by default)."""
        key = dpop_key or self.dpop_key
        proof = key.proof(htm=method, htu=url, ath=access_token_hash(access_token))
        return {"Authorization": f"DPoP {access_token}", "DPoP": str(proof)}

    def submit_transfer(self, access_token: str, instruction: Mapping[str, str]) -> LedgerAnswer:
        """Ask the ledger to execute the transfer the token approved."""
        return self._submit(LEDGER_TRANSFERS_PATH, access_token, instruction)

    def submit_funding(
        self,
        access_token: str,
        instruction: Mapping[str, str],
        *,
        dpop_key: DPoPKey | None = None,
    ) -> LedgerAnswer:
        """Ask the ledger to execute the funding movement the token approved."""
        return self._submit(LEDGER_FUNDINGS_PATH, access_token, instruction, dpop_key)

    def _submit(
        self,
        path: str,
        access_token: str,
        instruction: Mapping[str, str],
        dpop_key: DPoPKey | None = None,
    ) -> LedgerAnswer:
        url = self.site.party(path)
        try:
            response = requests.post(
                url,
                json=dict(instruction),
                headers=self.ledger_headers(access_token, url, dpop_key=dpop_key),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise BankClientError("the ledger does not answer") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        return LedgerAnswer(response.status_code, body if isinstance(body, dict) else {})


def _get_json(session: requests.Session, url: str, timeout: float) -> dict[str, Any]:
    response = session.get(url, timeout=timeout)
    if response.status_code != 200:
        raise BankClientError(f"GET {url}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise BankClientError(f"GET {url}: not JSON") from exc
    if not isinstance(body, dict):
        raise BankClientError(f"GET {url}: not a JSON object")
    return body


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return " ".join(str(body.get(k, "")) for k in ("error", "error_description")).strip()


def callback_query(url: str) -> str:
    """The query string of a callback URL."""
    return urlsplit(url).query
