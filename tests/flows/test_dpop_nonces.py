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
from support.ecosystem import BANK_REDIRECT, Ecosystem, Party
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


# -- the DPoP-protected APIs hand out the next nonce with every answer (issue 14) ----------------

MACHINE = Party("nonce-machine")


@pytest.fixture
def machine_server(
    tmp_path: Path, database_url: str, ecosystem: Ecosystem
) -> Iterator[RunningServer]:
    machine = {
        "client_id": MACHINE.client_id,
        "client_name": MACHINE.client_id,
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": MACHINE.jwks,
        "grant_types": ["client_credentials"],
        "scope": "accounts audit admin",
    }
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=[*ecosystem.client_declarations(), machine],
        overrides={"dpop": {"require_nonce": True}},
    )
    with running_server(settings) as running:
        yield running


class NonceKeepingClient:
    """A machine client that keeps the last DPoP-Nonce it was given and signs every proof with
    it: it never asks for one again as long as every answer hands out the next."""

    def __init__(self, server: RunningServer, scope: str) -> None:
        self.server = server
        self.key = DpopKey()
        self.rp = RelyingParty(server, MACHINE, SystemClock(), redirect_uri="")
        grant = {"grant_type": "client_credentials", "scope": scope}
        url = server.url("/token")
        first = self.rp.post("/token", grant, dpop=self.key.proof("POST", url, iat=_now()))
        assert first.json()["error"] == "use_dpop_nonce"
        self.nonce = first.headers["DPoP-Nonce"]
        issued = self.rp.post("/token", grant, dpop=self._proof("POST", url))
        assert issued.status_code == 200, issued.text
        self.nonce = issued.headers["DPoP-Nonce"]
        self.token = str(issued.json()["access_token"])

    def _proof(self, method: str, url: str, token: str | None = None) -> str:
        claims = {"nonce": self.nonce}
        return self.key.proof(method, url, iat=_now(), access_token=token, claims=claims)

    def call(self, method: str, path: str, body: object = None) -> requests.Response:
        url = self.server.url(path)
        answer = requests.request(
            method,
            url,
            json=body,
            headers={
                "Authorization": f"DPoP {self.token}",
                "DPoP": self._proof(method, url, self.token),
            },
            timeout=10,
        )
        assert answer.json().get("error") != "use_dpop_nonce" if answer.content else True
        fresh = answer.headers.get("DPoP-Nonce")
        assert fresh, f"{method} {path} answered {answer.status_code} without a DPoP-Nonce"
        self.nonce = fresh
        return answer


def _now() -> int:
    return int(time.time())


def test_every_answer_of_the_dpop_protected_apis_hands_out_the_next_nonce(
    machine_server: RunningServer,
) -> None:
    client = NonceKeepingClient(machine_server, "accounts audit admin")
    deposit = {"reference": "0001-234-5678901", "kind": "bank_deposit", "label": "deposit"}
    created = client.call("POST", "/accounts", deposit)
    assert created.status_code == 201, created.text
    account_id = created.json()["account_id"]
    answers = [
        client.call("GET", "/accounts"),
        client.call("GET", f"/accounts/{account_id}"),
        client.call("GET", "/links"),
        client.call("GET", "/audit/keys"),
        client.call("GET", "/admin/anchor-sets"),
        client.call("DELETE", f"/accounts/{account_id}"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 204]
    # refusals hand it out too: an unknown link, a body the API refuses
    assert client.call("DELETE", "/links/no-such-link").status_code == 404
    assert client.call("POST", "/accounts", {"reference": 1}).status_code == 400


def test_an_expired_nonce_is_replaced_before_it_costs_a_round_trip(
    machine_server: RunningServer,
) -> None:
    """The nonce handed out with a success is fresh, so a client calling again later than the
    previous token-endpoint nonce's lifetime still gets through at the first try."""
    client = NonceKeepingClient(machine_server, "accounts")
    before = client.nonce
    time.sleep(1.1)
    client.call("GET", "/accounts")
    assert client.nonce != before
    assert int(client.nonce.split(".")[0]) > int(before.split(".")[0])


def test_refusals_without_credentials_hand_out_a_nonce(machine_server: RunningServer) -> None:
    for path in ("/accounts", "/links", "/audit/checkpoint", "/admin/anchor-sets"):
        answer = requests.get(machine_server.url(path), timeout=10)
        assert answer.status_code == 401
        assert answer.headers["DPoP-Nonce"]


def test_without_nonces_the_apis_hand_out_none(
    tmp_path: Path, database_url: str, ecosystem: Ecosystem
) -> None:
    settings = test_settings(
        tmp_path, database_url, port=free_port(), anchors=[ecosystem.anchor_declaration()]
    )
    with running_server(settings) as plain:
        for path in ("/accounts", "/links", "/audit/checkpoint", "/admin/anchor-sets"):
            assert "DPoP-Nonce" not in requests.get(plain.url(path), timeout=10).headers
