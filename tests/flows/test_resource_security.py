"""SECURITY-CASES.md, "Tokens" (presentation) and "DPoP" (resource side) at our own protected
resource, the UserInfo endpoint, over real HTTP.

RFC 6750 §3 / RFC 9449 §7.1: a refused token is 401 with a ``WWW-Authenticate`` challenge in the
scheme the client used; a malformed request (two Authorization headers) is 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from support.rp import DpopKey, raw_post, raw_request
from support.stage import Stage


def get_userinfo(
    stage: Stage,
    *,
    authorization: str | Sequence[str] | None = None,
    dpop: str | Sequence[str] | None = None,
    params: Mapping[str, str] | None = None,
) -> requests.Response:
    """GET /userinfo; a list sends that many header lines."""
    lines: list[tuple[str, str]] = []
    for name, value in (("Authorization", authorization), ("DPoP", dpop)):
        lines += [(name, line) for line in ([value] if isinstance(value, str) else value or [])]
    url = stage.server.url("/userinfo")
    if params:
        url += "?" + urlencode(params)
    return raw_request("GET", url, lines)


def assert_refused(response: requests.Response, scheme: str, error: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == error, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f"{scheme} "), challenge
    assert f'error="{error}"' in challenge


def userinfo_proof(stage: Stage, key: DpopKey, access_token: str | None, **claims: Any) -> str:
    return key.proof(
        "GET",
        stage.server.url("/userinfo"),
        iat=stage.clock.now(),
        access_token=access_token,
        claims=claims,
    )


@pytest.fixture
def bearer_tokens(stage: Stage) -> dict[str, Any]:
    return stage.tokens(stage.bank, scope="openid profile")


@pytest.fixture
def dpop_key() -> DpopKey:
    return DpopKey()


@pytest.fixture
def dpop_tokens(stage: Stage, dpop_key: DpopKey) -> dict[str, Any]:
    tokens = stage.tokens(stage.bank, dpop_key=dpop_key, scope="openid profile")
    assert tokens["token_type"] == "DPoP"
    return tokens


# -- positive controls --------------------------------------------------------------------------


def test_bearer_token_in_the_authorization_header_is_accepted(
    stage: Stage, bearer_tokens: dict[str, Any]
) -> None:
    response = get_userinfo(stage, authorization=f"Bearer {bearer_tokens['access_token']}")
    assert response.status_code == 200, response.text
    assert response.json()["given_name"] == "Taro"
    assert response.headers["Cache-Control"] == "no-store"


def test_dpop_bound_token_with_a_valid_proof_is_accepted(
    stage: Stage, dpop_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = dpop_tokens["access_token"]
    response = get_userinfo(
        stage, authorization=f"DPoP {token}", dpop=userinfo_proof(stage, dpop_key, token)
    )
    assert response.status_code == 200, response.text


# -- where the token travels --------------------------------------------------------------------


def test_access_token_in_the_query_string_is_401(
    stage: Stage, bearer_tokens: dict[str, Any]
) -> None:
    response = get_userinfo(stage, params={"access_token": bearer_tokens["access_token"]})
    assert_refused(response, "Bearer", "invalid_token")


def test_access_token_in_a_form_body_is_401(stage: Stage, bearer_tokens: dict[str, Any]) -> None:
    response = requests.post(
        stage.server.url("/userinfo"),
        data={"access_token": bearer_tokens["access_token"]},
        timeout=10,
    )
    assert_refused(response, "Bearer", "invalid_token")


def test_missing_access_token_is_401(stage: Stage) -> None:
    response = get_userinfo(stage)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_two_authorization_headers_are_400_invalid_request(
    stage: Stage, bearer_tokens: dict[str, Any]
) -> None:
    token = bearer_tokens["access_token"]
    response = get_userinfo(stage, authorization=[f"Bearer {token}", f"Bearer {token}"])
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_unknown_authorization_scheme_is_401(stage: Stage, bearer_tokens: dict[str, Any]) -> None:
    response = get_userinfo(stage, authorization=f"MAC {bearer_tokens['access_token']}")
    assert response.status_code == 401


# -- what is presented as an access token -------------------------------------------------------


def test_id_token_presented_as_access_token_is_401(
    stage: Stage, bearer_tokens: dict[str, Any]
) -> None:
    response = get_userinfo(stage, authorization=f"Bearer {bearer_tokens['id_token']}")
    assert_refused(response, "Bearer", "invalid_token")


def test_refresh_token_presented_as_access_token_is_401(
    stage: Stage, bearer_tokens: dict[str, Any]
) -> None:
    response = get_userinfo(stage, authorization=f"Bearer {bearer_tokens['refresh_token']}")
    assert_refused(response, "Bearer", "invalid_token")


def test_token_with_another_audience_is_401(stage: Stage) -> None:
    """The shop's tokens are for its own resource server (registered ``audiences``), even when
    they carry the openid scope."""
    tokens = stage.tokens(stage.shop, scope="openid profile")
    response = get_userinfo(stage, authorization=f"Bearer {tokens['access_token']}")
    assert_refused(response, "Bearer", "invalid_token")


def test_client_credentials_token_with_another_audience_is_401(stage: Stage) -> None:
    issued = stage.shop.post("/token", {"grant_type": "client_credentials"})
    assert issued.status_code == 200, issued.text
    response = get_userinfo(stage, authorization=f"Bearer {issued.json()['access_token']}")
    assert_refused(response, "Bearer", "invalid_token")


def test_tampered_access_token_is_401(stage: Stage, bearer_tokens: dict[str, Any]) -> None:
    header, payload, signature = bearer_tokens["access_token"].split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    response = get_userinfo(stage, authorization=f"Bearer {header}.{payload}.{flipped}")
    assert_refused(response, "Bearer", "invalid_token")


def test_revoked_access_token_is_401(stage: Stage, bearer_tokens: dict[str, Any]) -> None:
    revoked = stage.bank.post("/revoke", {"token": bearer_tokens["access_token"]})
    assert revoked.status_code == 200
    response = get_userinfo(stage, authorization=f"Bearer {bearer_tokens['access_token']}")
    assert_refused(response, "Bearer", "invalid_token")


def test_expired_access_token_is_401(stage: Stage, bearer_tokens: dict[str, Any]) -> None:
    stage.clock.shift(stage.server.settings.tokens.access_token_lifetime + 1)
    response = get_userinfo(stage, authorization=f"Bearer {bearer_tokens['access_token']}")
    assert_refused(response, "Bearer", "invalid_token")


# -- DPoP binding -------------------------------------------------------------------------------


def test_dpop_bound_token_presented_as_bearer_is_401(
    stage: Stage, dpop_tokens: dict[str, Any]
) -> None:
    response = get_userinfo(stage, authorization=f"Bearer {dpop_tokens['access_token']}")
    assert_refused(response, "Bearer", "invalid_token")


def test_dpop_bound_token_as_bearer_with_a_valid_proof_is_still_401(
    stage: Stage, dpop_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = dpop_tokens["access_token"]
    response = get_userinfo(
        stage, authorization=f"Bearer {token}", dpop=userinfo_proof(stage, dpop_key, token)
    )
    assert_refused(response, "Bearer", "invalid_token")


def test_bearer_token_presented_with_the_dpop_scheme_is_401(
    stage: Stage, bearer_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = bearer_tokens["access_token"]
    response = get_userinfo(
        stage, authorization=f"DPoP {token}", dpop=userinfo_proof(stage, dpop_key, token)
    )
    assert_refused(response, "DPoP", "invalid_token")


def test_dpop_proof_without_ath_is_401(
    stage: Stage, dpop_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = dpop_tokens["access_token"]
    response = get_userinfo(
        stage, authorization=f"DPoP {token}", dpop=userinfo_proof(stage, dpop_key, None)
    )
    assert_refused(response, "DPoP", "invalid_dpop_proof")


def test_dpop_proof_with_a_wrong_ath_is_401(
    stage: Stage, dpop_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = dpop_tokens["access_token"]
    proof = userinfo_proof(stage, dpop_key, token + "x")
    response = get_userinfo(stage, authorization=f"DPoP {token}", dpop=proof)
    assert_refused(response, "DPoP", "invalid_dpop_proof")


def test_dpop_proof_by_a_key_other_than_cnf_jkt_is_401(
    stage: Stage, dpop_tokens: dict[str, Any]
) -> None:
    token = dpop_tokens["access_token"]
    proof = userinfo_proof(stage, DpopKey(), token)
    response = get_userinfo(stage, authorization=f"DPoP {token}", dpop=proof)
    assert_refused(response, "DPoP", "invalid_dpop_proof")


def test_dpop_bound_token_without_a_proof_is_401(stage: Stage, dpop_tokens: dict[str, Any]) -> None:
    response = get_userinfo(stage, authorization=f"DPoP {dpop_tokens['access_token']}")
    assert_refused(response, "DPoP", "invalid_dpop_proof")


def test_dpop_proof_for_another_method_is_401(
    stage: Stage, dpop_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = dpop_tokens["access_token"]
    proof = dpop_key.proof(
        "POST", stage.server.url("/userinfo"), iat=stage.clock.now(), access_token=token
    )
    response = get_userinfo(stage, authorization=f"DPoP {token}", dpop=proof)
    assert_refused(response, "DPoP", "invalid_dpop_proof")


def test_two_dpop_headers_at_userinfo_are_401_invalid_dpop_proof(
    stage: Stage, dpop_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = dpop_tokens["access_token"]
    proofs = [userinfo_proof(stage, dpop_key, token), userinfo_proof(stage, dpop_key, token)]
    response = get_userinfo(stage, authorization=f"DPoP {token}", dpop=proofs)
    assert_refused(response, "DPoP", "invalid_dpop_proof")
    assert "more than one" in response.json()["error_description"]


def test_replayed_dpop_proof_at_userinfo_is_401(
    stage: Stage, dpop_tokens: dict[str, Any], dpop_key: DpopKey
) -> None:
    token = dpop_tokens["access_token"]
    proof = userinfo_proof(stage, dpop_key, token)
    first = get_userinfo(stage, authorization=f"DPoP {token}", dpop=proof)
    assert first.status_code == 200
    again = get_userinfo(stage, authorization=f"DPoP {token}", dpop=proof)
    assert_refused(again, "DPoP", "invalid_dpop_proof")


def test_dpop_challenge_lists_the_configured_algorithms(
    stage: Stage, dpop_tokens: dict[str, Any]
) -> None:
    response = get_userinfo(stage, authorization=f"DPoP {dpop_tokens['access_token']}")
    algs = " ".join(stage.server.settings.dpop.allowed_algs)
    assert f'algs="{algs}"' in response.headers["WWW-Authenticate"]


def test_userinfo_post_with_a_token_in_header_and_body_is_401(
    stage: Stage, bearer_tokens: dict[str, Any]
) -> None:
    token = bearer_tokens["access_token"]
    response = raw_post(
        stage.server.url("/userinfo"),
        f"access_token={token}".encode("ascii"),
        [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", f"Bearer {token}"),
        ],
    )
    assert_refused(response, "Bearer", "invalid_token")
