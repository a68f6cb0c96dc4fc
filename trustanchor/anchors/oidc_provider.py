"""One upstream OpenID Provider (anchor kind ``oidc``) as seen by us, its relying party: its
discovery metadata and signing keys, fetched only through the injected Fetcher and cached.

- Discovery (OpenID Connect Discovery 1.0): ``<issuer>/.well-known/openid-configuration`` (a
  trailing ``/`` of the issuer removed first, section 4); the document's ``issuer`` must equal
  the configured issuer *exactly* (section 4.3: a provider may not speak for another; the mix-up
  defence starts here). Endpoints must be ``https`` (``http`` only when the configured issuer
  itself is ``http``, which the settings admit outside production only) without fragments;
  ``authorization_endpoint``, ``token_endpoint`` and ``jwks_uri`` are required,
  ``userinfo_endpoint`` when the anchor uses UserInfo, a PAR endpoint when ``par = "always"``;
  ``response_types_supported`` must list ``code``; ``code_challenge_methods_supported``, when
  listed, ``S256``; ``token_endpoint_auth_methods_supported`` ``private_key_jwt``; at least one
  of our ID token algorithms must be among the provider's; asking for ``verified_claims`` needs
  ``claims_parameter_supported`` and (when listed) our trust framework. Cached for
  ``metadata_ttl`` seconds of the injected clock; an expired cache that cannot be refreshed fails
  closed (no stale metadata).
- JWKS: fetched from ``jwks_uri``; keys imported strictly (jose/jwk.py: public only, RSA 2048 to
  4096 bits, points on the curve) and kept only when an ID token could use them: RSA and EC
  P-256 signing keys (``use`` absent or ``sig``; a key's ``alg``, when given, restricts it).
  Symmetric or private material refuses the whole document. Cached for ``metadata_ttl``.
- A ``kid`` we do not know triggers a refetch (the provider rotated its keys), bypassing any
  HTTP cache, but at most ``jwks_refetch_limit`` times per ``jwks_refetch_window`` seconds: a
  flood of made-up ``kid``s cannot turn us into a load generator against the provider, and
  beyond the budget unknown keys simply fail closed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from trustanchor import strict_json
from trustanchor.anchors import id_token, oidc_authorization_request, oidc_claims
from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.fetcher import Fetcher, FetchError
from trustanchor.anchors.id_token import IdTokenClaims
from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.clock import Clock
from trustanchor.domain.anchors import Anchor
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PRIVATE_MEMBERS, PublicKey, key_fits_alg, public_key_from_jwk
from trustanchor.jose.jwk import thumbprint as jwk_thumbprint
from trustanchor.jose.jws import ASYMMETRIC_ALGS

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_JWKS_KEYS = 32
MAX_LIST_ENTRIES = 64
PRIVATE_KEY_JWT = "private_key_jwt"

# Every reason code of the oidc anchor kind (ID token, claims, request, provider), in one place
# for the pages that explain a failed upstream login.
REASONS: dict[str, str] = {
    **id_token.REASONS,
    **oidc_claims.REASONS,
    **oidc_authorization_request.REASONS,
    "provider_unreachable": "Your identity provider cannot be reached right now; please try "
    "again later.",
    "provider_metadata_invalid": "Your identity provider's configuration could not be accepted.",
    "provider_issuer_mismatch": "Your identity provider's configuration names a different "
    "provider.",
    "provider_unsupported": "Your identity provider does not support a sign-in we can accept.",
    "provider_keys_invalid": "Your identity provider's published keys could not be accepted.",
    "response_issuer_mismatch": "The answer did not come from the identity provider you chose.",
    "response_issuer_missing": "The answer does not say which identity provider sent it.",
    "anchor_suspended": "This identity provider is not accepted at the moment.",
    "anchor_kind_unsupported": "This sign-in method is not available.",
}


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


@dataclass(frozen=True, slots=True)
class _ProviderKey:
    key: PublicKey
    alg: str | None  # the JWK's own "alg", when it names one


class UpstreamProvider:
    """The relying-party view of one ``oidc`` anchor. Construction does no network; the first
    use fetches discovery, then JWKS. Safe to share between threads: the caches are replaced
    whole under a lock, never mutated in place."""

    def __init__(
        self, anchor: Anchor, settings: OidcSettings, *, fetcher: Fetcher, clock: Clock
    ) -> None:
        if anchor.kind != "oidc":
            raise ValueError(f"anchor {anchor.id}: kind {anchor.kind!r} is not oidc")
        self.anchor = anchor
        self.settings = settings
        self._fetcher = fetcher
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: tuple[int, ProviderMetadata] | None = None
        self._keys: tuple[int, Mapping[str, tuple[_ProviderKey, ...]]] | None = None
        self._refetches: tuple[int, ...] = ()  # instants of kid-driven refetches

    # -- discovery -----------------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return self.settings.issuer.rstrip("/") + DISCOVERY_PATH

    def metadata(self) -> ProviderMetadata:
        """The provider's validated discovery metadata (cached for ``metadata_ttl``)."""
        now = self._clock.now()
        cached = self._metadata
        if cached is not None and now < cached[0] + self.settings.metadata_ttl:
            return cached[1]
        document = self._fetch_json(
            self.discovery_url, "application/json", fresh=False, invalid="provider_metadata_invalid"
        )
        metadata = parse_metadata(document, self.settings)
        with self._lock:
            self._metadata = (now, metadata)
        return metadata

    def uses_par(self) -> bool:
        """Whether the authorization request goes through the provider's PAR endpoint."""
        if self.settings.par == "never":
            return False
        return self.metadata().pushed_authorization_request_endpoint is not None

    def client_assertion_audience(self) -> str:
        """The ``aud`` of our ``private_key_jwt`` assertion: the issuer, or the token endpoint."""
        if self.settings.assertion_audience == "token_endpoint":
            return self.metadata().token_endpoint
        return self.settings.issuer

    def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: the authorization response's ``iss`` must be present and equal to the
        issuer whenever the provider advertises ``authorization_response_iss_parameter_supported``,
        and equal to it whenever present at all."""
        if iss is None:
            if self.metadata().authorization_response_iss_parameter_supported:
                raise AnchorFailure("response_issuer_missing")
            return
        if iss != self.settings.issuer:
            raise AnchorFailure("response_issuer_mismatch", f"iss {str(iss)[:200]!r}")

    # -- keys ----------------------------------------------------------------------------------

    def keys_for(self, header: Mapping[str, Any]) -> Sequence[PublicKey]:
        """The provider's keys that may have signed a JWS with this ``header`` (never a key
        carried in the header itself); refetches the JWKS, within the budget, when none fits.
        Raises AnchorFailure ``unknown_provider_key`` when no published key fits."""
        found = _candidates(self._current_keys(), header)
        if found:
            return found
        if not self._spend_refetch():
            raise AnchorFailure(
                "unknown_provider_key",
                f"kid {str(header.get('kid'))[:100]!r}; refetch budget spent",
            )
        found = _candidates(self._load_keys(fresh=True), header)
        if not found:
            raise AnchorFailure("unknown_provider_key", f"kid {str(header.get('kid'))[:100]!r}")
        return found

    def _current_keys(self) -> Mapping[str, tuple[_ProviderKey, ...]]:
        cached = self._keys
        if cached is not None and self._clock.now() < cached[0] + self.settings.metadata_ttl:
            return cached[1]
        return self._load_keys(fresh=False)

    def _load_keys(self, *, fresh: bool) -> Mapping[str, tuple[_ProviderKey, ...]]:
        now = self._clock.now()
        document = self._fetch_json(
            self.metadata().jwks_uri,
            "application/jwk-set+json, application/json",
            fresh=fresh,
            invalid="provider_keys_invalid",
        )
        keys = parse_jwks(document)
        with self._lock:
            self._keys = (now, keys)
        return keys

    def _spend_refetch(self) -> bool:
        """Take one refetch from the budget of the current window; False when it is spent."""
        now = self._clock.now()
        window = self.settings.jwks_refetch_window
        with self._lock:
            recent = tuple(t for t in self._refetches if now - t < window)
            if len(recent) >= self.settings.jwks_refetch_limit:
                self._refetches = recent
                return False
            self._refetches = (*recent, now)
            return True

    # -- ID token ------------------------------------------------------------------------------

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
        return id_token.validate_id_token(
            token,
            keys=self.keys_for,
            issuer=self.settings.issuer,
            client_id=self.settings.client_id,
            nonce=nonce,
            at=at,
            algs=self.settings.algs,
            max_age=max_age,
            clock_skew=clock_skew,
            access_token=access_token,
            at_hash_required=self.settings.require_at_hash,
        )

    # -- fetching ------------------------------------------------------------------------------

    def _fetch_json(self, url: str, accept: str, *, fresh: bool, invalid: str) -> Any:
        limit = self.settings.max_metadata_bytes
        try:
            if fresh:  # past any HTTP cache: the provider has just rotated its keys
                body = self._fetcher.get_authorized(
                    url, accept=accept, max_bytes=limit, headers={"Cache-Control": "no-cache"}
                )
            else:
                body = self._fetcher.get(url, accept=accept, max_bytes=limit)
        except FetchError as exc:
            raise AnchorFailure("provider_unreachable", str(exc)) from exc
        try:
            return strict_json.loads(body, max_depth=8, max_bytes=limit)
        except strict_json.StrictJSONError as exc:
            raise AnchorFailure(invalid, str(exc)) from exc


def parse_metadata(document: Any, settings: OidcSettings) -> ProviderMetadata:
    """Validate a discovery document against the anchor's settings (see the module docstring)."""
    if not isinstance(document, dict):
        raise AnchorFailure("provider_metadata_invalid", "not a JSON object")
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or issuer != settings.issuer:
        raise AnchorFailure("provider_issuer_mismatch", f"issuer {str(issuer)[:200]!r}")
    allow_http = urlsplit(settings.issuer).scheme == "http"
    response_types = _names(document, "response_types_supported", required=True) or ()
    if "code" not in response_types:
        raise AnchorFailure("provider_unsupported", "response type code not supported")
    pkce = _names(document, "code_challenge_methods_supported")
    if pkce is not None and "S256" not in pkce:
        raise AnchorFailure("provider_unsupported", "PKCE S256 not supported")
    id_token_algs = _names(document, "id_token_signing_alg_values_supported", required=True) or ()
    if not set(id_token_algs) & set(settings.algs):
        raise AnchorFailure("provider_unsupported", "no ID token algorithm in common")
    auth_methods = _names(document, "token_endpoint_auth_methods_supported") or (
        "client_secret_basic",  # the default, Discovery 1.0 section 3
    )
    if PRIVATE_KEY_JWT not in auth_methods:
        raise AnchorFailure("provider_unsupported", "private_key_jwt not supported")
    par_endpoint = _endpoint(
        document, "pushed_authorization_request_endpoint", allow_http, required=False
    )
    require_par = _flag(document, "require_pushed_authorization_requests")
    if settings.par == "always" and par_endpoint is None:
        raise AnchorFailure("provider_unsupported", "no PAR endpoint, but par = always")
    if settings.par == "never" and require_par:
        raise AnchorFailure("provider_unsupported", "the provider requires PAR, but par = never")
    if require_par and par_endpoint is None:
        raise AnchorFailure("provider_metadata_invalid", "PAR required without an endpoint")
    userinfo = _endpoint(document, "userinfo_endpoint", allow_http, required=settings.userinfo)
    claims_parameter = _flag(document, "claims_parameter_supported")
    if settings.verified_claims:
        if not claims_parameter:
            raise AnchorFailure("provider_unsupported", "claims parameter not supported")
        frameworks = _names(document, "trust_frameworks_supported")
        if frameworks is not None and settings.trust_framework not in frameworks:
            raise AnchorFailure("provider_unsupported", "our trust framework is not supported")
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=_required_endpoint(document, "authorization_endpoint", allow_http),
        token_endpoint=_required_endpoint(document, "token_endpoint", allow_http),
        jwks_uri=_required_endpoint(document, "jwks_uri", allow_http),
        userinfo_endpoint=userinfo,
        pushed_authorization_request_endpoint=par_endpoint,
        require_pushed_authorization_requests=require_par,
        authorization_response_iss_parameter_supported=_flag(
            document, "authorization_response_iss_parameter_supported"
        ),
        code_challenge_methods_supported=pkce,
        id_token_signing_alg_values_supported=id_token_algs,
        token_endpoint_auth_methods_supported=auth_methods,
        token_endpoint_auth_signing_alg_values_supported=_names(
            document, "token_endpoint_auth_signing_alg_values_supported"
        ),
        acr_values_supported=_names(document, "acr_values_supported"),
        claims_parameter_supported=claims_parameter,
    )


def _required_endpoint(document: Mapping[str, Any], name: str, allow_http: bool) -> str:
    value = _endpoint(document, name, allow_http, required=True)
    assert value is not None  # required=True never returns None
    return value


def _endpoint(
    document: Mapping[str, Any], name: str, allow_http: bool, *, required: bool
) -> str | None:
    value = document.get(name)
    if value is None:
        if required:
            raise AnchorFailure("provider_metadata_invalid", f"{name} missing")
        return None
    if not isinstance(value, str) or len(value) > 2048 or not value.isascii():
        raise AnchorFailure("provider_metadata_invalid", f"{name} is not a URL")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise AnchorFailure("provider_metadata_invalid", f"{name} is not a URL") from exc
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise AnchorFailure("provider_metadata_invalid", f"{name} must be an https URL")
    if parts.fragment or "#" in value or any(ch.isspace() for ch in value):
        raise AnchorFailure("provider_metadata_invalid", f"{name} must not have a fragment")
    if parts.username is not None or parts.password is not None:
        raise AnchorFailure("provider_metadata_invalid", f"{name} carries user information")
    return value


def _names(
    document: Mapping[str, Any], name: str, *, required: bool = False
) -> tuple[str, ...] | None:
    value = document.get(name)
    if value is None:
        if required:
            raise AnchorFailure("provider_metadata_invalid", f"{name} missing")
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_LIST_ENTRIES
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise AnchorFailure("provider_metadata_invalid", f"{name} is not a list of strings")
    return tuple(value)


def _flag(document: Mapping[str, Any], name: str) -> bool:
    value = document.get(name, False)
    if not isinstance(value, bool):
        raise AnchorFailure("provider_metadata_invalid", f"{name} is not true or false")
    return value


def parse_jwks(document: Any) -> Mapping[str, tuple[_ProviderKey, ...]]:
    """The provider's ID token keys by ``kid`` (RFC 7638 thumbprint for keys without one)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise AnchorFailure("provider_keys_invalid", "not a JWKS document")
    entries = document["keys"]
    if len(entries) > MAX_JWKS_KEYS:
        raise AnchorFailure("provider_keys_invalid", "too many keys")
    result: dict[str, tuple[_ProviderKey, ...]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise AnchorFailure("provider_keys_invalid", "key is not an object")
        if entry.get("kty") == "oct" or PRIVATE_MEMBERS & entry.keys():
            raise AnchorFailure("provider_keys_invalid", "symmetric or private key material")
        use, alg, kid = entry.get("use"), entry.get("alg"), entry.get("kid")
        if use is not None and use != "sig":
            continue  # encryption keys are not ours to use
        if alg is not None and (not isinstance(alg, str) or alg not in ASYMMETRIC_ALGS):
            continue  # a key for another purpose (RSA-OAEP, ECDH-ES, ...)
        if entry.get("kty") not in ("RSA", "EC") or (
            entry.get("kty") == "EC" and entry.get("crv") != "P-256"
        ):
            continue  # a key type no accepted ID token algorithm uses
        try:
            key = public_key_from_jwk(entry)
            name = kid if isinstance(kid, str) and kid else jwk_thumbprint(entry)
        except JoseError as exc:
            raise AnchorFailure("provider_keys_invalid", exc.detail) from exc
        if alg is not None and not key_fits_alg(key, alg):
            raise AnchorFailure("provider_keys_invalid", f"key {name[:100]!r} does not fit {alg}")
        result[name] = (*result.get(name, ()), _ProviderKey(key, alg))
    return result


def _candidates(
    keys: Mapping[str, tuple[_ProviderKey, ...]], header: Mapping[str, Any]
) -> tuple[PublicKey, ...]:
    alg = header.get("alg")
    if not isinstance(alg, str):
        return ()
    kid = header.get("kid")
    if kid is not None:
        entries = keys.get(kid, ()) if isinstance(kid, str) else ()
    else:
        entries = tuple(entry for group in keys.values() for entry in group)
    return tuple(
        entry.key
        for entry in entries
        if key_fits_alg(entry.key, alg) and (entry.alg is None or entry.alg == alg)
    )


def explain(reason: str) -> str:
    """Plain-words explanation of a reason code (for the person), with a safe fallback."""
    return REASONS.get(reason, "Your identity provider could not be reached or understood.")
