"""SECURITY-CASES.md, "PAR, redirect URIs, PKCE", over real HTTP.

Refusals at the PAR endpoint are JSON errors with the exact OAuth code. Refusals at the
authorization endpoint are an error page for the person (400, HTML, no Location): until a pushed
request is found, nothing is known to be a registered redirect URI. Every redirect back to the
client carries ``iss`` (checked by support.person.authorization_response).
"""

from __future__ import annotations

import hashlib

import pytest
import requests
from support.assertions import assert_json_error
from support.ecosystem import BANK_REDIRECT
from support.person import authorization_response
from support.rp import Pkce, b64url
from support.stage import Stage


def assert_error_page(response: requests.Response) -> None:
    """A refusal shown to the person: never a redirect, whatever the request named."""
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Location" not in response.headers


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


# -- the authorization endpoint accepts pushed requests only -----------------------------------


def test_authorize_with_inline_parameters_is_an_error_page(stage: Stage) -> None:
    pkce = Pkce.generate()
    response = requests.get(
        stage.server.url("/authorize"),
        params={
            "client_id": stage.bank.client_id,
            "response_type": "code",
            "redirect_uri": BANK_REDIRECT,
            "scope": "openid",
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            "state": "s",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert_error_page(response)


def test_authorize_for_an_unknown_client_is_an_error_page(stage: Stage) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate())
    response = requests.get(
        stage.bank.authorization_url(request_uri, client_id="nobody"),
        allow_redirects=False,
        timeout=10,
    )
    assert_error_page(response)


def test_authorize_without_client_id_is_an_error_page(stage: Stage) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate())
    response = requests.get(
        stage.server.url("/authorize"),
        params={"request_uri": request_uri},
        allow_redirects=False,
        timeout=10,
    )
    assert_error_page(response)


def test_authorize_with_another_clients_request_uri_is_an_error_page(stage: Stage) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate())
    response = requests.get(
        stage.shop.authorization_url(request_uri), allow_redirects=False, timeout=10
    )
    assert_error_page(response)


def test_expired_request_uri_is_an_error_page(stage: Stage) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate())
    stage.clock.shift(stage.server.settings.tokens.request_uri_lifetime + 1)
    response = requests.get(
        stage.bank.authorization_url(request_uri), allow_redirects=False, timeout=10
    )
    assert_error_page(response)


def test_request_uri_reused_after_its_code_was_issued_is_an_error_page(stage: Stage) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate())
    url = stage.bank.authorization_url(request_uri)
    answer = stage.person().authorize(url, redirect_uri=BANK_REDIRECT)
    assert answer["code"]
    again = requests.get(url, allow_redirects=False, timeout=10)
    assert_error_page(again)


# -- every authorization response carries iss (RFC 9207) ---------------------------------------


def test_prompt_none_without_session_redirects_login_required_with_iss(stage: Stage) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate(), prompt="none", state="st-1")
    response = requests.get(
        stage.bank.authorization_url(request_uri), allow_redirects=False, timeout=10
    )
    assert response.status_code == 303
    params = authorization_response(response.headers["Location"], BANK_REDIRECT, stage.server)
    assert params["error"] == "login_required"
    assert params["state"] == "st-1"


def test_denied_consent_redirects_access_denied_with_iss(stage: Stage) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate(), state="st-2")
    params = stage.person().authorize(
        stage.bank.authorization_url(request_uri), redirect_uri=BANK_REDIRECT, approve=False
    )
    assert params["error"] == "access_denied"
    assert params["state"] == "st-2"
    assert "code" not in params


# -- PAR: PKCE ----------------------------------------------------------------------------------


def test_par_without_code_challenge_is_invalid_request(stage: Stage) -> None:
    response = stage.bank.push(code_challenge=None)
    assert_json_error(response, 400, "invalid_request")


def test_par_without_challenge_or_method_is_invalid_request(stage: Stage) -> None:
    """The only way to get a code without a stored challenge is a request without one; PAR
    refuses it, so "verifier sent although no challenge was stored" cannot arise (the token
    endpoint's fail-closed branch is covered in tests/unit/test_pkce.py)."""
    response = stage.bank.push(code_challenge=None, code_challenge_method=None)
    assert_json_error(response, 400, "invalid_request")


def test_par_with_method_plain_is_invalid_request(stage: Stage) -> None:
    pkce = Pkce.generate()
    response = stage.bank.push(pkce, code_challenge=pkce.verifier, code_challenge_method="plain")
    assert_json_error(response, 400, "invalid_request")


def test_par_without_method_is_invalid_request(stage: Stage) -> None:
    """RFC 7636 defaults a missing method to plain, which is refused."""
    response = stage.bank.push(code_challenge_method=None)
    assert_json_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "challenge",
    [
        pytest.param("a" * 42, id="42-chars"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("a" * 42 + "=", id="padding"),
        pytest.param("a" * 42 + "+", id="plus"),
        pytest.param("a" * 42 + " ", id="space"),
        pytest.param("a" * 42 + "\u00e9", id="non-ascii"),
    ],
)
def test_par_with_malformed_code_challenge_is_invalid_request(stage: Stage, challenge: str) -> None:
    response = stage.bank.push(code_challenge=challenge)
    assert_json_error(response, 400, "invalid_request")


# -- token endpoint: PKCE verifier --------------------------------------------------------------


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 42, id="42-chars"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("a" * 42 + "!", id="illegal-char"),
        pytest.param("a" * 42 + "/", id="slash"),
    ],
)
def test_malformed_code_verifier_is_invalid_grant(stage: Stage, verifier: str) -> None:
    """The challenge is the S256 of this very verifier: only its syntax is wrong."""
    pkce = Pkce(verifier, s256(verifier))
    code = stage.code(stage.bank, pkce)
    assert_json_error(stage.bank.redeem(code, verifier), 400, "invalid_grant")


def test_missing_code_verifier_is_invalid_grant(stage: Stage) -> None:
    code = stage.code(stage.bank, Pkce.generate())
    assert_json_error(stage.bank.redeem(code, None), 400, "invalid_grant")


def test_wrong_code_verifier_is_invalid_grant(stage: Stage) -> None:
    code = stage.code(stage.bank, Pkce.generate())
    assert_json_error(stage.bank.redeem(code, Pkce.generate().verifier), 400, "invalid_grant")


def test_code_verifier_equal_to_the_challenge_is_invalid_grant(stage: Stage) -> None:
    """The plain-method downgrade: sending the challenge itself as verifier."""
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    assert_json_error(stage.bank.redeem(code, pkce.challenge), 400, "invalid_grant")


# -- PAR: shape of the request ------------------------------------------------------------------


def test_request_uri_inside_a_par_body_is_invalid_request(stage: Stage) -> None:
    response = stage.bank.push(request_uri="urn:ietf:params:oauth:request_uri:abc")
    assert_json_error(response, 400, "invalid_request")


def test_request_object_inside_a_par_body_is_refused(stage: Stage) -> None:
    response = stage.bank.push(request="eyJhbGciOiJub25lIn0.e30.")
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "request_not_supported")


@pytest.mark.parametrize("path", ["/par", "/token", "/introspect", "/revoke"])
def test_get_on_a_post_only_endpoint_is_405_with_a_json_error(stage: Stage, path: str) -> None:
    response = requests.get(
        stage.server.url(path), params={"client_id": "bank"}, allow_redirects=False, timeout=10
    )
    assert_json_error(response, 405, "invalid_request")
    assert "POST" in response.headers.get("Allow", "")


@pytest.mark.parametrize("name", ["scope", "state", "redirect_uri", "code_challenge", "client_id"])
def test_repeated_parameter_at_par_is_invalid_request(stage: Stage, name: str) -> None:
    pkce = Pkce.generate()
    params = {
        "client_id": stage.bank.client_id,
        "response_type": "code",
        "redirect_uri": BANK_REDIRECT,
        "scope": "openid",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": "s",
    }
    items = [*params.items(), (name, params[name])]
    assert_json_error(stage.bank.post("/par", items), 400, "invalid_request")


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token"])
def test_response_type_other_than_code_is_unsupported_response_type(
    stage: Stage, response_type: str
) -> None:
    response = stage.bank.push(response_type=response_type)
    assert_json_error(response, 400, "unsupported_response_type")


def test_par_without_response_type_is_invalid_request(stage: Stage) -> None:
    assert_json_error(stage.bank.push(response_type=None), 400, "invalid_request")


# -- PAR: redirect URIs are matched exactly -----------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param(BANK_REDIRECT + "?next=https://evil.example", id="extra-query"),
        pytest.param(BANK_REDIRECT + "?", id="empty-query"),
        pytest.param(BANK_REDIRECT + "/", id="trailing-slash"),
        pytest.param("https://BANK.example/callback", id="host-case"),
        pytest.param("https://bank.example/Callback", id="path-case"),
        pytest.param("HTTPS://bank.example/callback", id="scheme-case"),
        pytest.param(BANK_REDIRECT + "#frag", id="fragment"),
        pytest.param("https://bank.example/x/../callback", id="dot-dot-segment"),
        pytest.param("https://bank.example/./callback", id="dot-segment"),
        pytest.param("https://bank.example/%63allback", id="percent-encoded"),
        pytest.param("https://bank.example:443/callback", id="explicit-port"),
        pytest.param("http://bank.example/callback", id="http"),
        pytest.param("https://bank.example.evil.example/callback", id="suffix-host"),
        pytest.param("https://evil.example@bank.example/callback", id="userinfo"),
        pytest.param(BANK_REDIRECT + " ", id="trailing-space"),
    ],
)
def test_redirect_uri_not_exactly_registered_is_invalid_request(
    stage: Stage, redirect_uri: str
) -> None:
    response = stage.bank.push(redirect_uri=redirect_uri)
    assert_json_error(response, 400, "invalid_request")


def test_missing_redirect_uri_is_invalid_request(stage: Stage) -> None:
    assert_json_error(stage.bank.push(redirect_uri=None), 400, "invalid_request")


def test_inline_parameters_beside_request_uri_do_not_override_the_pushed_ones(
    stage: Stage,
) -> None:
    """RFC 9126 §4: only the pushed request counts; an inline redirect_uri goes nowhere."""
    request_uri = stage.bank.request_uri(Pkce.generate(), prompt="none", state="pushed")
    response = requests.get(
        stage.server.url("/authorize"),
        params={
            "client_id": stage.bank.client_id,
            "request_uri": request_uri,
            "redirect_uri": "https://evil.example/cb",
            "state": "inline",
            "response_type": "token",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303
    params = authorization_response(response.headers["Location"], BANK_REDIRECT, stage.server)
    assert params["state"] == "pushed"
    assert params["error"] == "login_required"
