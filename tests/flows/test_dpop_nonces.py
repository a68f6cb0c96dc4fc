"""Server-provided DPoP nonces (RFC 9449 §8) end to end: with `dpop.require_nonce`, a proof
without our nonce is answered with `use_dpop_nonce` and a DPoP-Nonce header; the independent RP
library retries with it and the flow completes; every answer hands out the next nonce."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests_oauth2client import DPoPKey, OAuth2Client, PrivateKeyJwt
from sqlalchemy import func, select
from support.ecosystem import BANK_REDIRECT, Ecosystem
from support.person import Person
from support.rp import DpopKey, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.clock import SystemClock
from trustanchor.storage.tables import used_jtis


@pytest.fixture
def server(tmp_path: Path, database_url: str, ecosystem: Ecosystem) -> Iterator[RunningServer]:
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=ecosystem.client_declarations(),
        overrides={"dpop": {"require_nonce": True}},
    )
    with running_server(settings) as running:
        yield running


def test_token_endpoint_asks_for_a_nonce_then_accepts_it(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    rp = RelyingParty(server, ecosystem.bank, SystemClock(), redirect_uri=BANK_REDIRECT)
    key = DpopKey()
    url = server.url("/token")
    grant = {"grant_type": "client_credentials"}
    first = rp.post("/token", grant, dpop=key.proof("POST", url, iat=int(time.time())))
    assert first.status_code == 400
    assert first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    forged = rp.post(
        "/token",
        grant,
        dpop=key.proof("POST", url, iat=int(time.time()), claims={"nonce": nonce[:-2] + "xx"}),
    )
    assert forged.status_code == 400
    assert forged.json()["error"] == "use_dpop_nonce"
    second = rp.post(
        "/token", grant, dpop=key.proof("POST", url, iat=int(time.time()), claims={"nonce": nonce})
    )
    assert second.status_code == 200, second.text
    assert second.json()["token_type"] == "DPoP"
    assert second.headers["DPoP-Nonce"]  # the next nonce comes with every answer


def test_the_same_client_assertion_is_retried_with_the_nonce(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """RFC 9449 §8: the client repeats its request with the nonce. The proof is checked before
    the client, so the use_dpop_nonce refusal left the assertion (and its jti) unspent."""
    rp = RelyingParty(server, ecosystem.bank, SystemClock(), redirect_uri=BANK_REDIRECT)
    key = DpopKey()
    url = server.url("/token")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": rp.assertion(),
    }
    first = rp.post(
        "/token", form, authenticate=False, dpop=key.proof("POST", url, iat=int(time.time()))
    )
    assert first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    retried = rp.post(
        "/token",
        form,
        authenticate=False,
        dpop=key.proof("POST", url, iat=int(time.time()), claims={"nonce": nonce}),
    )
    assert retried.status_code == 200, retried.text
    again = rp.post(  # the assertion is one-time once it was accepted
        "/token",
        form,
        authenticate=False,
        dpop=key.proof(
            "POST", url, iat=int(time.time()), claims={"nonce": retried.headers["DPoP-Nonce"]}
        ),
    )
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"


def test_no_proof_is_recorded_for_a_client_that_did_not_authenticate(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """The proof's jti is recorded only after the client is authenticated: nobody writes to the
    replay registry without credentials, and the proof is then still good for its client."""
    rp = RelyingParty(server, ecosystem.bank, SystemClock(), redirect_uri=BANK_REDIRECT)
    key = DpopKey()
    url = server.url("/token")
    grant = {"grant_type": "client_credentials"}
    nonce = rp.post("/token", grant, dpop=key.proof("POST", url, iat=int(time.time()))).headers[
        "DPoP-Nonce"
    ]
    proof = key.proof("POST", url, iat=int(time.time()), claims={"nonce": nonce})
    with server.services.db.reader() as conn:
        before = conn.execute(select(func.count()).select_from(used_jtis)).scalar_one()
    stranger = rp.post("/token", {**grant, "client_id": "bank"}, authenticate=False, dpop=proof)
    assert stranger.status_code == 401
    with server.services.db.reader() as conn:
        after = conn.execute(select(func.count()).select_from(used_jtis)).scalar_one()
    assert after == before
    assert rp.post("/token", grant, dpop=proof).status_code == 200
    replayed = rp.post("/token", grant, dpop=proof)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_dpop_proof"


def test_userinfo_asks_for_a_nonce_with_401(server: RunningServer, ecosystem: Ecosystem) -> None:
    rp = RelyingParty(server, ecosystem.bank, SystemClock(), redirect_uri=BANK_REDIRECT)
    key = DpopKey()
    token_url = server.url("/token")
    nonce = rp.post(
        "/token",
        {"grant_type": "client_credentials"},
        dpop=key.proof("POST", token_url, iat=int(time.time())),
    ).headers["DPoP-Nonce"]
    issued = rp.post(
        "/token",
        {"grant_type": "client_credentials"},
        dpop=key.proof("POST", token_url, iat=int(time.time()), claims={"nonce": nonce}),
    ).json()["access_token"]
    url = server.url("/userinfo")
    answer = requests.get(
        url,
        headers={
            "Authorization": f"DPoP {issued}",
            "DPoP": key.proof("GET", url, iat=int(time.time()), access_token=issued),
        },
        timeout=10,
    )
    assert answer.status_code == 401
    assert 'error="use_dpop_nonce"' in answer.headers["WWW-Authenticate"]
    assert answer.headers["DPoP-Nonce"]


def test_full_flow_with_nonces(server: RunningServer, ecosystem: Ecosystem) -> None:
    client = OAuth2Client.from_discovery_endpoint(
        server.url("/.well-known/openid-configuration"),
        issuer=server.issuer,
        testing=True,
        auth=PrivateKeyJwt(ecosystem.bank.client_id, ecosystem.bank.private_jwk, aud=server.issuer),
        redirect_uri=BANK_REDIRECT,
        id_token_signed_response_alg="ES256",
        dpop_bound_access_tokens=True,
    )
    dpop_key = DPoPKey.generate(alg="ES256")
    request = client.authorization_request(scope="openid profile", dpop_key=dpop_key)
    pushed = client.pushed_authorization_request(request)
    params = Person(server, ecosystem).authorize(str(pushed.uri), redirect_uri=BANK_REDIRECT)
    location = BANK_REDIRECT + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    token = client.authorization_code(
        request.validate_callback(location), dpop_key=dpop_key, validate=False
    )
    assert token.token_type.lower() == "dpop"
    assert client.userinfo(token)["given_name"] == "Taro"
