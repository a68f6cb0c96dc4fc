"""The walking skeleton end to end over real HTTP: an intermediary (requests-oauth2client, an
independent RP library) pushes an authorization request, the person logs in by presenting an
SD-JWT VC (issued and presented with the independent `sd-jwt` package), consents, and the
intermediary gets DPoP-bound tokens; then userinfo, introspection, refresh and revocation."""

from __future__ import annotations

import json

import requests
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from requests_oauth2client import BearerToken, DPoPKey, OAuth2Client, PrivateKeyJwt
from support.credentials import Wallet
from support.ecosystem import BANK_REDIRECT, Browser, Ecosystem, WalletApp
from support.html import parse
from support.server import RunningServer


def rp_client(server: RunningServer, ecosystem: Ecosystem) -> OAuth2Client:
    return OAuth2Client.from_discovery_endpoint(
        server.url("/.well-known/openid-configuration"),
        issuer=server.issuer,
        testing=True,  # our test server speaks http on 127.0.0.1
        auth=PrivateKeyJwt(ecosystem.bank.client_id, ecosystem.bank.private_jwk, aud=server.issuer),
        redirect_uri=BANK_REDIRECT,
        id_token_signed_response_alg="ES256",
        dpop_bound_access_tokens=True,
    )


def login_through_wallet(
    server: RunningServer, ecosystem: Ecosystem, authorization_url: str, *, approve: bool = True
) -> str:
    """Drive browser + phone wallet from /authorize to the redirect back to the bank."""
    browser = Browser(server)
    page = browser.follow(browser.get(authorization_url))
    assert page.status_code == 200, page.text
    assert "Test Bank" in page.text and "National ID (test)" in page.text
    wallet_page = browser.follow(browser.submit(page.text, "/wallet", anchor=ecosystem.anchor_id))
    assert wallet_page.status_code == 200
    assert "<svg" in wallet_page.text  # the QR code, rendered server-side
    link = parse(wallet_page.text).links["same-device"].replace("&amp;", "&")
    assert link.startswith("openid4vp://?")
    wallet = Wallet.generate()
    phone = WalletApp(server, wallet, ecosystem.credential(wallet))
    request = phone.request_object(link)
    assert request["response_mode"] == "direct_post"
    assert request["dcql_query"]["credentials"][0]["meta"]["vct_values"] == [ecosystem.issuer.vct]
    answer = phone.respond(request)
    assert answer.status_code == 200, answer.text
    status = browser.get(
        server.url(
            parse(wallet_page.text)
            .links["continue"]
            .split("?")[0]
            .replace("/interaction/", "/interaction/", 1)
        ).replace(server.issuer, server.issuer)
    )
    assert status.status_code == 200
    consent = browser.follow(browser.get(server.url(parse(wallet_page.text).links["continue"])))
    assert consent.status_code == 200
    assert "Given name" in consent.text
    decision = browser.submit(consent.text, "/consent", decision="approve" if approve else "deny")
    assert decision.status_code == 303
    location = decision.headers["Location"]
    assert location.startswith(BANK_REDIRECT)
    return location


def test_login_with_smartphone_credential_end_to_end(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    client = rp_client(server, ecosystem)
    dpop_key = DPoPKey.generate(alg="ES256")
    auth_request = client.authorization_request(
        scope="openid profile",
        dpop_key=dpop_key,
        claims=json.dumps(
            {
                "userinfo": {
                    "verified_claims": {
                        "verification": {"trust_framework": None},
                        "claims": {"given_name": None, "birthdate": None},
                    }
                }
            }
        ),
    )
    par_request = client.pushed_authorization_request(auth_request)
    location = login_through_wallet(server, ecosystem, str(par_request.uri))

    response = auth_request.validate_callback(location)  # checks state and iss (RFC 9207)
    # requests-oauth2client 1.8 cannot rebuild a DPoPToken after validating its ID token (it
    # drops the DPoP key), so the library validates the ID token on a plain copy instead.
    token = client.authorization_code(response, dpop_key=dpop_key, validate=False)
    assert token.token_type.lower() == "dpop"
    BearerToken(
        access_token=token.access_token, id_token=token.id_token, expires_in=60
    ).validate_id_token(client, response)

    jwks = KeySet.import_key_set(requests.get(server.url("/jwks"), timeout=5).json())
    access = jose_jwt.decode(str(token.access_token), jwks, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["cnf"]["jkt"] == dpop_key.private_key.thumbprint()
    assert access.claims["acr"] == "urn:trustanchor:acr:high"
    id_token = jose_jwt.decode(str(token.id_token), jwks, algorithms=["ES256"])
    assert id_token.claims["aud"] == ecosystem.bank.client_id
    assert id_token.claims["nonce"] == auth_request.nonce
    assert id_token.claims["sub"] == access.claims["sub"]
    assert id_token.claims["amr"]

    userinfo = client.userinfo(token)
    assert userinfo["sub"] == access.claims["sub"]
    assert userinfo["given_name"] == "Taro"  # profile scope
    verified = userinfo["verified_claims"]
    assert verified["verification"]["trust_framework"] == "jp_my_number_card"
    assert verified["claims"] == {"given_name": "Taro", "birthdate": "1990-04-01"}

    rs = OAuth2Client.from_discovery_endpoint(
        server.url("/.well-known/openid-configuration"),
        issuer=server.issuer,
        testing=True,  # our test server speaks http on 127.0.0.1
        auth=PrivateKeyJwt(
            ecosystem.ledger.client_id, ecosystem.ledger.private_jwk, aud=server.issuer
        ),
    )
    introspection = rs.introspect_token(token.access_token)
    assert introspection["active"] is True
    assert introspection["token_type"] == "DPoP"

    refreshed = client.refresh_token(token, dpop_key=dpop_key)
    assert refreshed.access_token != token.access_token
    assert refreshed.refresh_token and refreshed.refresh_token != token.refresh_token

    client.revoke_refresh_token(refreshed.refresh_token)
    assert rs.introspect_token(refreshed.access_token)["active"] is False
    assert rs.introspect_token(token.access_token)["active"] is False
