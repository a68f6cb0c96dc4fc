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
failure is 401 ``invalid_client`` whose ``error_description`` says what the client should change
(``aud must be exactly "<issuer>"``, the assertion expired, its jti was already used, ...), and
whose ``log_detail`` adds what only the operator may read (which client, which check).

Who is registered is never told: an unknown client, a client registered for another method, an
unregistered ``kid``, a signature no registered key verifies and a wrong secret are one answer
per method (:data:`ASSERTION_NOT_VERIFIED`, :data:`BASIC_NOT_VERIFIED`,
:data:`NOT_A_PUBLIC_CLIENT`), and they do the same work: an assertion of an unknown client is
verified against a stand-in key of its alg (:func:`_stand_in_key`), as an assertion whose kid
names no registered key is, and a secret of an unknown client is compared with a stand-in
digest; the client registry holds every registered client in memory
(services/client_registry.py), so looking up any id, registered or not, is one dict read and
takes the same time too. The checks of the
assertion's claims (aud, exp, iat, nbf, lifetime, jti) come after its signature, so only the
holder of a registered key ever reads their descriptions.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import unquote_plus

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trustanchor.config.settings import ClientAuthSettings
from trustanchor.digests import equal, secret_digest
from trustanchor.domain.clients import Client
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, key_fits_alg
from trustanchor.oauth.errors import InvalidClient, InvalidRequest
from trustanchor.oauth.params import repeated
from trustanchor.oauth.replay import JtiRegistry

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REPLAY_NAMESPACE = "client_assertion"
# typ values we accept on an assertion (absent is fine): plain JWT, and the explicit type of
# draft-ietf-oauth-rfc7523bis. Any other typ means a JWT made for something else.
ASSERTION_TYPS = frozenset({"jwt", "client-authentication+jwt"})
# The one description of each method for every failure that would tell who is registered.
ASSERTION_NOT_VERIFIED = (
    "client_assertion is not signed by a key registered for a private_key_jwt client named by "
    "its sub: check sub, kid, alg and the signing key"
)
BASIC_NOT_VERIFIED = (
    "client_id and client secret do not match a client registered for client_secret_basic"
)
NOT_A_PUBLIC_CLIENT = (
    "client_id does not name a registered public client: a confidential client authenticates "
    "with private_key_jwt"
)
CONFIDENTIAL_ONLY = "this endpoint requires client authentication: use private_key_jwt"
_CLIENT_ID_RULE = "1 to 128 printable ASCII characters, no space"
# Descriptions of the refusals of trustanchor.jose (the assertion as a JWS), by its reason.
_JOSE_DESCRIPTIONS = {
    "too_large": "client_assertion is too large",
    "malformed": "client_assertion is not a compact JWS (header.payload.signature, base64url)",
    "unsupported": "client_assertion uses an unsupported JWS feature (JWE, zip, b64, crit)",
    "invalid_payload": "client_assertion claims are not a JSON object",
}
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


def _fail(
    description: str, detail: str, reason: str, client: Client | None = None
) -> InvalidClient:
    """``description``: what the client reads; ``detail``: what the operator log adds.
    ``client``: the registered client the request named, when it is known (audit attribution,
    never told to the caller)."""
    return InvalidClient(
        description,
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
            raise _fail(
                "client_secret_post is not supported: authenticate with private_key_jwt (the "
                "discovery document lists token_endpoint_auth_methods_supported)",
                "client_secret_post is not supported",
                "client_secret_post_unsupported",
            )
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
        allowed = self._settings.allowed_algs
        try:
            parsed = jws.parse(token, max_bytes=self._max_jws_bytes, allowed_algs=allowed)
            claims = parsed.claims()
        except JoseError as exc:
            if exc.reason == "alg_not_allowed":
                description = "client_assertion alg must be one of " + " ".join(allowed)
            else:
                description = _JOSE_DESCRIPTIONS.get(exc.reason, "client_assertion is not a JWS")
            raise _fail(
                description, f"assertion refused: {exc.reason}", "assertion_malformed"
            ) from None
        typ = parsed.header.get("typ")
        if typ is not None and (not isinstance(typ, str) or _media_type(typ) not in ASSERTION_TYPS):
            raise _fail(
                "client_assertion typ must be JWT or client-authentication+jwt, or absent",
                "assertion typ is not a client assertion type",
                "assertion_typ",
            )
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise _fail(
                "client_assertion must carry sub: the client_id",
                "assertion sub missing",
                "assertion_sub_missing",
            )
        if claims.get("iss") != client_id:
            raise _fail(
                "client_assertion iss must equal its sub: the client_id",
                "assertion iss differs from sub",
                "assertion_iss_mismatch",
            )
        if body_client_id is not None and body_client_id != client_id:
            raise _fail(
                "client_assertion sub must equal the client_id parameter",
                "assertion sub differs from the client_id parameter",
                "client_id_mismatch",
            )
        if not _CLIENT_ID_SYNTAX.fullmatch(client_id):
            raise _fail(
                f"client_assertion sub is not a client_id ({_CLIENT_ID_RULE})",
                "malformed client_id",
                "client_id_malformed",
            )
        # Unknown client, another method, unregistered kid, bad signature: the same answer
        # after the same work (one signature verification at least).
        client = self._clients.get(client_id)
        if client is not None and client.auth_method == "private_key_jwt":
            keys = self._clients.verification_keys(client)
        else:
            keys = {}
        kid = parsed.header.get("kid")
        verified = _signature_verifies(parsed, keys, kid)
        if client is None:
            raise _fail(ASSERTION_NOT_VERIFIED, "unknown client", "unknown_client")
        if client.auth_method != "private_key_jwt":
            raise _fail(
                ASSERTION_NOT_VERIFIED,
                f"client {client_id} is registered for {client.auth_method}, not private_key_jwt",
                "auth_method_mismatch",
                client,
            )
        if kid is not None and (not isinstance(kid, str) or kid not in keys):
            raise _fail(
                ASSERTION_NOT_VERIFIED,
                f"client {client_id}: assertion kid is not a registered key",
                "assertion_kid_unknown",
                client,
            )
        if not verified:
            raise _fail(
                ASSERTION_NOT_VERIFIED,
                f"client {client_id}: assertion signature not valid with a registered key",
                "assertion_signature",
                client,
            )
        expires = self._check_claims(client, claims, at)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise _fail(
                "client_assertion must carry a jti: a unique string of at most 256 characters",
                "assertion jti missing or malformed",
                "assertion_jti_missing",
                client,
            )
        window_end = expires + self._settings.clock_skew
        if not self._replay.first_use(REPLAY_NAMESPACE, f"{client_id}:{jti}", window_end):
            raise _fail(
                "client_assertion jti was already used: sign a new assertion with a fresh jti "
                "for every request",
                "assertion jti already used",
                "assertion_jti_replay",
                client,
            )
        return client

    def _check_claims(self, client: Client, claims: Mapping[str, Any], at: int) -> int:
        """Audience and time checks; returns ``exp``."""
        aud = claims.get("aud")
        if not isinstance(aud, str) or aud != self._issuer:
            raise _fail(
                f'client_assertion aud must be exactly "{self._issuer}" (the issuer '
                "identifier, as a single string: not the token endpoint URL, not an array)",
                "assertion aud is not the issuer identifier (a single string)",
                "assertion_audience",
                client,
            )
        skew = self._settings.clock_skew
        exp = _numeric(claims, "exp")
        iat = _numeric(claims, "iat")
        if exp is None or iat is None:
            raise _fail(
                "client_assertion must carry exp and iat as numbers (seconds since the epoch)",
                "assertion exp or iat missing or not a number",
                "assertion_time_missing",
                client,
            )
        if at > exp + skew:
            raise _fail(
                f"client_assertion has expired: its exp is in the past (clock skew allowed: "
                f"{skew} s); sign a new one for every request",
                "assertion expired",
                "assertion_expired",
                client,
            )
        if iat > at + skew:
            raise _fail(
                f"client_assertion iat is in the future (clock skew allowed: {skew} s): check "
                "the client's clock",
                "assertion iat in the future",
                "assertion_iat_future",
                client,
            )
        if "nbf" in claims:
            nbf = _numeric(claims, "nbf")
            if nbf is None or nbf > at + skew:
                raise _fail(
                    f"client_assertion nbf must be a number not in the future (clock skew "
                    f"allowed: {skew} s)",
                    "assertion nbf in the future or malformed",
                    "assertion_nbf",
                    client,
                )
        limit = self._settings.assertion_max_lifetime
        if exp - iat > limit:
            raise _fail(
                f"client_assertion lifetime (exp - iat) must be at most {limit} s",
                "assertion lifetime exceeds the maximum",
                "assertion_lifetime",
                client,
            )
        return math.ceil(exp)

    # -- none / client_secret_basic -------------------------------------------------------------

    def _none(self, client_id: str | None, allow_public: bool) -> Client:
        if not client_id:
            raise InvalidClient("client authentication is required", reason="client_auth_missing")
        if not _CLIENT_ID_SYNTAX.fullmatch(client_id):
            raise _fail(
                f"client_id is malformed ({_CLIENT_ID_RULE})",
                "malformed client_id",
                "client_id_malformed",
            )
        client = self._clients.get(client_id)
        if not allow_public:
            # Said before anything about the client: whether client_id names one is not told.
            raise _fail(
                CONFIDENTIAL_ONLY,
                f"client_id {client_id if client is not None else '(unknown)'} without "
                "credentials at a confidential-only endpoint",
                "public_client_refused",
                client,
            )
        if client is None:
            raise _fail(NOT_A_PUBLIC_CLIENT, "unknown client", "unknown_client")
        if client.auth_method != "none":
            raise _fail(
                NOT_A_PUBLIC_CLIENT,
                f"client {client_id} is registered for {client.auth_method}, not none",
                "auth_method_mismatch",
                client,
            )
        if not client.is_public:
            raise _fail(
                NOT_A_PUBLIC_CLIENT,
                "client with method none is not public",
                "client_not_public",
                client,
            )
        return client

    def _client_secret_basic(self, authorization: str, body_client_id: str | None) -> Client:
        client_id, secret = _parse_basic(authorization)
        if body_client_id is not None and body_client_id != client_id:
            raise _fail(
                "the client_id parameter must equal the client_id of the Authorization header",
                "Basic client_id differs from the client_id parameter",
                "client_id_mismatch",
            )
        if not _CLIENT_ID_SYNTAX.fullmatch(client_id):
            raise _fail(
                f"client_id is malformed ({_CLIENT_ID_RULE})",
                "malformed client_id",
                "client_id_malformed",
            )
        client = self._clients.get(client_id)
        stored = self._clients.secret_digest(client_id) if client is not None else None
        matches = equal(secret_digest(secret), stored or _DUMMY_DIGEST)
        if client is None:
            raise _fail(BASIC_NOT_VERIFIED, "unknown client", "unknown_client")
        if client.auth_method != "client_secret_basic" or stored is None:
            raise _fail(
                BASIC_NOT_VERIFIED,
                f"client {client_id} is not registered for client_secret_basic",
                "auth_method_mismatch",
                client,
            )
        if not matches:
            raise _fail(
                BASIC_NOT_VERIFIED,
                f"client {client_id}: wrong secret",
                "client_secret_wrong",
                client,
            )
        return client


def _signature_verifies(parsed: jws.ParsedJWS, keys: Mapping[str, PublicKey], kid: Any) -> bool:
    """Whether one of ``keys`` (the one ``kid`` names, else those fitting the alg) verifies the
    assertion. With none to try, a stand-in key of the alg is tried instead (and never
    verifies), so that an unknown client or kid costs what a wrong key costs."""
    if kid is not None:
        named = keys.get(kid) if isinstance(kid, str) else None
        candidates = [named] if named is not None else []
    else:
        candidates = [key for key in keys.values() if key_fits_alg(key, parsed.alg)]
    if not candidates:
        with contextlib.suppress(JoseError):
            jws.verify_signature(parsed, _stand_in_key(parsed.alg))
        return False
    for key in candidates:
        try:
            jws.verify_signature(parsed, key)
        except JoseError:
            continue
        return True
    return False


@functools.cache
def _stand_in_key(alg: str) -> PublicKey:
    """A fixed public key of ``alg``'s type that verifies nothing anyone signed: its private
    half is derived from a public label (EC, Ed25519) or does not exist (RSA: the modulus is
    a hash expansion, not a product of two known primes)."""
    label = b"trustanchor client_auth stand-in key"
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}.get(alg, ec.SECP521R1())
        scalar = int.from_bytes(hashlib.sha256(label).digest(), "big")
        return ec.derive_private_key(scalar, curve).public_key()
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.from_private_bytes(
            hashlib.sha256(label).digest()
        ).public_key()
    stream = b"".join(hashlib.sha256(label + bytes([i])).digest() for i in range(8))
    modulus = int.from_bytes(stream, "big") | (1 << 2047) | 1
    return rsa.RSAPublicNumbers(65537, modulus).public_key()


def _single_values(form: Mapping[str, list[str]]) -> dict[str, str]:
    """Each parameter once (RFC 6749 §3.2: parameters must not be included more than once)."""
    params: dict[str, str] = {}
    for name, values in form.items():
        if len(values) > 1:
            raise repeated(name)
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
