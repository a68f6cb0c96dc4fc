"""One upstream OpenID Provider (anchor kind ``oidc``) as seen by us, its relying party: its
discovery metadata and signing keys, fetched only through the injected Fetcher and cached.

- Discovery (OpenID Connect Discovery 1.0): ``<issuer>/.well-known/openid-configuration``; the
  document's ``issuer`` must equal the configured issuer *exactly* (a provider may not speak for
  another: the mix-up defence starts here); endpoints ``https`` (``http`` only where the settings
  were parsed with ``allow_http``); ``authorization_endpoint``, ``token_endpoint``, ``jwks_uri``
  required, ``userinfo_endpoint`` when the anchor uses UserInfo; response type ``code``; PKCE
  ``S256`` when the provider lists its methods; a PAR endpoint when ``par = "always"``. Cached for
  ``metadata_ttl`` seconds.
- JWKS: fetched from ``jwks_uri``, keys imported strictly (RSA ≥ 2048 bits, EC P-256, no
  symmetric keys, no private members) and cached. A ``kid`` we do not know triggers a refetch
  (key rotation), but at most ``jwks_refetch_limit`` per ``jwks_refetch_window`` seconds: a flood
  of made-up ``kid``s cannot turn us into a load generator against the provider; beyond the
  budget unknown keys fail closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.anchors.id_token import IdTokenClaims
from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.clock import Clock
from trustanchor.domain.anchors import Anchor
from trustanchor.jose.jwk import PublicKey

DISCOVERY_PATH = "/.well-known/openid-configuration"

REASONS: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The members of the provider's discovery document we rely on, validated."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    pushed_authorization_request_endpoint: str | None
    require_pushed_authorization_requests: bool
    authorization_response_iss_parameter_supported: bool
    code_challenge_methods_supported: tuple[str, ...] | None
    id_token_signing_alg_values_supported: tuple[str, ...]
    token_endpoint_auth_methods_supported: tuple[str, ...]
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] | None
    acr_values_supported: tuple[str, ...] | None
    claims_parameter_supported: bool


class UpstreamProvider:
    """The relying-party view of one ``oidc`` anchor. Construction does no network; the first
    use fetches discovery, then JWKS. Thread-safe enough for the service: the caches are replaced
    whole, never mutated in place."""

    def __init__(
        self, anchor: Anchor, settings: OidcSettings, *, fetcher: Fetcher, clock: Clock
    ) -> None:
        self.anchor = anchor
        self.settings = settings
        self._fetcher = fetcher
        self._clock = clock

    def metadata(self) -> ProviderMetadata:
        """The provider's validated discovery metadata (cached for ``metadata_ttl``)."""
        raise AnchorFailure("not_implemented")

    def uses_par(self) -> bool:
        """Whether the authorization request goes through the provider's PAR endpoint."""
        raise AnchorFailure("not_implemented")

    def client_assertion_audience(self) -> str:
        """The ``aud`` of our ``private_key_jwt`` assertion: the issuer, or the token endpoint."""
        raise AnchorFailure("not_implemented")

    def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: the authorization response's ``iss`` must equal the issuer whenever the
        provider advertises ``authorization_response_iss_parameter_supported`` (and must equal it
        whenever present at all)."""
        raise AnchorFailure("not_implemented")

    def keys_for(self, header: Mapping[str, Any]) -> Sequence[PublicKey]:
        """The provider's keys that may have signed a JWS with this ``header``; refetches the
        JWKS (within the budget) on an unknown ``kid``."""
        raise AnchorFailure("not_implemented")

    def validate_id_token(
        self,
        token: Any,
        *,
        nonce: str,
        at: int,
        max_age: int | None = None,
        access_token: str | None = None,
        clock_skew: int = 30,
    ) -> IdTokenClaims:
        """:func:`trustanchor.anchors.id_token.validate_id_token` with this provider's keys,
        issuer, client_id and algorithms, at instant ``at`` (the clock only ages the caches).
        With ``max_age``, ``auth_time`` is required and checked."""
        raise AnchorFailure("not_implemented")


def explain(reason: str) -> str:
    return REASONS.get(reason, "Your identity provider could not be reached or understood.")
