"""Validation of an upstream OpenID Provider's ID token (OpenID Connect Core 1.0, 3.1.3.7).

The checks, in order; each refusal an :class:`AnchorFailure` with a code from :data:`REASONS`:

1. shape before any cryptography: a string within ``max_bytes``, compact JWS with three
   segments (a JWE's five are refused), strict base64url and strict JSON header;
2. header: ``alg`` in the anchor's allow-list (never ``none``, never HMAC: with HS256 the
   provider's *public* RSA key could be abused as the HMAC secret), no ``crit``/``zip``;
3. key: chosen by ``kid`` among the provider's published keys (``lookup``; the provider's JWKS
   cache decides about refetching), of the type ``alg`` is meant for; keys in the header
   (``jwk``, ``jku``, ``x5u``, ``x5c``) are never trusted;
4. signature;
5. claims: ``iss`` exactly the configured issuer, ``aud`` contains our ``client_id``, ``azp``
   equal to our ``client_id`` when present and required when there are several audiences,
   ``nonce`` constant-time equal to the one we sent, ``exp``/``iat`` with ``clock_skew``,
   ``auth_time`` not in the future and within ``max_age`` when we asked for one (present when
   required), ``sub`` a non-empty string of at most 255 ASCII-safe characters;
6. ``at_hash`` against the access token when the token carries it (required when the provider's
   rules say so): the left half of the hash named by ``alg``; an ``alg`` whose hash we do not know
   fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustanchor.anchors.base import AnchorFailure
from trustanchor.jose.jwk import PublicKey

DEFAULT_MAX_BYTES = 16384
MAX_SUB_LENGTH = 255

# header → the provider keys that may have signed it (raises AnchorFailure when none can).
KeyLookup = Callable[[Mapping[str, Any]], Sequence[PublicKey]]

REASONS: dict[str, str] = {}


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
    """Validate ``token`` at instant ``at``; raise AnchorFailure on any problem (never anything
    else, whatever ``token`` is)."""
    raise AnchorFailure("not_implemented")


def explain(reason: str) -> str:
    return REASONS.get(reason, "The sign-in at your identity provider could not be verified.")
