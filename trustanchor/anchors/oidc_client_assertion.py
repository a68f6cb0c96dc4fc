"""Our ``private_key_jwt`` client assertion towards an upstream provider's token (and PAR)
endpoint (OpenID Connect Core 1.0, section 9; RFC 7523).

``iss`` = ``sub`` = our ``client_id`` at that provider; ``aud`` the provider's issuer identifier
by default (a single string: the issuer cannot be confused with another provider's endpoint, the
concern of draft-ietf-oauth-rfc7523bis and FAPI 2.0), or its token endpoint where the anchor sets
``assertion_audience = "token_endpoint"`` (the Digital Agency's published samples do); ``iat``
and a short ``exp``; a fresh ``jti`` from the caller's randomness. The key is ours for that
provider, handed in by the caller (the key store); its algorithm follows from the key type
unless the caller names one the provider lists.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.jose import jws
from trustanchor.jose.jwk import PrivateKey, key_fits_alg

ASSERTION_LIFETIME = 60
MAX_ASSERTION_LIFETIME = 300
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def client_assertion(
    settings: OidcSettings,
    *,
    key: PrivateKey,
    token_endpoint: str,
    at: int,
    jti: str,
    kid: str | None = None,
    alg: str | None = None,
    lifetime: int = ASSERTION_LIFETIME,
) -> str:
    """The signed assertion (compact JWS). ``alg`` defaults to the key's natural algorithm
    (ES256 for P-256, RS256 for RSA, the one every provider accepts); ``kid`` names the key in
    the header. Raises ValueError on a key/alg mismatch or an unusable argument."""
    if not jti or len(jti) < 16:
        raise ValueError("jti: must be a fresh random value of at least 16 characters")
    if not 0 < lifetime <= MAX_ASSERTION_LIFETIME:
        raise ValueError(f"lifetime: must be 1 to {MAX_ASSERTION_LIFETIME} seconds")
    chosen = alg or _natural_alg(key)
    if chosen not in jws.ASYMMETRIC_ALGS or not key_fits_alg(key.public_key(), chosen):
        raise ValueError(f"alg: {chosen} does not fit the client key")
    audience = (
        token_endpoint if settings.assertion_audience == "token_endpoint" else settings.issuer
    )
    if not audience:
        raise ValueError("token_endpoint: required when assertion_audience is token_endpoint")
    claims = {
        "iss": settings.client_id,
        "sub": settings.client_id,
        "aud": audience,
        "iat": at,
        "exp": at + lifetime,
        "jti": jti,
    }
    headers = {"kid": kid} if kid else None
    return jws.sign(claims, key, alg=chosen, headers=headers)


def _natural_alg(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise ValueError("key: use an RSA or EC P-256 key for the client assertion")
