"""What we send to an upstream provider: the ``private_key_jwt`` client assertion (checked with
joserfc, an independent implementation) and the authorization request parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from support.upstream_tokens import AT, CLIENT_ID, ISSUER, settings

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.oidc_authorization_request import authorization_parameters
from trustanchor.anchors.oidc_client_assertion import client_assertion
from trustanchor.digests import sha256_b64url
from trustanchor.jose.jwk import public_jwk

TOKEN_ENDPOINT = ISSUER + "/token"
JTI = "c2b1f0b4-jti-9a7e-1"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def decoded(token: str, key: Any, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    result = jwt.decode(token, key, algorithms=[alg])
    return dict(result.header), dict(result.claims)


def test_client_assertion_with_an_ec_key_defaults_to_the_issuer_audience() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = client_assertion(
        settings(), key=key, token_endpoint=TOKEN_ENDPOINT, at=AT, jti=JTI, kid="rp-1"
    )
    header, claims = decoded(token, ECKey.import_key(public_jwk(key)), "ES256")
    assert header["alg"] == "ES256" and header["kid"] == "rp-1"
    assert claims == {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": ISSUER,
        "iat": AT,
        "exp": AT + 60,
        "jti": JTI,
    }


def test_client_assertion_audience_the_token_endpoint_where_configured() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = client_assertion(
        settings(assertion_audience="token_endpoint"),
        key=key,
        token_endpoint=TOKEN_ENDPOINT,
        at=AT,
        jti=JTI,
    )
    header, claims = decoded(token, RSAKey.import_key(public_jwk(key)), "RS256")
    assert header["alg"] == "RS256" and "kid" not in header
    assert claims["aud"] == TOKEN_ENDPOINT
    ps = client_assertion(
        settings(), key=key, token_endpoint=TOKEN_ENDPOINT, at=AT, jti=JTI, alg="PS256"
    )
    assert decoded(ps, RSAKey.import_key(public_jwk(key)), "PS256")[0]["alg"] == "PS256"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"jti": "short"}, "jti"),
        ({"lifetime": 3600}, "lifetime"),
        ({"alg": "ES256"}, "alg"),  # an RSA key
        ({"alg": "HS256"}, "alg"),
    ],
)
def test_client_assertion_refuses_unusable_arguments(kw: dict[str, Any], message: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    options: dict[str, Any] = {"token_endpoint": TOKEN_ENDPOINT, "at": AT, "jti": JTI, **kw}
    with pytest.raises(ValueError, match=f"^{message}"):
        client_assertion(settings(), key=key, **options)


def params(**kw: Any) -> dict[str, str]:
    parsed = kw.pop("parsed", None) or settings()
    return authorization_parameters(
        parsed,
        redirect_uri="https://trustanchor.example/upstream/ekyc-bank/callback",
        state="state-abc",
        nonce="nonce-xyz",
        code_verifier=VERIFIER,
        **kw,
    )


def test_authorization_parameters() -> None:
    assert params() == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "https://trustanchor.example/upstream/ekyc-bank/callback",
        "scope": "openid profile address",
        "state": "state-abc",
        "nonce": "nonce-xyz",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",  # RFC 7636, B
        "code_challenge_method": "S256",
    }
    assert sha256_b64url(VERIFIER) == params()["code_challenge"]


def test_a_fresh_login_sends_max_age_and_prompt() -> None:
    fresh = params(max_age=0, prompt_login=True)
    assert fresh["max_age"] == "0" and fresh["prompt"] == "login"
    assert "prompt" not in params(max_age=300)


def test_a_level_sends_the_acr_values_that_reach_it() -> None:
    assert params(level="substantial")["acr_values"] == "aal3 aal2"
    assert params(level="high")["acr_values"] == "aal3"
    assert "acr_values" not in params(level="low")  # the floor level already reaches it


def test_a_level_no_acr_reaches_is_refused() -> None:
    parsed = settings(level="substantial", acr_levels={"aal2": "substantial"})
    with pytest.raises(AnchorFailure) as caught:
        params(parsed=parsed, level="high")
    assert caught.value.reason == "level_unavailable"


def test_verified_claims_are_requested_with_the_claims_parameter() -> None:
    parsed = settings(verified_claims=["birthdate", "address"])
    claims = json.loads(params(parsed=parsed)["claims"])
    assert claims == {
        "id_token": {
            "verified_claims": {
                "verification": {"trust_framework": {"value": "jp_aml"}},
                "claims": {"birthdate": None, "address": None},
            }
        }
    }
    with_userinfo = settings(verified_claims=["birthdate"], userinfo=True)
    assert list(json.loads(params(parsed=with_userinfo)["claims"])) == ["userinfo"]


@pytest.mark.parametrize(
    "kw",
    [{"code_verifier": "short"}, {"state": ""}, {"nonce": ""}, {"max_age": -1}, {"level": "top"}],
)
def test_unusable_request_arguments_are_programming_errors(kw: dict[str, Any]) -> None:
    options: dict[str, Any] = {
        "redirect_uri": "https://trustanchor.example/cb",
        "state": "s",
        "nonce": "n",
        "code_verifier": VERIFIER,
        **kw,
    }
    with pytest.raises(ValueError):
        authorization_parameters(settings(), **options)
