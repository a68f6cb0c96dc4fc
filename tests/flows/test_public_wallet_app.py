"""A wallet app on a phone as a *public* client (no secret, no key of its own for client
authentication): PKCE and DPoP are mandatory, and its refresh tokens stay bound to its DPoP key.
Driven by requests-oauth2client as an independent RP implementation."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from requests_oauth2client import DPoPKey, OAuth2Client
from support.ecosystem import Ecosystem
from support.person import Person
from support.rp import DpopKey, Pkce
from support.server import RunningServer

APP_REDIRECT = "https://wallet-app.example/oauth/callback"
PUBLIC_CLIENT = {
    "client_id": "wallet-app",
    "client_name": {"en": "Wallet App", "ja": "ウォレットアプリ"},
    "client_type": "public",
    "token_endpoint_auth_method": "none",
    "redirect_uris": [APP_REDIRECT],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile",
}


@pytest.fixture
def extra_clients() -> list[dict[str, Any]]:
    return [PUBLIC_CLIENT]


def app_client(server: RunningServer) -> OAuth2Client:
    return OAuth2Client.from_discovery_endpoint(
        server.url("/.well-known/openid-configuration"),
        issuer=server.issuer,
        testing=True,  # http on 127.0.0.1
        client_id="wallet-app",
        redirect_uri=APP_REDIRECT,
        id_token_signed_response_alg="ES256",
        dpop_bound_access_tokens=True,
    )


def test_public_wallet_app_gets_dpop_bound_tokens(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    client = app_client(server)
    dpop_key = DPoPKey.generate(alg="ES256")
    request = client.authorization_request(scope="openid profile", dpop_key=dpop_key)
    pushed = client.pushed_authorization_request(request)
    params = Person(server, ecosystem).authorize(str(pushed.uri), redirect_uri=APP_REDIRECT)
    location = APP_REDIRECT + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    response = request.validate_callback(location)
    token = client.authorization_code(response, dpop_key=dpop_key, validate=False)
    assert token.token_type.lower() == "dpop"
    assert token.refresh_token
    userinfo = client.userinfo(token)
    assert userinfo["given_name"] == "Taro"
    refreshed = client.refresh_token(token, dpop_key=dpop_key)
    assert refreshed.access_token != token.access_token


def test_public_client_without_dpop_is_refused_at_par(server: RunningServer) -> None:
    pkce = Pkce.generate()
    answer = requests.post(
        server.url("/par"),
        data={
            "client_id": "wallet-app",
            "response_type": "code",
            "redirect_uri": APP_REDIRECT,
            "scope": "openid",
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "dpop" in answer.json()["error_description"].lower()


def test_public_client_refresh_token_is_bound_to_its_dpop_key(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    client = app_client(server)
    dpop_key = DPoPKey.generate(alg="ES256")
    request = client.authorization_request(scope="openid", dpop_key=dpop_key)
    pushed = client.pushed_authorization_request(request)
    params = Person(server, ecosystem).authorize(str(pushed.uri), redirect_uri=APP_REDIRECT)
    location = APP_REDIRECT + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    token = client.authorization_code(
        request.validate_callback(location), dpop_key=dpop_key, validate=False
    )
    stolen_with_other_key = DpopKey()
    answer = requests.post(
        server.url("/token"),
        data={
            "grant_type": "refresh_token",
            "refresh_token": str(token.refresh_token),
            "client_id": "wallet-app",
        },
        headers={
            "DPoP": stolen_with_other_key.proof("POST", server.url("/token"), iat=int(time.time()))
        },
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    without_proof = requests.post(
        server.url("/token"),
        data={
            "grant_type": "refresh_token",
            "refresh_token": str(token.refresh_token),
            "client_id": "wallet-app",
        },
        timeout=10,
    )
    assert without_proof.status_code == 400
    # The legitimate app, with its key, still refreshes: a thief cannot burn its token.
    assert client.refresh_token(token, dpop_key=dpop_key).access_token
