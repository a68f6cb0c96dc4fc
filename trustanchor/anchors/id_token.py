"""Validation of an upstream OpenID Provider's ID token (OpenID Connect Core 1.0, 3.1.3.7).

The checks, in order; each refusal an :class:`AnchorFailure` with a code from :data:`REASONS`,
and nothing else is ever raised, whatever ``token`` is:

1. shape before any cryptography (``jose/jws.parse``, the project's one JWS parser): a string
   within ``max_bytes``, compact JWS with three segments (a JWE's five are refused), strict
   base64url and strict JSON header, no ``crit``/``zip``/``b64``;
2. header: ``alg`` in the anchor's allow-list and asymmetric (never ``none``, never HMAC: with
   HS256 the provider's *public* RSA key could be used as the HMAC secret by anyone); ``typ``
   absent or ``JWT`` (another JWT the provider signs, a logout token or an access token, is not
   an ID token);
3. key: chosen by ``kid`` among the provider's published keys (``keys``; the provider's JWKS
   cache decides about refetching), of the type ``alg`` is meant for; keys carried in the header
   (``jwk``, ``jku``, ``x5u``, ``x5c``) are never consulted;
4. signature;
5. claims: ``iss`` exactly the configured issuer; ``aud`` contains our ``client_id``; ``azp``
   equal to our ``client_id`` when present and required when there are several audiences;
   ``nonce`` constant-time equal to the one we sent; ``exp`` not passed and ``iat`` not in the
   future (with ``clock_skew``; NumericDates must be integers); ``auth_time`` not in the future
   and, when we asked for ``max_age``, present and within it; ``sub`` 1 to 255 printable ASCII
   characters (Core 1.0, 2);
6. ``at_hash`` against the access token whenever the token carries one (and required when the
   provider's rules say so): base64url of the left half of the hash that ``alg`` names; an
   ``alg`` whose hash we do not know fails closed rather than being checked with a guess.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeGuard

from trustanchor import digests
from trustanchor.anchors.base import AnchorFailure
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey

DEFAULT_MAX_BYTES = 16384
MAX_CLAIMS_DEPTH = 12  # verified_claims → verification → evidence → document → issuer → address
MAX_SUB_LENGTH = 255
MAX_AUDIENCES = 8
MAX_AMR = 16

# header → the provider keys that may have signed it (raises AnchorFailure when none can).
KeyLookup = Callable[[Mapping[str, Any]], Sequence[PublicKey]]

# OpenID Connect Core 1.0, 3.1.3.6: the hash used by the ID token's alg. Nothing else is guessed.
AT_HASH_ALGORITHMS: dict[str, Callable[[bytes], Any]] = {
    "RS256": hashlib.sha256,
    "PS256": hashlib.sha256,
    "ES256": hashlib.sha256,
    "RS384": hashlib.sha384,
    "PS384": hashlib.sha384,
    "ES384": hashlib.sha384,
    "RS512": hashlib.sha512,
    "PS512": hashlib.sha512,
    "ES512": hashlib.sha512,
}

REASONS: dict[str, str] = {
    "id_token_malformed": "Your identity provider's answer could not be read.",
    "id_token_too_large": "Your identity provider's answer is too large.",
    "id_token_encrypted": "Your identity provider sent an encrypted answer we cannot accept.",
    "id_token_alg_not_allowed": "Your identity provider signed its answer in a way we do not "
    "accept.",
    "id_token_wrong_typ": "Your identity provider's answer is not a sign-in confirmation.",
    "id_token_signature_invalid": "Your identity provider's answer is not validly signed.",
    "id_token_wrong_issuer": "The answer comes from a different identity provider.",
    "id_token_wrong_audience": "Your identity provider's answer was meant for another service.",
    "id_token_wrong_azp": "Your identity provider's answer was issued to another service.",
    "id_token_nonce_mismatch": "Your identity provider's answer belongs to a different sign-in "
    "attempt.",
    "id_token_expired": "Your identity provider's answer has expired; please try again.",
    "id_token_iat_in_future": "Your identity provider's answer is dated in the future.",
    "id_token_missing_subject": "Your identity provider did not say who you are.",
    "auth_time_missing": "Your identity provider did not say when you signed in.",
    "auth_time_in_future": "Your identity provider reports a sign-in time in the future.",
    "login_too_old": "Your sign-in at your identity provider is too old; please sign in again.",
    "at_hash_missing": "Your identity provider's answer is not bound to its access token.",
    "at_hash_mismatch": "Your identity provider's answer does not match its access token.",
    "at_hash_alg_unknown": "Your identity provider's answer cannot be matched to its access token.",
    "unknown_provider_key": "Your identity provider signed with a key it has not published.",
}


@dataclass(frozen=True, slots=True)
class IdTokenClaims:
    """A validated ID token. ``claims`` holds every member of the payload (read-only)."""

    issuer: str
    subject: str
    audience: tuple[str, ...]
    issued_at: int
    expires_at: int
    nonce: str
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]
    azp: str | None
    at_hash: str | None
    claims: Mapping[str, Any] = field(default_factory=dict)


def validate_id_token(
    token: Any,
    *,
    keys: KeyLookup,
    issuer: str,
    client_id: str,
    nonce: str,
    at: int,
    algs: Sequence[str],
    max_age: int | None = None,
    auth_time_required: bool = False,
    clock_skew: int = 30,
    access_token: str | None = None,
    at_hash_required: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IdTokenClaims:
    """Validate ``token`` at instant ``at``; raise AnchorFailure on any problem. With
    ``max_age`` (what we sent in the authorization request) ``auth_time`` is required."""
    if not nonce:
        raise AnchorFailure("id_token_nonce_mismatch", "no nonce was sent")
    parsed = _parse(token, algs=tuple(algs), max_bytes=max_bytes)
    typ = parsed.header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _JWT_TYPES):
        raise AnchorFailure("id_token_wrong_typ", f"typ {str(typ)[:100]!r}")
    candidates = keys(parsed.header)
    if not candidates:
        raise AnchorFailure("unknown_provider_key", f"kid {str(parsed.header.get('kid'))[:100]!r}")
    if not _signed_by_any(parsed, candidates):
        raise AnchorFailure("id_token_signature_invalid")
    try:
        payload = parsed.claims(max_depth=MAX_CLAIMS_DEPTH)
    except JoseError as exc:
        raise AnchorFailure("id_token_malformed", exc.detail) from exc
    if payload.get("iss") != issuer:
        raise AnchorFailure("id_token_wrong_issuer", f"iss {str(payload.get('iss'))[:200]!r}")
    audience = _audience(payload.get("aud"), client_id)
    azp = payload.get("azp")
    if azp is not None and azp != client_id:
        raise AnchorFailure("id_token_wrong_azp", f"azp {str(azp)[:200]!r}")
    if azp is None and len(audience) > 1:
        raise AnchorFailure("id_token_wrong_azp", "several audiences and no azp")
    received_nonce = payload.get("nonce")
    if not isinstance(received_nonce, str) or not _equal(received_nonce, nonce):
        raise AnchorFailure("id_token_nonce_mismatch")
    exp, iat = payload.get("exp"), payload.get("iat")
    if not _is_int(exp) or not _is_int(iat):
        raise AnchorFailure("id_token_malformed", "exp and iat must be integers")
    if at >= exp + clock_skew:
        raise AnchorFailure("id_token_expired", f"expired {at - exp}s ago")
    if iat > at + clock_skew:
        raise AnchorFailure("id_token_iat_in_future", f"{iat - at}s ahead")
    auth_time = _auth_time(
        payload.get("auth_time"),
        at=at,
        max_age=max_age,
        required=auth_time_required or max_age is not None,
        clock_skew=clock_skew,
    )
    sub = payload.get("sub")
    if not _valid_sub(sub):
        raise AnchorFailure("id_token_missing_subject")
    at_hash = _check_at_hash(
        payload.get("at_hash"), parsed.alg, access_token, required=at_hash_required
    )
    acr = payload.get("acr")
    return IdTokenClaims(
        issuer=issuer,
        subject=sub,
        audience=audience,
        issued_at=iat,
        expires_at=exp,
        nonce=received_nonce,
        auth_time=auth_time,
        acr=acr if isinstance(acr, str) and 0 < len(acr) <= 255 else None,
        amr=_amr(payload.get("amr")),
        azp=azp,
        at_hash=at_hash,
        claims=MappingProxyType(payload),
    )


_JWT_TYPES = frozenset({"jwt", "application/jwt"})
_PARSE_REASONS = {
    "too_large": "id_token_too_large",
    "alg_not_allowed": "id_token_alg_not_allowed",
}


def _parse(token: Any, *, algs: tuple[str, ...], max_bytes: int) -> jws.ParsedJWS:
    if isinstance(token, str) and len(token) <= max_bytes and token.count(".") == 4:
        raise AnchorFailure("id_token_encrypted", "JWE is not accepted")
    try:
        return jws.parse(token, max_bytes=max_bytes, allowed_algs=algs)
    except JoseError as exc:
        if exc.reason == "unsupported" and isinstance(token, str) and token.count(".") == 4:
            raise AnchorFailure("id_token_encrypted", exc.detail) from exc
        raise AnchorFailure(
            _PARSE_REASONS.get(exc.reason, "id_token_malformed"), exc.detail
        ) from exc


def _signed_by_any(parsed: jws.ParsedJWS, candidates: Sequence[PublicKey]) -> bool:
    for key in candidates:
        try:
            jws.verify_signature(parsed, key)
            return True
        except JoseError:
            continue
    return False


def _audience(aud: Any, client_id: str) -> tuple[str, ...]:
    if isinstance(aud, str):
        audience: tuple[str, ...] = (aud,)
    elif (
        isinstance(aud, list)
        and 0 < len(aud) <= MAX_AUDIENCES
        and all(isinstance(item, str) for item in aud)
    ):
        audience = tuple(aud)
    else:
        raise AnchorFailure("id_token_wrong_audience", "aud is not a string or list of strings")
    if client_id not in audience:
        raise AnchorFailure("id_token_wrong_audience", "our client_id is not an audience")
    return audience


def _auth_time(
    value: Any, *, at: int, max_age: int | None, required: bool, clock_skew: int
) -> int | None:
    if value is None:
        if required:
            raise AnchorFailure("auth_time_missing")
        return None
    if not _is_int(value):
        raise AnchorFailure("id_token_malformed", "auth_time must be an integer")
    if value > at + clock_skew:
        raise AnchorFailure("auth_time_in_future", f"{value - at}s ahead")
    if max_age is not None and at - value > max_age + clock_skew:
        raise AnchorFailure("login_too_old", f"signed in {at - value}s ago, max_age {max_age}")
    return value


def _check_at_hash(value: Any, alg: str, access_token: str | None, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise AnchorFailure("at_hash_missing")
        return None
    if not isinstance(value, str):
        raise AnchorFailure("id_token_malformed", "at_hash is not a string")
    hash_function = AT_HASH_ALGORITHMS.get(alg)
    if hash_function is None:
        raise AnchorFailure("at_hash_alg_unknown", f"no at_hash rule for alg {alg}")
    if access_token is None:
        if required:
            raise AnchorFailure("at_hash_mismatch", "no access token to compare with")
        return value  # nothing to compare with (no token response yet); kept for the caller
    try:
        digest = hash_function(access_token.encode("ascii")).digest()
    except UnicodeEncodeError as exc:
        raise AnchorFailure("at_hash_mismatch", "access token is not ASCII") from exc
    expected = digests.b64url_encode(digest[: len(digest) // 2])
    if not _equal(value, expected):
        raise AnchorFailure("at_hash_mismatch")
    return value


def _amr(value: Any) -> tuple[str, ...]:
    """``amr`` passed through when it is a short list of short printable strings; otherwise
    dropped (it is informative only: no decision here rests on it)."""
    if (
        isinstance(value, list)
        and len(value) <= MAX_AMR
        and all(
            isinstance(item, str) and 0 < len(item) <= 64 and _printable(item) for item in value
        )
    ):
        return tuple(value)
    return ()


def _valid_sub(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= MAX_SUB_LENGTH and _printable(value)


def _printable(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _equal(received: str, expected: str) -> bool:
    """Constant-time comparison; text UTF-8 cannot encode (lone surrogates) is a mismatch."""
    try:
        received.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return digests.equal(received, expected)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def explain(reason: str) -> str:
    """Plain-words explanation of a reason code (for the person), with a safe fallback."""
    return REASONS.get(reason, "The sign-in at your identity provider could not be verified.")
