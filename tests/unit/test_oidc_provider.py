"""The upstream provider's discovery document and JWKS (anchors/oidc_provider.py): what is
required of them, caching with the injected clock, strict key import, the bounded refetch on an
unknown ``kid``, and RFC 9207's ``iss``. Keys and tokens are made with joserfc."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey
from support.upstream_tokens import (
    ACCESS_TOKEN,
    AT,
    ISSUER,
    NONCE,
    UpstreamOP,
    anchor,
    provider,
    sign,
)

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.oidc_provider import REASONS, UpstreamProvider
from trustanchor.clock import FixedClock
from trustanchor.config.loader import load_settings
from trustanchor.services.anchor_verifiers import AnchorVerifiers


def failure(call: Any) -> AnchorFailure:
    with pytest.raises(AnchorFailure) as caught:
        call()
    assert caught.value.reason in REASONS, caught.value
    return caught.value


def discovery_fetches(op: UpstreamOP) -> int:
    return sum(1 for url, _, _ in op.fetcher.requests if url.endswith("openid-configuration"))


def validate(rp: UpstreamProvider, token: str) -> None:
    rp.validate_id_token(token, nonce=NONCE, at=AT, access_token=ACCESS_TOKEN)


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_is_read_from_the_issuers_well_known_address() -> None:
    op = UpstreamOP()
    metadata = provider(op).metadata()
    assert metadata.issuer == ISSUER
    assert metadata.token_endpoint == ISSUER + "/token"
    assert metadata.authorization_response_iss_parameter_supported is True
    assert op.fetcher.requests[0][0] == ISSUER + "/.well-known/openid-configuration"


def test_an_issuer_with_a_path_and_trailing_slash_gets_one_well_known_suffix() -> None:
    op = UpstreamOP(issuer="https://login.example.jp/tenant-a/")
    assert provider(op).metadata().issuer == "https://login.example.jp/tenant-a/"
    assert op.fetcher.requests[0][0] == (
        "https://login.example.jp/tenant-a/.well-known/openid-configuration"
    )


@pytest.mark.parametrize(
    "named",
    [
        "https://evil-op.example",
        ISSUER + "/",
        ISSUER.upper(),
        "https://op.bank.example:443",
        None,
        ["https://op.bank.example"],
    ],
)
def test_discovery_issuer_mismatch_is_refused(named: Any) -> None:
    """A discovery document must name exactly the issuer we configured (Discovery 1.0, 4.3):
    otherwise one provider could pass off another's identity, the start of a mix-up."""
    op = UpstreamOP()
    op.metadata["issuer"] = named
    op.publish()
    assert failure(provider(op).metadata).reason == "provider_issuer_mismatch"


@pytest.mark.parametrize(
    "member",
    [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "id_token_signing_alg_values_supported",
    ],
)
def test_a_required_member_missing_is_refused(member: str) -> None:
    op = UpstreamOP()
    del op.metadata[member]
    op.publish()
    assert failure(provider(op).metadata).reason == "provider_metadata_invalid"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("token_endpoint", "http://op.bank.example/token"),
        ("jwks_uri", "http://op.bank.example/jwks"),
        ("authorization_endpoint", "javascript:alert(1)"),
        ("token_endpoint", "https://op.bank.example/token#frag"),
        ("token_endpoint", "https://user:pw@op.bank.example/token"),
        ("userinfo_endpoint", "ftp://op.bank.example/userinfo"),
        ("pushed_authorization_request_endpoint", 42),
    ],
)
def test_endpoints_must_be_https(member: str, value: Any) -> None:
    op = UpstreamOP()
    op.metadata[member] = value
    op.publish()
    assert failure(provider(op).metadata).reason == "provider_metadata_invalid"


def test_http_endpoints_only_for_an_http_issuer_admitted_outside_production() -> None:
    op = UpstreamOP(issuer="http://127.0.0.1:8099")
    assert provider(op).metadata().token_endpoint == "http://127.0.0.1:8099/token"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("response_types_supported", ["id_token", "code id_token"]),
        ("code_challenge_methods_supported", ["plain"]),
        ("token_endpoint_auth_methods_supported", ["client_secret_basic", "client_secret_post"]),
        ("id_token_signing_alg_values_supported", ["HS256", "none"]),
    ],
)
def test_a_provider_without_what_we_need_is_refused(member: str, value: Any) -> None:
    op = UpstreamOP()
    op.metadata[member] = value
    op.publish()
    assert failure(provider(op).metadata).reason == "provider_unsupported"


def test_without_auth_methods_listed_the_default_client_secret_basic_is_assumed() -> None:
    op = UpstreamOP()
    del op.metadata["token_endpoint_auth_methods_supported"]
    op.publish()
    assert failure(provider(op).metadata).reason == "provider_unsupported"


def test_pkce_methods_not_listed_is_accepted() -> None:
    op = UpstreamOP()
    del op.metadata["code_challenge_methods_supported"]
    op.publish()
    assert provider(op).metadata().code_challenge_methods_supported is None


def test_par_setting_against_the_provider() -> None:
    op = UpstreamOP()
    assert provider(op).uses_par() is True
    assert provider(op, par="never").uses_par() is False
    del op.metadata["pushed_authorization_request_endpoint"]
    op.publish()
    assert provider(op).uses_par() is False
    assert failure(provider(op, par="always").metadata).reason == "provider_unsupported"
    op.metadata["require_pushed_authorization_requests"] = True
    op.publish()
    assert failure(provider(op).metadata).reason == "provider_metadata_invalid"


def test_a_provider_requiring_par_with_par_never_is_refused() -> None:
    op = UpstreamOP()
    op.metadata["require_pushed_authorization_requests"] = True
    op.publish()
    assert provider(op).uses_par() is True
    assert failure(provider(op, par="never").metadata).reason == "provider_unsupported"


def test_userinfo_and_verified_claims_need_provider_support() -> None:
    op = UpstreamOP()
    del op.metadata["userinfo_endpoint"]
    op.metadata["claims_parameter_supported"] = False
    op.publish()
    assert provider(op).metadata().userinfo_endpoint is None
    assert failure(provider(op, userinfo=True).metadata).reason == "provider_metadata_invalid"
    assert failure(provider(op, verified_claims=True).metadata).reason == "provider_unsupported"
    op.metadata["claims_parameter_supported"] = True
    op.metadata["trust_frameworks_supported"] = ["eidas"]
    op.publish()
    assert failure(provider(op, verified_claims=True).metadata).reason == "provider_unsupported"
    op.metadata["trust_frameworks_supported"] = ["eidas", "jp_aml"]
    op.publish()
    provider(op, verified_claims=True).metadata()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"issuer": "a", "issuer": "b"}',
        b'{"x": NaN}',
        "\u3042".encode("utf-16"),
    ],
)
def test_a_discovery_document_that_is_not_strict_json_is_refused(body: bytes) -> None:
    op = UpstreamOP()
    op.fetcher.serve(ISSUER + "/.well-known/openid-configuration", body)
    assert failure(provider(op).metadata).reason == "provider_metadata_invalid"


def test_an_unreachable_or_oversized_provider_fails_closed() -> None:
    op = UpstreamOP()
    op.fetcher.bodies.clear()
    assert failure(provider(op).metadata).reason == "provider_unreachable"
    op.metadata["padding"] = "x" * 70000
    op.publish()
    assert failure(provider(op).metadata).reason == "provider_unreachable"


def test_discovery_is_cached_for_the_ttl_and_never_served_stale() -> None:
    op = UpstreamOP()
    clock = FixedClock(AT)
    rp = provider(op, clock=clock, metadata_ttl=600)
    rp.metadata()
    clock.advance(599)
    rp.metadata()
    assert discovery_fetches(op) == 1
    clock.advance(1)
    rp.metadata()
    assert discovery_fetches(op) == 2
    op.fetcher.bodies.clear()
    clock.advance(600)
    assert failure(rp.metadata).reason == "provider_unreachable"


# -- RFC 9207 and the assertion audience --------------------------------------------------------


def test_response_iss_required_when_advertised() -> None:
    rp = provider(UpstreamOP())
    rp.check_response_issuer(ISSUER)
    assert failure(lambda: rp.check_response_issuer(None)).reason == "response_issuer_missing"
    mix_up = failure(lambda: rp.check_response_issuer("https://evil-op.example"))
    assert mix_up.reason == "response_issuer_mismatch"


def test_response_iss_checked_whenever_present() -> None:
    op = UpstreamOP()
    op.metadata["authorization_response_iss_parameter_supported"] = False
    op.publish()
    rp = provider(op)
    rp.check_response_issuer(None)
    assert failure(lambda: rp.check_response_issuer(ISSUER + "/")).reason == (
        "response_issuer_mismatch"
    )


def test_client_assertion_audience() -> None:
    op = UpstreamOP()
    assert provider(op).client_assertion_audience() == ISSUER
    assert provider(op, assertion_audience="token_endpoint").client_assertion_audience() == (
        ISSUER + "/token"
    )


# -- JWKS ---------------------------------------------------------------------------------------


def publish_keys(op: UpstreamOP, *keys: dict[str, Any]) -> None:
    op.published = list(keys)
    op.publish()


def test_jwks_is_fetched_once_and_cached() -> None:
    op = UpstreamOP()
    rp = provider(op)
    for _ in range(3):
        validate(rp, op.id_token())
        validate(rp, op.id_token(alg="ES256"))
    assert op.jwks_fetches() == 1


def test_a_rotated_key_is_found_with_one_refetch() -> None:
    op = UpstreamOP()
    rp = provider(op)
    validate(rp, op.id_token())
    rotated = RSAKey.generate_key(2048, private=True)
    publish_keys(op, *op.published, op.public_jwk(rotated, "rsa-2"))
    validate(rp, sign({"kid": "rsa-2"}, op.claims(), rotated, alg="RS256"))
    assert op.jwks_fetches() == 2


def test_jwks_unknown_kid_flood_is_bounded() -> None:
    """Thousands of made-up kids cost at most ``jwks_refetch_limit`` fetches per window, then
    fail closed; known keys keep working during the flood, and the budget renews with the
    window."""
    op = UpstreamOP()
    clock = FixedClock(AT)
    rp = provider(op, clock=clock, jwks_refetch_limit=3, jwks_refetch_window=300)
    validate(rp, op.id_token())
    for n in range(1000):
        token = sign({"kid": f"made-up-{n}"}, op.claims(), op.rsa, alg="RS256")
        assert failure(lambda token=token: validate(rp, token)).reason == "unknown_provider_key"
        if n % 100 == 0:
            validate(rp, op.id_token())
    assert op.jwks_fetches() == 1 + 3
    clock.advance(300)
    token = sign({"kid": "made-up-again"}, op.claims(), op.rsa, alg="RS256")
    assert failure(lambda: validate(rp, token)).reason == "unknown_provider_key"
    assert op.jwks_fetches() == 1 + 3 + 1


def test_after_the_budget_a_genuinely_rotated_key_waits_for_the_next_window() -> None:
    op = UpstreamOP()
    clock = FixedClock(AT)
    rp = provider(op, clock=clock, jwks_refetch_limit=1, jwks_refetch_window=60)
    bogus = sign({"kid": "bogus"}, op.claims(), op.rsa, alg="RS256")
    assert failure(lambda: validate(rp, bogus)).reason == "unknown_provider_key"
    rotated = RSAKey.generate_key(2048, private=True)
    publish_keys(op, *op.published, op.public_jwk(rotated, "rsa-2"))
    fresh = sign({"kid": "rsa-2"}, op.claims(), rotated, alg="RS256")
    assert failure(lambda: validate(rp, fresh)).reason == "unknown_provider_key"
    clock.advance(60)
    validate(rp, fresh)


def test_the_refetch_bypasses_http_caches() -> None:
    op = UpstreamOP()
    seen: list[dict[str, str]] = []
    original = op.fetcher.get_authorized

    def recording(url: str, *, accept: str, max_bytes: int, headers: Any) -> bytes:
        seen.append(dict(headers))
        return original(url, accept=accept, max_bytes=max_bytes, headers=headers)

    op.fetcher.get_authorized = recording  # type: ignore[method-assign]
    rp = provider(op)
    bogus = sign({"kid": "bogus"}, op.claims(), op.rsa, alg="RS256")
    failure(lambda: validate(rp, bogus))
    assert seen == [{"Cache-Control": "no-cache"}]


def rsa_1024() -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = RSAKey.generate_key(1024, private=True)
    return UpstreamOP.public_jwk(small, "small")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(rsa_1024, id="rsa-1024"),
        pytest.param(lambda: {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, id="symmetric"),
        pytest.param(
            lambda: {
                **dict(RSAKey.generate_key(2048, private=True).as_dict(private=True)),
                "kid": "priv",
            },
            id="rsa-private-parts",
        ),
        pytest.param(
            lambda: {
                **dict(ECKey.generate_key("P-256", private=True).as_dict(private=True)),
                "kid": "priv",
            },
            id="ec-private-parts",
        ),
        pytest.param(
            lambda: {
                "kty": "EC",
                "crv": "P-256",
                "kid": "off",
                "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE",
            },
            id="off-curve",
        ),
        pytest.param(
            lambda: {**UpstreamOP.public_jwk(ECKey.generate_key("P-256"), "ec-x"), "alg": "RS256"},
            id="alg-not-for-the-key",
        ),
    ],
)
def test_a_jwks_with_an_unacceptable_key_is_refused_whole(bad: Any) -> None:
    op = UpstreamOP()
    publish_keys(op, *op.published, bad())
    assert failure(lambda: validate(provider(op), op.id_token())).reason == (
        "provider_keys_invalid"
    )


def test_keys_no_accepted_alg_uses_are_left_out() -> None:
    """P-384, Ed25519 and encryption keys may sit in a provider's JWKS; they are skipped, so a
    token naming one finds no key."""
    op = UpstreamOP()
    p384 = ECKey.generate_key("P-384", private=True)
    enc = {**UpstreamOP.public_jwk(RSAKey.generate_key(2048), "enc-1"), "use": "enc"}
    oaep = {**UpstreamOP.public_jwk(RSAKey.generate_key(2048), "enc-2"), "alg": "RSA-OAEP"}
    del oaep["use"]
    publish_keys(op, *op.published, op.public_jwk(p384, "p384"), enc, oaep)
    rp = provider(op, jwks_refetch_limit=1)
    validate(rp, op.id_token())
    for header in (
        {"alg": "ES256", "kid": "p384"},
        {"alg": "RS256", "kid": "enc-1"},
        {"alg": "RS256", "kid": "enc-2"},
    ):
        assert failure(lambda header=header: rp.keys_for(header)).reason == "unknown_provider_key"
    assert len(rp.keys_for({"alg": "RS256"})) == 1  # no kid: only the published signing key


def test_a_jwk_alg_restricts_its_key() -> None:
    op = UpstreamOP()
    publish_keys(op, {**op.published[0], "alg": "PS256"}, op.published[1])
    rp = provider(op, jwks_refetch_limit=1)
    validate(rp, op.id_token(alg="PS256"))
    assert failure(lambda: validate(rp, op.id_token(alg="RS256"))).reason == (
        "unknown_provider_key"
    )


def test_a_jwks_that_is_not_a_jwks_is_refused() -> None:
    op = UpstreamOP()
    for body in (b"[]", b'{"keys": {}}', json.dumps({"keys": [1]}).encode(), b"{"):
        op.fetcher.serve(ISSUER + "/jwks", body)
        assert failure(lambda: validate(provider(op), op.id_token())).reason == (
            "provider_keys_invalid"
        )
    op.fetcher.serve(ISSUER + "/jwks", json.dumps({"keys": op.published * 17}).encode())
    assert failure(lambda: validate(provider(op), op.id_token())).reason == (
        "provider_keys_invalid"
    )


# -- services/anchor_verifiers.py ---------------------------------------------------------------


def test_the_service_keeps_one_provider_per_anchor_until_the_anchor_changes() -> None:
    config = Path(__file__).resolve().parents[2] / "config" / "test.toml"
    op = UpstreamOP()
    verifiers = AnchorVerifiers(load_settings(config, environ={}), op.fetcher, FixedClock(AT))
    declared = anchor()
    first = verifiers.upstream_provider(declared)
    assert verifiers.upstream_provider(declared) is first
    assert first.settings.issuer == ISSUER and first.anchor is declared
    changed = dataclasses.replace(declared, updated_at=declared.updated_at + 1)
    assert verifiers.upstream_provider(changed) is not first
    suspended = dataclasses.replace(changed, status="suspended")
    assert failure(lambda: verifiers.upstream_provider(suspended)).reason == "anchor_suspended"
    other_kind = dataclasses.replace(declared, kind="sd_jwt_vc", id="wallet")
    assert failure(lambda: verifiers.upstream_provider(other_kind)).reason == (
        "anchor_kind_unsupported"
    )
    # outside production an http issuer (a local demo provider) is admitted
    local = dataclasses.replace(anchor("http://127.0.0.1:8099"), id="local")
    assert verifiers.upstream_provider(local).settings.issuer == "http://127.0.0.1:8099"
