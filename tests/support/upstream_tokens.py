"""An upstream OpenID Provider's *signing side* for unit tests of the ``oidc`` anchor: real keys
and real ID tokens made with joserfc (an independent JOSE implementation), its discovery
document and JWKS served by an InMemoryFetcher. No protocol logic of ours is used to make them.

The provider behind a real HTTP server (idpyoidc) is tests/support/idpy_op.py; this module is for
the many small cases where each test needs one precisely malformed token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from support.credentials import InMemoryFetcher
from trustanchor.anchors.oidc_provider import UpstreamProvider
from trustanchor.anchors.oidc_settings import OidcSettings, parse_settings
from trustanchor.clock import FixedClock
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import AssuranceLevel

AT = 1_760_000_000
ISSUER = "https://op.bank.example"
CLIENT_ID = "trustanchor-rp"
NONCE = "n-0S6_WzA2Mj-upstream-nonce"
ACCESS_TOKEN = "SlAV32hkKG-upstream-access-token"
DISCOVERY = ISSUER + "/.well-known/openid-configuration"
JWKS_URI = ISSUER + "/jwks"
ALL_ALGS = ["RS256", "PS256", "ES256", "EdDSA", "HS256", "RS384", "ES384"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def at_hash(access_token: str, hash_name: str = "sha256") -> str:
    """OpenID Connect Core 3.1.3.6, computed here independently of the code under test."""
    digest = hashlib.new(hash_name, access_token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


def sign(
    header: dict[str, Any], claims: dict[str, Any], key: RSAKey | ECKey | Any, *, alg: str
) -> str:
    return jwt.encode({"alg": alg, **header}, claims, key, algorithms=[alg])


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWS made by hand (joserfc itself refuses a public key as an HMAC secret)."""
    signing_input = f"{b64url_json({'alg': 'HS256', **header})}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url_json({'alg': 'none', **header})}.{b64url_json(claims)}."


@dataclass
class UpstreamOP:
    """Keys, metadata and tokens of one provider. ``rsa`` (kid ``rsa-1``) and ``ec`` (kid
    ``ec-1``) are published; ``metadata`` is the discovery document (edit before ``publish``)."""

    issuer: str = ISSUER
    rsa: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))
    ec: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", private=True))
    fetcher: InMemoryFetcher = field(default_factory=InMemoryFetcher)
    metadata: dict[str, Any] = field(default_factory=dict)
    published: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = self.issuer.rstrip("/")
        self.metadata = {
            "issuer": self.issuer,
            "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/userinfo",
            "jwks_uri": base + "/jwks",
            "pushed_authorization_request_endpoint": base + "/par",
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "claims_parameter_supported": True,
            "acr_values_supported": ["aal2", "aal3"],
        }
        self.published = [self.public_jwk(self.rsa, "rsa-1"), self.public_jwk(self.ec, "ec-1")]
        self.publish()

    @staticmethod
    def public_jwk(key: RSAKey | ECKey, kid: str) -> dict[str, Any]:
        jwk = dict(key.as_dict(private=False))
        jwk["kid"] = kid
        jwk["use"] = "sig"
        return jwk

    def publish(self) -> None:
        base = self.issuer.rstrip("/")
        self.fetcher.serve(
            base + "/.well-known/openid-configuration", json.dumps(self.metadata).encode()
        )
        self.fetcher.serve(base + "/jwks", json.dumps({"keys": self.published}).encode())

    def claims(self, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "pairwise-7f3a",
            "aud": CLIENT_ID,
            "exp": AT + 300,
            "iat": AT - 5,
            "auth_time": AT - 10,
            "nonce": NONCE,
            "acr": "aal3",
            "amr": ["hwk", "pin"],
            "at_hash": at_hash(ACCESS_TOKEN),
        }
        for name, value in overrides.items():
            if value is _DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def id_token(self, *, alg: str = "RS256", kid: str | None = None, **overrides: Any) -> str:
        key = self.ec if alg.startswith("ES") else self.rsa
        header = {"kid": kid or ("ec-1" if alg.startswith("ES") else "rsa-1")}
        return sign(header, self.claims(**overrides), key, alg=alg)

    def jwks_fetches(self) -> int:
        return sum(1 for url, _, _ in self.fetcher.requests if url.endswith("/jwks"))


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


_DROP: Any = _Drop()
DROP: Any = _DROP  # ``op.claims(nonce=DROP)`` leaves the claim out


def raw_settings(issuer: str = ISSUER, **overrides: Any) -> dict[str, Any]:
    """A Digital Agency style anchor: plain claims, acr aal2/aal3 mapped to our levels."""
    return {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "trust_framework": "jp_aml",
        "scopes": ["openid", "profile", "address"],
        "claims": {
            "name": "name",
            "family_name": "family_name",
            "given_name": "given_name",
            "birthdate": "birthdate",
            "address": "address",
            "gender": "gender",
        },
        "acr_levels": {"aal2": "substantial", "aal3": "high"},
        "floor_assurance_level": "low",
        **overrides,
    }


def settings(
    issuer: str = ISSUER, *, level: AssuranceLevel = "high", **overrides: Any
) -> OidcSettings:
    raw = raw_settings(issuer, **overrides)
    return parse_settings(raw, anchor_level=level, allow_http=issuer.startswith("http:"))


def anchor(
    issuer: str = ISSUER,
    *,
    anchor_id: str = "ekyc-bank",
    level: AssuranceLevel = "high",
    **overrides: Any,
) -> Anchor:
    return Anchor(
        id=anchor_id,
        kind="oidc",
        display_name={"en": "eKYC bank"},
        assurance_level=level,
        status="active",
        settings=raw_settings(issuer, **overrides),
    )


def provider(
    op: UpstreamOP, *, clock: FixedClock | None = None, level: AssuranceLevel = "high", **kw: Any
) -> UpstreamProvider:
    parsed = settings(op.issuer, level=level, **kw)
    return UpstreamProvider(
        anchor(op.issuer, level=level, **kw),
        parsed,
        fetcher=op.fetcher,
        clock=clock or FixedClock(AT),
    )
