"""Client authentication at the token, PAR, introspection and revocation endpoints.

Methods (RFC 6749 §2.3, RFC 7523 §2.2 / §3, FAPI 2.0 Security Profile §5.3):

* ``private_key_jwt`` — a JWS client assertion signed with one of the client's registered keys.
  ``aud`` must be exactly our issuer identifier as a single string (FAPI 2.0 final; this also closes
  the audience-confusion attack that led to draft-ietf-oauth-rfc7523bis), ``iss == sub ==
  client_id``, short-lived, and its ``jti`` is accepted once.
* ``none`` — public clients (wallet apps) identify themselves with ``client_id`` only.
* ``client_secret_basic`` — demo clients only (refused at registration in production).

Exactly one method per request: a second credential is a malformed request (400 invalid_request),
never silently ignored, because which one "wins" is where confusion attacks live. Every other
failure is 401 ``invalid_client`` with a generic description; the precise reason goes to
``log_detail`` for the operator only.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import unquote_plus

from trustanchor.config.settings import ClientAuthSettings
from trustanchor.digests import equal, secret_digest
from trustanchor.domain.clients import Client
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, key_fits_alg
from trustanchor.oauth.errors import InvalidClient, InvalidRequest
from trustanchor.oauth.replay import JtiRegistry

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REPLAY_NAMESPACE = "client_assertion"
# typ values we accept on an assertion (absent is fine): plain JWT, and the explicit type of
# draft-ietf-oauth-rfc7523bis. Any other typ means a JWT made for something else.
ASSERTION_TYPS = frozenset({"jwt", "client-authentication+jwt"})
_GENERIC = "client authentication failed"
# What a registered client_id can look like (oauth/client_metadata.py). Anything else is refused
# before the lookup: it cannot name a client, and a NUL character would make PostgreSQL fail.
_CLIENT_ID_SYNTAX = re.compile(r"[\x21-\x7e]{1,128}")
# Compared against when the client is unknown, so both paths do the same work.
_DUMMY_DIGEST = secret_digest("trustanchor: no such client")


class ClientStore(Protocol):
    """What authentication needs from the client registry (see services/client_registry.py)."""

    def get(self, client_id: str) -> Client | None: ...

    def verification_keys(self, client: Client) -> dict[str, PublicKey]: ...

    def secret_digest(self, client_id: str) -> str | None: ...


def _fail(detail: str, reason: str, client: Client | None = None) -> InvalidClient:
    """``client``: the registered client the request named, when it is known (audit attribution;
    the client itself only ever sees the generic description)."""
    return InvalidClient(
        _GENERIC,
        log_detail=detail,
        reason=reason,
        client_id=client.client_id if client is not None else None,
    )


class ClientAuthenticator:
    def __init__(
        self,
        clients: ClientStore,
        replay: JtiRegistry,
        settings: ClientAuthSettings,
        *,
        issuer: str,
        max_jws_bytes: int,
    ) -> None:
        self._clients = clients
        self._replay = replay
        self._settings = settings
        self._issuer = issuer
        self._max_jws_bytes = max_jws_bytes

    def authenticate(
        self,
        form: Mapping[str, list[str]],
        authorization: str | None,
        *,
        at: int,
        allow_public: bool = True,
    ) -> Client:
        """The authenticated client, or :class:`InvalidRequest` / :class:`InvalidClient`."""
        params = _single_values(form)
        uses_basic = authorization is not None and authorization.strip() != ""
        uses_jwt = "client_assertion" in params or "client_assertion_type" in params
        uses_post = "client_secret" in params
        if uses_basic + uses_jwt + uses_post > 1:
            raise InvalidRequest(
                "use exactly one client authentication method", reason="client_auth_ambiguous"
            )
        body_client_id = params.get("client_id")
        if uses_jwt:
            return self._private_key_jwt(params, body_client_id, at)
        if uses_basic and authorization is not None:
            return self._client_secret_basic(authorization, body_client_id)
        if uses_post:
            raise _fail("client_secret_post is not supported", "client_secret_post_unsupported")
        return self._none(body_client_id, allow_public)

    # -- private_key_jwt ---------------------------------------------------------------------

    def _private_key_jwt(
        self, params: Mapping[str, str], body_client_id: str | None, at: int
    ) -> Client:
        if params.get("client_assertion_type") != JWT_BEARER_ASSERTION:
            raise InvalidClient(
                f"client_assertion_type must be {JWT_BEARER_ASSERTION}",
                log_detail="unsupported or missing client_assertion_type",
                reason="assertion_type_unsupported",
            )
        token = params.get("client_assertion")
        if not token:
            raise InvalidClient("client_assertion is missing", reason="assertion_missing")
        try:
            parsed = jws.parse(
                token, max_bytes=self._max_jws_bytes, allowed_algs=self._settings.allowed_algs
            )
            claims = parsed.claims()
        except JoseError as exc:
            raise _fail(f"assertion refused: {exc.reason}", "assertion_malformed") from None
        typ = parsed.header.get("typ")
        if typ is not None and (not isinstance(typ, str) or _media_type(typ) not in ASSERTION_TYPS):
            raise _fail("assertion typ is not a client assertion type", "assertion_typ")
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise _fail("assertion sub missing", "assertion_sub_missing")
        if claims.get("iss") != client_id:
            raise _fail("assertion iss differs from sub", "assertion_iss_mismatch")
        if body_client_id is not None and body_client_id != client_id:
            raise _fail("assertion sub differs from the client_id parameter", "client_id_mismatch")
        client = self._registered(client_id, "private_key_jwt")
        self._verify_signature(client, parsed)
        expires = self._check_claims(client, claims, at)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise _fail("assertion jti missing or malformed", "assertion_jti_missing", client)
        window_end = expires + self._settings.clock_skew
        if not self._replay.first_use(REPLAY_NAMESPACE, f"{client_id}:{jti}", window_end):
            raise _fail("assertion jti already used", "assertion_jti_replay", client)
        return client

    def _verify_signature(self, client: Client, parsed: jws.ParsedJWS) -> None:
        keys = self._clients.verification_keys(client)
        kid = parsed.header.get("kid")
        if kid is not None:
            if not isinstance(kid, str) or kid not in keys:
                raise _fail(
                    "assertion kid is not a registered key", "assertion_kid_unknown", client
                )
            candidates = [keys[kid]]
        else:
            candidates = [key for key in keys.values() if key_fits_alg(key, parsed.alg)]
        for key in candidates:
            try:
                jws.verify_signature(parsed, key)
            except JoseError:
                continue
            return
        raise _fail(
            "assertion signature not valid with a registered key", "assertion_signature", client
        )

    def _check_claims(self, client: Client, claims: Mapping[str, Any], at: int) -> int:
        """Audience and time checks; returns ``exp``."""
        aud = claims.get("aud")
        if not isinstance(aud, str) or aud != self._issuer:
            raise _fail(
                "assertion aud is not the issuer identifier (a single string)",
                "assertion_audience",
                client,
            )
        skew = self._settings.clock_skew
        exp = _numeric(claims, "exp")
        iat = _numeric(claims, "iat")
        if exp is None or iat is None:
            raise _fail(
                "assertion exp or iat missing or not a number", "assertion_time_missing", client
            )
        if at > exp + skew:
            raise _fail("assertion expired", "assertion_expired", client)
        if iat > at + skew:
            raise _fail("assertion iat in the future", "assertion_iat_future", client)
        if "nbf" in claims:
            nbf = _numeric(claims, "nbf")
            if nbf is None or nbf > at + skew:
                raise _fail("assertion nbf in the future or malformed", "assertion_nbf", client)
        if exp - iat > self._settings.assertion_max_lifetime:
            raise _fail("assertion lifetime exceeds the maximum", "assertion_lifetime", client)
        return math.ceil(exp)

    # -- none / client_secret_basic -------------------------------------------------------------

    def _none(self, client_id: str | None, allow_public: bool) -> Client:
        if not client_id:
            raise InvalidClient("client authentication is required", reason="client_auth_missing")
        client = self._registered(client_id, "none")
        if not client.is_public:
            raise _fail("client with method none is not public", "client_not_public", client)
        if not allow_public:
            raise InvalidClient(
                "this endpoint requires client authentication",
                log_detail=f"public client {client_id} at a confidential-only endpoint",
                reason="public_client_refused",
                client_id=client.client_id,
            )
        return client

    def _client_secret_basic(self, authorization: str, body_client_id: str | None) -> Client:
        client_id, secret = _parse_basic(authorization)
        if body_client_id is not None and body_client_id != client_id:
            raise _fail(
                "Basic client_id differs from the client_id parameter", "client_id_mismatch"
            )
        if not _CLIENT_ID_SYNTAX.fullmatch(client_id):
            raise _fail("malformed client_id", "client_id_malformed")
        client = self._clients.get(client_id)
        stored = self._clients.secret_digest(client_id) if client is not None else None
        matches = equal(secret_digest(secret), stored or _DUMMY_DIGEST)
        if client is None:
            raise _fail("unknown client", "unknown_client")
        if client.auth_method != "client_secret_basic" or stored is None:
            raise _fail(
                f"client {client_id} is not registered for client_secret_basic",
                "auth_method_mismatch",
                client,
            )
        if not matches:
            raise _fail(f"client {client_id}: wrong secret", "client_secret_wrong", client)
        return client

    def _registered(self, client_id: str, method: str) -> Client:
        if not _CLIENT_ID_SYNTAX.fullmatch(client_id):
            raise _fail("malformed client_id", "client_id_malformed")
        client = self._clients.get(client_id)
        if client is None:
            raise _fail("unknown client", "unknown_client")
        if client.auth_method != method:
            raise _fail(
                f"client {client_id} is registered for {client.auth_method}, not {method}",
                "auth_method_mismatch",
                client,
            )
        return client


def _single_values(form: Mapping[str, list[str]]) -> dict[str, str]:
    """Each parameter once (RFC 6749 §3.2: parameters must not be included more than once)."""
    params: dict[str, str] = {}
    for name, values in form.items():
        if len(values) > 1:
            raise InvalidRequest(f"parameter {name} is repeated", reason="parameter_repeated")
        if values:
            params[name] = values[0]
    return params


def _parse_basic(authorization: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: base64(urlencode(client_id) ":" urlencode(secret))."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not credentials:
        raise InvalidClient(
            "unsupported Authorization scheme for client authentication",
            log_detail="Authorization header is not Basic",
            reason="client_auth_scheme_unsupported",
        )
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text
        raise InvalidClient("malformed Basic credentials", reason="basic_malformed") from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep or not raw_id:
        raise InvalidClient("malformed Basic credentials", reason="basic_malformed")
    return unquote_plus(raw_id), unquote_plus(raw_secret)


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _media_type(value: str) -> str:
    lowered = value.lower()
    return lowered[12:] if lowered.startswith("application/") else lowered
