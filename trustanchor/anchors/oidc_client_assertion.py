"""Our ``private_key_jwt`` client assertion towards an upstream provider's token (and PAR)
endpoint (OpenID Connect Core 1.0, section 9; RFC 7523).

``iss`` = ``sub`` = our ``client_id`` at that provider; ``aud`` the provider's issuer identifier
by default (RFC 7523bis / FAPI 2.0: the issuer is the one audience that cannot be confused with
another provider's endpoint), or its token endpoint where the anchor sets
``assertion_audience = "token_endpoint"`` (the Digital Agency's published samples do); a short
``exp``; a fresh ``jti`` from the caller's randomness. The key is ours for that provider, handed
in by the caller (the key store); its algorithm follows from the key type.
"""

from __future__ import annotations

from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.jose.jwk import PrivateKey

ASSERTION_LIFETIME = 60
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
    (ES256 for P-256, PS256 for RSA); ``kid`` names the key in the header."""
    raise NotImplementedError
