"""SECURITY-CASES.md, "Tokens" and the token-endpoint lines of "DPoP", over real HTTP; plus the
published metadata and keys checked with an independent JOSE library (joserfc)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from support.assertions import assert_json_error
from support.ecosystem import BANK_REDIRECT, Ecosystem
from support.rp import DpopKey, Pkce
from support.stage import SHOP_AUDIENCE, Stage


def assert_oauth_error(response: requests.Response, status: int, error: str) -> None:
    assert_json_error(response, status, error)
    assert response.headers["Cache-Control"] == "no-store"


def userinfo_status(stage: Stage, access_token: str) -> int:
    response = requests.get(
        stage.server.url("/userinfo"),
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    )
    return response.status_code


def published_keys(stage: Stage) -> KeySet:
    return KeySet.import_key_set(requests.get(stage.server.url("/jwks"), timeout=10).json())


# -- authorization codes ------------------------------------------------------------------------


def test_code_redeemed_twice_is_invalid_grant_and_revokes_the_first_tokens(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    first = stage.bank.redeem(code, pkce.verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert userinfo_status(stage, tokens["access_token"]) == 200

    assert_oauth_error(stage.bank.redeem(code, pkce.verifier), 400, "invalid_grant")

    assert stage.ledger.introspect(tokens["access_token"]) == {"active": False}
    assert userinfo_status(stage, tokens["access_token"]) == 401
    assert_oauth_error(stage.bank.refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_code_older_than_its_lifetime_is_invalid_grant(stage: Stage) -> None:
    lifetime = stage.server.settings.tokens.authorization_code_lifetime
    assert lifetime <= 60
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    stage.clock.shift(lifetime + 1)
    assert_oauth_error(stage.bank.redeem(code, pkce.verifier), 400, "invalid_grant")


def test_code_redeemed_by_another_client_is_invalid_grant(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    response = stage.shop.redeem(code, pkce.verifier, redirect_uri=BANK_REDIRECT)
    assert_oauth_error(response, 400, "invalid_grant")


def test_code_with_another_redirect_uri_is_invalid_grant(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    response = stage.bank.redeem(code, pkce.verifier, redirect_uri=BANK_REDIRECT + "/")
    assert_oauth_error(response, 400, "invalid_grant")


def test_unknown_code_is_invalid_grant(stage: Stage) -> None:
    response = stage.bank.redeem("not-a-code", Pkce.generate().verifier)
    assert_oauth_error(response, 400, "invalid_grant")


def test_an_unsupported_grant_type_is_repeated_only_in_the_characters_rfc_6749_allows(
    stage: Stage,
) -> None:
    plain = stage.bank.post("/token", {"grant_type": "password"})
    assert_oauth_error(plain, 400, "unsupported_grant_type")
    assert "password" in plain.json()["error_description"]
    for odd in ('x"y', "a\\b", "caf\u00e9"):
        response = stage.bank.post("/token", {"grant_type": odd})
        assert_oauth_error(response, 400, "unsupported_grant_type")
        description = response.json()["error_description"]
        assert odd not in description
        assert all(0x20 <= ord(ch) <= 0x7E for ch in description)


# -- refresh tokens -----------------------------------------------------------------------------


def test_rotated_refresh_token_reused_is_invalid_grant_and_revokes_the_family(
    stage: Stage,
) -> None:
    first = stage.tokens(stage.bank)
    rotated = stage.bank.refresh(first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert stage.ledger.introspect(second["access_token"])["active"] is True

    assert_oauth_error(stage.bank.refresh(first["refresh_token"]), 400, "invalid_grant")

    assert_oauth_error(stage.bank.refresh(second["refresh_token"]), 400, "invalid_grant")
    for token in (first["access_token"], second["access_token"]):
        assert stage.ledger.introspect(token) == {"active": False}
        assert userinfo_status(stage, token) == 401


def test_refresh_asking_for_more_scope_is_invalid_scope(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank, scope="openid")
    response = stage.bank.refresh(tokens["refresh_token"], scope="openid profile")
    assert_oauth_error(response, 400, "invalid_scope")


def test_refresh_asking_for_less_scope_is_granted(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank, scope="openid profile")
    response = stage.bank.refresh(tokens["refresh_token"], scope="openid")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid"


def test_refresh_asking_for_more_authorization_details_is_refused(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank)
    details = json.dumps([{"type": "value_transfer", "amount": "5000", "currency": "JPY"}])
    response = stage.bank.post(
        "/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "authorization_details": details,
        },
    )
    assert_oauth_error(response, 400, "invalid_authorization_details")


def test_refresh_token_of_another_client_is_invalid_grant(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank)
    assert_oauth_error(stage.shop.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    # The owner's token was left untouched by the failed attempt.
    assert stage.bank.refresh(tokens["refresh_token"]).status_code == 200


# -- DPoP at the token endpoint -----------------------------------------------------------------


def test_dpop_jkt_at_par_differs_from_the_token_proof_key_is_invalid_grant(stage: Stage) -> None:
    bound, other = DpopKey(), DpopKey()
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce, dpop_jkt=bound.jkt)
    response = stage.bank.redeem(code, pkce.verifier, dpop=stage.bank.proof(other, "/token"))
    assert_oauth_error(response, 400, "invalid_grant")


def test_dpop_jkt_at_par_without_any_proof_at_the_token_endpoint_is_invalid_grant(
    stage: Stage,
) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce, dpop_jkt=DpopKey().jkt)
    assert_oauth_error(stage.bank.redeem(code, pkce.verifier), 400, "invalid_grant")


def test_dpop_jkt_at_par_matching_the_token_proof_binds_the_token(stage: Stage) -> None:
    key = DpopKey()
    tokens = stage.tokens(stage.bank, dpop_key=key, dpop_jkt=key.jkt)
    assert tokens["token_type"] == "DPoP"
    access = jose_jwt.decode(tokens["access_token"], published_keys(stage), algorithms=["ES256"])
    assert access.claims["cnf"] == {"jkt": key.jkt}


def test_dpop_jkt_at_par_differing_from_the_par_proof_is_invalid_request(stage: Stage) -> None:
    proving, named = DpopKey(), DpopKey()
    pkce = Pkce.generate()
    params = {
        "client_id": stage.bank.client_id,
        "response_type": "code",
        "redirect_uri": BANK_REDIRECT,
        "scope": "openid",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "dpop_jkt": named.jkt,
    }
    response = stage.bank.post("/par", params, dpop=stage.bank.proof(proving, "/par"))
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_request", "invalid_dpop_proof")


def test_client_registered_for_dpop_must_bind_at_par(stage: Stage) -> None:
    response = stage.dpop_bank.push()
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_client_registered_for_dpop_must_present_a_proof_at_the_token_endpoint(
    stage: Stage,
) -> None:
    key = DpopKey()
    pkce = Pkce.generate()
    code = stage.code(stage.dpop_bank, pkce, dpop_jkt=key.jkt)
    assert_oauth_error(stage.dpop_bank.redeem(code, pkce.verifier), 400, "invalid_dpop_proof")


def test_client_registered_for_dpop_gets_dpop_bound_tokens(stage: Stage) -> None:
    key = DpopKey()
    tokens = stage.tokens(stage.dpop_bank, dpop_key=key, dpop_jkt=key.jkt)
    assert tokens["token_type"] == "DPoP"


def test_two_dpop_headers_at_the_token_endpoint_are_invalid_dpop_proof(stage: Stage) -> None:
    key = DpopKey()
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    proofs = [stage.bank.proof(key, "/token"), stage.bank.proof(key, "/token")]
    response = stage.bank.redeem(code, pkce.verifier, dpop=proofs)
    assert_oauth_error(response, 400, "invalid_dpop_proof")
    assert "more than one" in response.json()["error_description"]


def test_refresh_of_a_dpop_bound_public_style_token_needs_the_same_key(stage: Stage) -> None:
    key = DpopKey()
    tokens = stage.tokens(stage.dpop_bank, dpop_key=key, dpop_jkt=key.jkt)
    no_proof = stage.dpop_bank.refresh(tokens["refresh_token"])
    assert_oauth_error(no_proof, 400, "invalid_dpop_proof")


# -- responses are never cached ------------------------------------------------------------------


def test_every_token_response_has_cache_control_no_store(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    responses = [stage.bank.redeem(code, pkce.verifier)]
    responses.append(stage.bank.refresh(responses[0].json()["refresh_token"]))
    responses.append(stage.shop.post("/token", {"grant_type": "client_credentials"}))
    responses.append(stage.bank.redeem(code, pkce.verifier))  # an error response
    responses.append(stage.bank.post("/token", {"grant_type": "password"}))
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 200, 400, 400], [r.text for r in responses]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"


# -- what a resource server relies on: metadata and keys, read with another library ------------


def test_tokens_verify_against_the_published_jwks_with_joserfc(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank, scope="openid profile")
    keys = published_keys(stage)
    access = jose_jwt.decode(tokens["access_token"], keys, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["iss"] == stage.server.issuer
    assert access.claims["client_id"] == stage.bank.client_id
    id_token = jose_jwt.decode(tokens["id_token"], keys, algorithms=["ES256"])
    assert id_token.claims["iss"] == stage.server.issuer
    assert id_token.claims["aud"] == stage.bank.client_id
    assert id_token.header["typ"] != "at+jwt"
    assert id_token.claims["sub"] == access.claims["sub"]


def test_client_credentials_token_carries_the_clients_registered_audience(stage: Stage) -> None:
    response = stage.shop.post("/token", {"grant_type": "client_credentials"})
    assert response.status_code == 200, response.text
    token = jose_jwt.decode(response.json()["access_token"], published_keys(stage))
    assert token.claims["aud"] == SHOP_AUDIENCE


def test_discovery_document_names_the_endpoints_actually_served(stage: Stage) -> None:
    doc: dict[str, Any] = requests.get(
        stage.server.url("/.well-known/openid-configuration"), timeout=10
    ).json()
    assert doc["issuer"] == stage.server.issuer
    same = requests.get(stage.server.url("/.well-known/oauth-authorization-server"), timeout=10)
    assert same.json() == doc

    jwks = requests.get(doc["jwks_uri"], timeout=10)
    assert jwks.status_code == 200
    assert KeySet.import_key_set(jwks.json()).keys
    assert all("d" not in key for key in jwks.json()["keys"])

    for name in ("token_endpoint", "pushed_authorization_request_endpoint"):
        response = requests.post(doc[name], data={}, timeout=10)
        assert response.status_code in (400, 401), (name, response.status_code)
        assert "error" in response.json()
    for name in ("introspection_endpoint", "revocation_endpoint"):
        response = requests.post(doc[name], data={"token": "x"}, timeout=10)
        assert response.status_code == 401, (name, response.status_code)
        assert response.json()["error"] == "invalid_client"
    userinfo = requests.get(doc["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 401
    assert userinfo.headers["WWW-Authenticate"].split()[0] in ("Bearer", "DPoP")
    authorize = requests.get(doc["authorization_endpoint"], allow_redirects=False, timeout=10)
    assert authorize.status_code == 400  # an error page, never a redirect without request_uri
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["require_pushed_authorization_requests"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True


def test_claims_mapped_onto_protocol_names_never_replace_protocol_claims(
    tmp_path: Path, database_url: str, ecosystem: Ecosystem
) -> None:
    """An anchor whose claim mapping names ``sub``, ``iss`` or ``aud`` (an operator's slip) must
    not let a claims request swap the pairwise subject for the anchor's own identifier, nor
    rewrite the ID token's issuer or audience."""
    mapping = {"given_name": "given_name", "sub": "sub", "iss": "given_name", "aud": "family_name"}
    with Stage.running(tmp_path, database_url, ecosystem, anchor={"claims": mapping}) as stage:
        request = {"userinfo": {"sub": None, "iss": None}, "id_token": {"sub": None, "iss": None,
                   "aud": None, "given_name": None}}  # fmt: skip
        tokens = stage.tokens(stage.bank, claims=json.dumps(request))
        id_token = jose_jwt.decode(tokens["id_token"], published_keys(stage), algorithms=["ES256"])
        assert id_token.claims["iss"] == stage.server.issuer
        assert id_token.claims["aud"] == stage.bank.client_id
        assert id_token.claims["given_name"] == "Taro"
        subject = id_token.claims["sub"]
        assert subject != "person-0001"
        userinfo = requests.get(
            stage.server.url("/userinfo"),
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=10,
        ).json()
        assert userinfo["sub"] == subject
        assert "iss" not in userinfo
