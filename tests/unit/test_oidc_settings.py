"""Settings of an ``oidc`` anchor (anchors/oidc_settings.py): defaults, and every refusal names
its field."""

from __future__ import annotations

from typing import Any

import pytest

from trustanchor.anchors.oidc_settings import DEFAULT_ALGS, parse_settings

BASE: dict[str, Any] = {
    "issuer": "https://op.bank.example",
    "client_id": "trustanchor-rp",
    "trust_framework": "jp_aml",
}


def parse(level: Any = "high", allow_http: bool = False, **fields: Any) -> Any:
    return parse_settings({**BASE, **fields}, anchor_level=level, allow_http=allow_http)


def test_the_minimal_settings_and_their_defaults() -> None:
    parsed = parse()
    assert parsed.issuer == "https://op.bank.example"
    assert parsed.scopes == ("openid",)
    assert parsed.algs == DEFAULT_ALGS == ("RS256", "ES256", "PS256")
    assert (parsed.assertion_audience, parsed.par, parsed.userinfo) == ("issuer", "auto", False)
    assert parsed.floor_assurance_level == "low" and parsed.verified_claims == ()
    assert dict(parsed.claims) == {} and dict(parsed.acr_levels) == {}


def test_a_full_declaration() -> None:
    parsed = parse(
        scopes=["openid", "profile", "address"],
        claims={"name": "name", "birthdate": "birthdate", "address": "address"},
        verified_claims=True,
        acr_levels={"aal1": "low", "aal2": "substantial", "aal3": "high"},
        floor_assurance_level="substantial",
        assertion_audience="token_endpoint",
        par="always",
        algs=["PS256", "ES256"],
        userinfo=True,
        require_at_hash=True,
        max_metadata_bytes=1000,
        metadata_ttl=60,
        jwks_refetch_limit=2,
        jwks_refetch_window=30,
    )
    assert parsed.verified_claims == ("name", "birthdate", "address")
    assert parsed.acr_for_level("substantial") == ("aal3", "aal2")
    assert parsed.acr_for_level("high") == ("aal3",)
    with pytest.raises(TypeError):
        parsed.claims["x"] = "y"  # read-only


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"issuer": "http://op.bank.example"}, "issuer: must be an https URL"),
        ({"issuer": "https://op.bank.example?x=1"}, "issuer: must not have a query"),
        ({"issuer": "https://op.bank.example#f"}, "issuer: must not have a query"),
        ({"issuer": "https://user@op.bank.example"}, "issuer: must not carry user"),
        ({"issuer": "https:///path"}, "issuer: must name a host"),
        ({"issuer": "https://op .example"}, "issuer: must not contain white space"),
        ({"issuer": 7}, "issuer: must be a URL"),
        ({"client_id": ""}, "client_id: must be a non-empty string"),
        ({"trust_framework": None}, "trust_framework: must be a non-empty string"),
        ({"scopes": ["profile"]}, "scopes: must include openid"),
        ({"scopes": ["openid", "a b"]}, "scopes: 'a b' is not a valid scope token"),
        ({"scopes": ["openid", "openid"]}, "scopes: entries must not repeat"),
        ({"scopes": "openid"}, "scopes: must be a non-empty list"),
        ({"claims": ["name"]}, "claims: must be a mapping"),
        ({"claims": {"sub": "sub"}}, "claims.sub: is not a claim an anchor can supply"),
        ({"claims": {"name": 1}}, "claims.name: must name one of the provider's claims"),
        ({"verified_claims": True}, "verified_claims: true needs claims to request"),
        ({"verified_claims": ["birthdate"]}, "verified_claims: 'birthdate' is not mapped"),
        ({"verified_claims": "yes"}, "verified_claims: must be a non-empty list"),
        ({"acr_levels": {"aal3": "very high"}}, "acr_levels.aal3: must be one of"),
        ({"acr_levels": ["aal3"]}, "acr_levels: must be a mapping"),
        ({"floor_assurance_level": "medium"}, "floor_assurance_level: must be one of"),
        ({"assertion_audience": "token"}, "assertion_audience: must be issuer or token_endpoint"),
        ({"par": True}, "par: must be one of auto, always, never"),
        ({"algs": ["none"]}, "algs: 'none' is not accepted"),
        ({"algs": ["HS256"]}, "algs: 'HS256' is not accepted"),
        ({"algs": ["HS512", "RS256"]}, "algs: 'HS512' is not accepted"),
        ({"algs": ["EdDSA"]}, "algs: 'EdDSA' is not accepted"),
        ({"algs": []}, "algs: must be a non-empty list"),
        ({"userinfo": "yes"}, "userinfo: must be true or false"),
        ({"require_at_hash": 1}, "require_at_hash: must be true or false"),
        ({"max_metadata_bytes": 0}, "max_metadata_bytes: must be a positive integer"),
        ({"metadata_ttl": True}, "metadata_ttl: must be a positive integer"),
        ({"jwks_refetch_limit": -1}, "jwks_refetch_limit: must be a positive integer"),
        ({"jwks_refetch_window": 1.5}, "jwks_refetch_window: must be a positive integer"),
        ({"jwks": {"keys": []}}, "jwks: unknown setting for an oidc anchor"),
        ({"client_secret": "s3cret"}, "client_secret: unknown setting for an oidc anchor"),
    ],
)
def test_each_refusal_names_its_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(**fields)
    assert str(caught.value).startswith(message), caught.value


def test_required_fields() -> None:
    for name in ("issuer", "client_id", "trust_framework"):
        raw = {key: value for key, value in BASE.items() if key != name}
        with pytest.raises(ValueError, match=f"^{name}: "):
            parse_settings(raw, anchor_level="high")
    with pytest.raises(ValueError, match=r"^settings: must be a mapping"):
        parse_settings(["issuer"], anchor_level="high")  # type: ignore[arg-type]


def test_http_issuer_only_outside_production() -> None:
    assert parse(issuer="http://127.0.0.1:8099", allow_http=True).issuer == "http://127.0.0.1:8099"
    with pytest.raises(ValueError, match="http outside production"):
        parse(issuer="http://127.0.0.1:8099")


def test_levels_never_above_the_anchors() -> None:
    with pytest.raises(ValueError, match=r"^acr_levels\.aal3: high is above .* substantial"):
        parse(level="substantial", acr_levels={"aal3": "high"})
    with pytest.raises(ValueError, match=r"^floor_assurance_level: high is above"):
        parse(level="substantial", floor_assurance_level="high")
    with pytest.raises(ValueError, match=r"^assurance_level: must be one of"):
        parse(level="top")
