"""The kind-specific settings of an ``sd_jwt_vc`` anchor, parsed and validated once.

An anchor's ``settings`` mapping comes from configuration files or the admin API. It is validated
here at start-up (node-oidc-provider style: unsafe or unknown settings refuse to run), and every
error names the exact field. The issuer keys are imported once, strictly (public keys only, sane
sizes, points on the curve): verification later trusts *only* these keys.

Settings (``settings`` of an Anchor with kind ``sd_jwt_vc``):

==================  ========  ==================================================================
field               required  meaning
==================  ========  ==================================================================
issuer              yes       the exact ``iss`` the credentials must carry
jwks                yes       inline JWKS of the issuer (``jwks_file`` must already be resolved
                              into ``jwks`` by the configuration loader; it is refused here)
vct                 yes       list of accepted credential types
subject_claim       yes       the claim holding the stable subject at this anchor
claims              no        OIDC claim name → credential claim name (default: none)
trust_framework     yes       e.g. ``jp_my_number_card``
status_check        yes       ``required`` | ``if_present`` | ``off``
evidence_type       no        verified_claims evidence type (default ``electronic_record``)
algs                no        issuer signature algorithms (default ``["ES256"]``)
holder_algs         no        key-binding JWT algorithms (default ES256, ES384, ES512, EdDSA)
max_age             no        seconds after ``iat`` a credential stops being accepted
accept_legacy_typ   no        also accept ``typ`` ``vc+sd-jwt`` (default true; see sd_jwt_vc.py)
status_max_bytes    no        size limit of a fetched Status List Token (default 262144)
status_cache        no        seconds a verified Status List is reused for later logins, capped
                              by its own ``ttl`` and ``exp`` (default 300; 0 fetches it on every
                              login); at most ``MAX_STATUS_CACHE`` (3600)
==================  ========  ==================================================================

``status_cache``: a Status List Token says how long it may be reused (its ``ttl``, draft-ietf-
oauth-status-list "Caching"), and one list answers for every credential it covers, so fetching
and verifying it again on every login only adds the issuer's latency and a signature check to
each login. A credential revoked meanwhile is refused once the cached list is no longer fresh,
at most ``status_cache`` seconds later (the certificate anchors' CRLs are kept the same way,
until their nextUpdate); ``trustanchor identities check-status`` re-checks logins already made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, key_fits_alg, keys_from_jwks
from trustanchor.jose.jws import ASYMMETRIC_ALGS

StatusCheck = Literal["required", "if_present", "off"]
STATUS_CHECKS: tuple[StatusCheck, ...] = ("required", "if_present", "off")
DEFAULT_ALGS = ("ES256",)
DEFAULT_HOLDER_ALGS = ("ES256", "ES384", "ES512", "EdDSA")
DEFAULT_EVIDENCE_TYPE = "electronic_record"
DEFAULT_STATUS_MAX_BYTES = 262144
DEFAULT_STATUS_CACHE = 300
MAX_STATUS_CACHE = 3600

# The operations with a transaction data type of ours (openid4vp/transaction_data.py).
TRANSACTION_DATA_OPERATIONS: Final = ("value_transfer", "funding")
_KNOWN = frozenset(
    {
        "issuer",
        "jwks",
        "vct",
        "subject_claim",
        "claims",
        "trust_framework",
        "status_check",
        "transaction_data",
        "evidence_type",
        "algs",
        "holder_algs",
        "max_age",
        "accept_legacy_typ",
        "status_max_bytes",
        "status_cache",
    }
)


@dataclass(frozen=True, slots=True)
class SdJwtVcSettings:
    issuer: str
    keys: Mapping[str, PublicKey]  # kid (or RFC 7638 thumbprint) → key; read-only
    vct: tuple[str, ...]
    subject_claim: str
    claims: Mapping[str, str]  # OIDC claim name → credential claim name; read-only
    trust_framework: str
    status_check: StatusCheck
    evidence_type: str = DEFAULT_EVIDENCE_TYPE
    algs: tuple[str, ...] = DEFAULT_ALGS
    holder_algs: tuple[str, ...] = DEFAULT_HOLDER_ALGS
    max_age: int | None = None
    accept_legacy_typ: bool = True
    status_max_bytes: int = DEFAULT_STATUS_MAX_BYTES
    status_cache: int = DEFAULT_STATUS_CACHE  # seconds; 0: fetch the list on every login
    # The operations whose OpenID4VP transaction data this anchor's wallets sign
    # (docs/DYNAMIC-LINKING.md): sent on every login for such an operation, signed or the login
    # fails; an anchor set's ``dynamic_linking`` makes it required whatever this says.
    transaction_data: tuple[str, ...] = ()

    def candidate_keys(self, header: Mapping[str, Any]) -> tuple[PublicKey, ...]:
        """The configured keys that may have signed a JWS with this header: the key named by
        ``kid`` when present, else every configured key meant for ``alg``. Keys carried in the
        header (``jwk``, ``x5c``, ``jku``, ``x5u``) are never consulted."""
        alg = header.get("alg")
        if not isinstance(alg, str):
            return ()
        kid = header.get("kid")
        if kid is not None:
            key = self.keys.get(kid) if isinstance(kid, str) else None
            return (key,) if key is not None and key_fits_alg(key, alg) else ()
        return tuple(key for key in self.keys.values() if key_fits_alg(key, alg))


def parse_settings(raw: Mapping[str, Any]) -> SdJwtVcSettings:
    """Validate an anchor's ``settings``; raises ValueError naming the offending field."""
    if not isinstance(raw, Mapping):
        raise ValueError("settings: must be a mapping")
    if "jwks_file" in raw:
        raise ValueError("jwks_file: must be resolved into jwks by the configuration loader")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown setting for an sd_jwt_vc anchor")
    algs = _algs(raw, "algs", DEFAULT_ALGS)
    keys = _keys(raw.get("jwks"), algs)
    status_check = raw.get("status_check")
    if status_check not in STATUS_CHECKS:
        raise ValueError("status_check: must be one of required, if_present, off")
    max_age = raw.get("max_age")
    if max_age is not None and not _positive_int(max_age):
        raise ValueError("max_age: must be a positive integer (seconds)")
    legacy = raw.get("accept_legacy_typ", True)
    if not isinstance(legacy, bool):
        raise ValueError("accept_legacy_typ: must be true or false")
    status_max_bytes = raw.get("status_max_bytes", DEFAULT_STATUS_MAX_BYTES)
    if not _positive_int(status_max_bytes):
        raise ValueError("status_max_bytes: must be a positive integer")
    status_cache = raw.get("status_cache", DEFAULT_STATUS_CACHE)
    if not (
        isinstance(status_cache, int)
        and not isinstance(status_cache, bool)
        and 0 <= status_cache <= MAX_STATUS_CACHE
    ):
        raise ValueError(f"status_cache: must be an integer from 0 to {MAX_STATUS_CACHE} (seconds)")
    transaction_data = raw.get("transaction_data", [])
    if not isinstance(transaction_data, list | tuple) or not all(
        item in TRANSACTION_DATA_OPERATIONS for item in transaction_data
    ):
        raise ValueError(
            "transaction_data: must be a list of operations among "
            + ", ".join(TRANSACTION_DATA_OPERATIONS)
        )
    return SdJwtVcSettings(
        transaction_data=tuple(op for op in TRANSACTION_DATA_OPERATIONS if op in transaction_data),
        issuer=_text(raw, "issuer"),
        keys=MappingProxyType(keys),
        vct=_text_list(raw, "vct"),
        subject_claim=_text(raw, "subject_claim"),
        claims=MappingProxyType(_claims(raw.get("claims", {}))),
        trust_framework=_text(raw, "trust_framework"),
        status_check=status_check,
        evidence_type=_text(raw, "evidence_type", DEFAULT_EVIDENCE_TYPE),
        algs=algs,
        holder_algs=_algs(raw, "holder_algs", DEFAULT_HOLDER_ALGS),
        max_age=max_age,
        accept_legacy_typ=legacy,
        status_max_bytes=status_max_bytes,
        status_cache=status_cache,
    )


def _text(raw: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = raw.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must be a non-empty string")
    return value


def _text_list(raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = raw.get(name)
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name}: must be a non-empty list of strings")
    if not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{name}: every entry must be a non-empty string")
    return tuple(value)


def _algs(raw: Mapping[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if name not in raw:
        return default
    algs = _text_list(raw, name)
    for alg in algs:
        if alg not in ASYMMETRIC_ALGS:
            raise ValueError(f"{name}: {alg!r} is not an accepted asymmetric algorithm")
    return algs


def _keys(jwks: Any, algs: tuple[str, ...]) -> dict[str, PublicKey]:
    if jwks is None:
        raise ValueError("jwks: required (the issuer's public keys)")
    try:
        keys = keys_from_jwks(jwks)
    except JoseError as exc:
        raise ValueError(f"jwks: {exc}") from exc
    if not keys:
        raise ValueError("jwks: contains no signing key")
    for kid, key in keys.items():
        if not any(key_fits_alg(key, alg) for alg in algs):
            raise ValueError(f"jwks: key {kid!r} cannot be used with any of algs {list(algs)}")
    return keys


def _claims(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("claims: must be a mapping of OIDC claim name to credential claim name")
    for oidc_name, credential_name in value.items():
        if not isinstance(oidc_name, str) or not oidc_name:
            raise ValueError("claims: OIDC claim names must be non-empty strings")
        if not isinstance(credential_name, str) or not credential_name:
            raise ValueError(f"claims.{oidc_name}: must name a credential claim")
    return dict(value)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
