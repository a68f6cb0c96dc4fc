"""The kind-specific settings of an ``oidc`` anchor (an upstream eKYC OpenID Provider such as the
Digital Agency's JPKI login app or a bank's own provider), parsed and validated once.

Unlike an ``sd_jwt_vc`` anchor, nothing cryptographic is configured inline: the provider's
metadata and keys come from its discovery document (``<issuer>/.well-known/openid-configuration``)
through the Fetcher, and the *issuer* configured here is what that document must name exactly
(OpenID Connect Discovery 1.0, section 4.3). Our own client key for ``private_key_jwt`` is not a
setting either: the service's key store holds it.

Every error is a ValueError whose message starts with the field name ("field: message"), and
unknown fields are refused, so a declaration with a typo never runs with a silent default.

==========================  ========  ===========================================================
field                       required  meaning
==========================  ========  ===========================================================
issuer                      yes       the provider's issuer identifier; ``https`` (``http`` only
                                      outside production: ``allow_http``); no query or fragment
client_id                   yes       our client identifier at the provider
trust_framework             yes       the identity's trust framework (e.g. ``jp_aml``); with
                                      ``verified_claims`` also the only one accepted in them
scopes                      no        requested scopes; must include ``openid`` (default
                                      ``["openid"]``)
claims                      no        our OIDC claim name → the provider's plain claim name
                                      (default: none)
verified_claims             no        ``false`` (default), ``true`` (request every claim of
                                      ``claims`` as verified claims) or a list of the provider's
                                      claim names to request inside ``verified_claims`` with the
                                      ``claims`` parameter (OpenID Connect for Identity Assurance)
acr_levels                  no        the provider's ``acr`` value → our level (low, substantial,
                                      high), none above the anchor's own level
floor_assurance_level       no        the level when the provider returns no (or an unknown)
                                      ``acr``; at most the anchor's level (default ``low``)
assertion_audience          no        ``issuer`` (default) or ``token_endpoint``: the ``aud`` of
                                      our ``private_key_jwt`` client assertion
par                         no        ``auto`` (default: when the provider has a PAR endpoint),
                                      ``always`` (refuse a provider without one) or ``never``
algs                        no        accepted ID token algorithms (default RS256, ES256, PS256);
                                      never ``none`` nor an HMAC algorithm
userinfo                    no        also call the UserInfo endpoint (default ``false``)
require_at_hash             no        refuse an ID token without ``at_hash`` (default ``false``)
max_metadata_bytes          no        size limit of the discovery document and of the JWKS
                                      (default 65536)
metadata_ttl                no        seconds discovery and JWKS are cached (default 3600)
jwks_refetch_limit          no        JWKS refetches allowed for an unknown ``kid`` per window
                                      (default 3); beyond it unknown keys fail closed
jwks_refetch_window         no        that window in seconds (default 300)
client_assertion_alg        no        the algorithm of our own ``private_key_jwt`` key for this
                                      provider: ES256 (default), RS256 or PS256 (H4b)
==========================  ========  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from trustanchor.domain.assurance import LEVELS, AssuranceLevel, rank

AssertionAudience = Literal["issuer", "token_endpoint"]
ParMode = Literal["auto", "always", "never"]
ASSERTION_AUDIENCES: tuple[AssertionAudience, ...] = ("issuer", "token_endpoint")
PAR_MODES: tuple[ParMode, ...] = ("auto", "always", "never")
# ID token algorithms we are able to verify (asymmetric only; HMAC would make the client secret,
# or worse a public key, a signing key).
SUPPORTED_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256"})
DEFAULT_ALGS = ("RS256", "ES256", "PS256")
DEFAULT_SCOPES = ("openid",)
DEFAULT_MAX_METADATA_BYTES = 65536
DEFAULT_METADATA_TTL = 3600
DEFAULT_JWKS_REFETCH_LIMIT = 3
DEFAULT_JWKS_REFETCH_WINDOW = 300
MAX_NAME_LENGTH = 255

_KNOWN = frozenset(
    {
        "issuer",
        "client_id",
        "trust_framework",
        "scopes",
        "claims",
        "verified_claims",
        "acr_levels",
        "floor_assurance_level",
        "assertion_audience",
        "par",
        "algs",
        "userinfo",
        "require_at_hash",
        "max_metadata_bytes",
        "metadata_ttl",
        "jwks_refetch_limit",
        "jwks_refetch_window",
        "client_assertion_alg",  # H4b: the algorithm of our own key for this provider
    }
)


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class OidcSettings:
    issuer: str
    client_id: str
    trust_framework: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    claims: Mapping[str, str] = field(default_factory=_empty)  # ours → the provider's name
    # The provider's claim names requested inside verified_claims; empty: none requested.
    verified_claims: tuple[str, ...] = ()
    acr_levels: Mapping[str, AssuranceLevel] = field(default_factory=_empty)
    floor_assurance_level: AssuranceLevel = "low"
    assertion_audience: AssertionAudience = "issuer"
    par: ParMode = "auto"
    algs: tuple[str, ...] = DEFAULT_ALGS
    userinfo: bool = False
    require_at_hash: bool = False
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    metadata_ttl: int = DEFAULT_METADATA_TTL
    jwks_refetch_limit: int = DEFAULT_JWKS_REFETCH_LIMIT
    jwks_refetch_window: int = DEFAULT_JWKS_REFETCH_WINDOW
    # H4b: our private_key_jwt key for this provider (keystore/upstream_keys.py) is made for it.
    client_assertion_alg: str = "ES256"

    def acr_for_level(self, level: str) -> tuple[str, ...]:
        """The provider's ``acr`` values that map to ``level`` or above, strongest first: what we
        send as ``acr_values`` when the policy asks for ``level`` (empty: none maps high enough)."""
        values = [acr for acr, mapped in self.acr_levels.items() if rank(mapped) >= rank(level)]
        return tuple(sorted(values, key=lambda acr: -rank(self.acr_levels[acr])))


def parse_settings(
    raw: Mapping[str, Any], *, anchor_level: AssuranceLevel, allow_http: bool = False
) -> OidcSettings:
    """Validate an ``oidc`` anchor's ``settings``; raises ValueError naming the offending field.
    ``anchor_level`` is the anchor's declared assurance level (no mapping may exceed it);
    ``allow_http`` admits an ``http`` issuer (demo and test modes only, never production)."""
    if not isinstance(raw, Mapping):
        raise ValueError("settings: must be a mapping")
    unknown = sorted(str(name) for name in set(raw) - _KNOWN)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown setting for an oidc anchor")
    if anchor_level not in LEVELS:
        raise ValueError(f"assurance_level: must be one of {', '.join(LEVELS)}")
    issuer = _issuer(raw.get("issuer"), allow_http)
    client_id = _text(raw, "client_id")
    trust_framework = _text(raw, "trust_framework")
    scopes = _scopes(raw.get("scopes", list(DEFAULT_SCOPES)))
    claims = _claims(raw.get("claims", {}))
    verified = _verified_claims(raw.get("verified_claims", False), claims)
    acr_levels = _acr_levels(raw.get("acr_levels", {}), anchor_level)
    floor = raw.get("floor_assurance_level", "low")
    if floor not in LEVELS:
        raise ValueError(f"floor_assurance_level: must be one of {', '.join(LEVELS)}")
    if rank(floor) > rank(anchor_level):
        raise ValueError(
            f"floor_assurance_level: {floor} is above the anchor's assurance level {anchor_level}"
        )
    audience = raw.get("assertion_audience", "issuer")
    if audience not in ASSERTION_AUDIENCES:
        raise ValueError("assertion_audience: must be issuer or token_endpoint")
    par = raw.get("par", "auto")
    if par not in PAR_MODES:
        raise ValueError("par: must be one of auto, always, never")
    return OidcSettings(
        issuer=issuer,
        client_id=client_id,
        trust_framework=trust_framework,
        scopes=scopes,
        claims=MappingProxyType(claims),
        verified_claims=verified,
        acr_levels=MappingProxyType(acr_levels),
        floor_assurance_level=cast(AssuranceLevel, floor),
        assertion_audience=cast(AssertionAudience, audience),
        par=cast(ParMode, par),
        algs=_algs(raw.get("algs", list(DEFAULT_ALGS))),
        userinfo=_bool(raw, "userinfo", False),
        require_at_hash=_bool(raw, "require_at_hash", False),
        max_metadata_bytes=_positive(raw, "max_metadata_bytes", DEFAULT_MAX_METADATA_BYTES),
        metadata_ttl=_positive(raw, "metadata_ttl", DEFAULT_METADATA_TTL),
        jwks_refetch_limit=_positive(raw, "jwks_refetch_limit", DEFAULT_JWKS_REFETCH_LIMIT),
        jwks_refetch_window=_positive(raw, "jwks_refetch_window", DEFAULT_JWKS_REFETCH_WINDOW),
        client_assertion_alg=_client_assertion_alg(raw.get("client_assertion_alg", "ES256")),
    )


def _client_assertion_alg(value: Any) -> str:
    """H4b: ES256 (default) or RS256/PS256 where the provider only takes RSA assertions."""
    if value not in ("ES256", "RS256", "PS256"):
        raise ValueError("client_assertion_alg: must be ES256, RS256 or PS256")
    return str(value)


def _issuer(value: Any, allow_http: bool) -> str:
    if not isinstance(value, str) or not value or len(value) > 2048 or not value.isascii():
        raise ValueError("issuer: must be a URL")
    if any(ch.isspace() for ch in value):
        raise ValueError("issuer: must not contain white space")
    parts = urlsplit(value)
    if parts.scheme not in (("https", "http") if allow_http else ("https",)):
        raise ValueError(
            "issuer: must be an https URL" + ("" if allow_http else " (http outside production)")
        )
    if not parts.hostname:
        raise ValueError("issuer: must name a host")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("issuer: must not have a query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError("issuer: must not carry user information")
    return value


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{name}: must be a non-empty string of at most {MAX_NAME_LENGTH}")
    return value


def _name_list(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name}: must be a non-empty list of strings")
    if not all(isinstance(item, str) and item and len(item) <= MAX_NAME_LENGTH for item in value):
        raise ValueError(f"{name}: every entry must be a non-empty string")
    if len(set(value)) != len(value):
        raise ValueError(f"{name}: entries must not repeat")
    return tuple(value)


def _scopes(value: Any) -> tuple[str, ...]:
    scopes = _name_list(value, "scopes")
    for scope in scopes:
        if any(ch.isspace() or ch in '"\\' for ch in scope) or not scope.isascii():
            raise ValueError(f"scopes: {scope!r} is not a valid scope token")
    if "openid" not in scopes:
        raise ValueError("scopes: must include openid")
    return scopes


def _claims(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("claims: must be a mapping of OIDC claim name to the provider's claim")
    result: dict[str, str] = {}
    for ours, theirs in value.items():
        if not isinstance(ours, str) or not ours:
            raise ValueError("claims: OIDC claim names must be non-empty strings")
        if ours in ("sub", "iss", "aud", "verified_claims"):
            raise ValueError(f"claims.{ours}: is not a claim an anchor can supply")
        if not isinstance(theirs, str) or not theirs or len(theirs) > MAX_NAME_LENGTH:
            raise ValueError(f"claims.{ours}: must name one of the provider's claims")
        result[ours] = theirs
    return result


def _verified_claims(value: Any, claims: Mapping[str, str]) -> tuple[str, ...]:
    if value is False:
        return ()
    if value is True:
        if not claims:
            raise ValueError("verified_claims: true needs claims to request")
        return tuple(dict.fromkeys(claims.values()))
    names = _name_list(value, "verified_claims")
    mapped = set(claims.values())
    for name in names:
        if name not in mapped:
            raise ValueError(f"verified_claims: {name!r} is not mapped in claims")
    return names


def _acr_levels(value: Any, anchor_level: str) -> dict[str, AssuranceLevel]:
    if not isinstance(value, Mapping):
        raise ValueError("acr_levels: must be a mapping of the provider's acr to our level")
    result: dict[str, AssuranceLevel] = {}
    for acr, level in value.items():
        if not isinstance(acr, str) or not acr or len(acr) > MAX_NAME_LENGTH:
            raise ValueError("acr_levels: acr values must be non-empty strings")
        if level not in LEVELS:
            raise ValueError(f"acr_levels.{acr}: must be one of {', '.join(LEVELS)}")
        if rank(level) > rank(anchor_level):
            raise ValueError(
                f"acr_levels.{acr}: {level} is above the anchor's assurance level {anchor_level}"
            )
        result[acr] = cast(AssuranceLevel, level)
    return result


def _algs(value: Any) -> tuple[str, ...]:
    algs = _name_list(value, "algs")
    for alg in algs:
        if alg not in SUPPORTED_ALGS:
            raise ValueError(
                f"algs: {alg!r} is not accepted (one of {', '.join(sorted(SUPPORTED_ALGS))})"
            )
    return algs


def _bool(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false")
    return value


def _positive(raw: Mapping[str, Any], name: str, default: int) -> int:
    value = raw.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name}: must be a positive integer")
    return value
