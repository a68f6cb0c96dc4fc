"""What a client reads when its authentication or its DPoP proof is refused (issue 14), over real
HTTP at /token, /par, /introspect and /revoke: an ``error_description`` that says what to change
(``aud must be exactly "<issuer>"``, expired, jti reused, htu expected, ...), and never whether a
client is registered: an unknown client and a wrong key or secret get byte-identical answers."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.ecosystem import BANK_REDIRECT, Ecosystem, Party
from support.rp import DpopKey, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.clock import SystemClock
from trustanchor.oauth.client_auth import ASSERTION_NOT_VERIFIED, BASIC_NOT_VERIFIED

ENDPOINTS = {
    "/token": {"grant_type": "client_credentials"},
    "/par": {
        "response_type": "code",
        "client_id": "bank",
        "redirect_uri": BANK_REDIRECT,
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    },
    "/introspect": {"token": "whatever"},
    "/revoke": {"token": "whatever"},
}
# Headers that differ between any two answers, whatever they say.
_PER_ANSWER = {"date", "x-request-id", "dpop-nonce"}


@pytest.fixture
def extra_clients() -> list[dict[str, Any]]:
    """A public client: its id in an assertion is answered as an unknown one is."""
    public = {
        "client_id": "wallet-app",
        "client_type": "public",
        "redirect_uris": ["https://wallet.example/cb"],
    }
    return [public]


@pytest.fixture
def demo_server(tmp_path: Path, database_url: str, ecosystem: Ecosystem) -> Iterator[RunningServer]:
    """The server in demo mode with a client_secret_basic client (demo-only method)."""
    secret_client = {
        "client_id": "secret-client",
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": "s3cret/+:value",
        "grant_types": ["client_credentials"],
    }
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=[*ecosystem.client_declarations(), secret_client],
        overrides={"service": {"mode": "demo"}},
    )
    with running_server(settings) as running:
        yield running


def _rp(server: RunningServer, party: Party) -> RelyingParty:
    return RelyingParty(server, party, SystemClock(), redirect_uri=BANK_REDIRECT)


def _answer(response: requests.Response) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    headers = tuple(
        sorted(
            (name.lower(), value)
            for name, value in response.headers.items()
            if name.lower() not in _PER_ANSWER
        )
    )
    return response.status_code, headers, response.content


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_unknown_client_and_wrong_key_are_byte_identical(
    server: RunningServer, ecosystem: Ecosystem, path: str
) -> None:
    bank = _rp(server, ecosystem.bank)
    impostor = _rp(server, Party(ecosystem.bank.client_id))  # same client_id, another key
    form = ENDPOINTS[path]
    answers = {
        "unknown client": bank.post(
            path,
            [
                *({k: v for k, v in form.items() if k != "client_id"}).items(),
                *bank.credentials(bank.assertion(claims={"iss": "ghost", "sub": "ghost"})),
            ],
            authenticate=False,
        ),
        "wrong key": impostor.post(
            path, {k: v for k, v in form.items() if k != "client_id"}, authenticate=True
        ),
        "unknown kid": bank.post(
            path,
            [
                *({k: v for k, v in form.items() if k != "client_id"}).items(),
                *bank.credentials(bank.assertion(headers={"kid": "not-registered"})),
            ],
            authenticate=False,
        ),
        "public client's id": bank.post(
            path,
            [
                *({k: v for k, v in form.items() if k != "client_id"}).items(),
                *bank.credentials(
                    bank.assertion(claims={"iss": "wallet-app", "sub": "wallet-app"})
                ),
            ],
            authenticate=False,
        ),
    }
    shapes = {name: _answer(response) for name, response in answers.items()}
    assert len(set(shapes.values())) == 1, shapes
    status, _, body = shapes["unknown client"]
    assert status == 401
    assert answers["wrong key"].json() == {
        "error": "invalid_client",
        "error_description": ASSERTION_NOT_VERIFIED,
    }
    assert b"ghost" not in body and b"bank" not in body


def test_basic_unknown_client_and_wrong_secret_are_byte_identical(
    demo_server: RunningServer,
) -> None:
    def basic(client_id: str, secret: str) -> dict[str, str]:
        raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    answers = [
        requests.post(
            demo_server.url("/token"),
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, secret),
            timeout=10,
        )
        for client_id, secret in (
            ("ghost", "s3cret/+:value"),
            ("secret-client", "wrong"),
            ("bank", "anything"),
        )
    ]
    shapes = {_answer(answer) for answer in answers}
    assert len(shapes) == 1, shapes
    assert answers[0].status_code == 401
    assert answers[0].json()["error_description"] == BASIC_NOT_VERIFIED
    assert answers[0].headers["WWW-Authenticate"] == 'Basic realm="trustanchor"'


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_an_assertion_for_the_token_endpoint_url_is_told_the_issuer(
    server: RunningServer, ecosystem: Ecosystem, path: str
) -> None:
    """Many libraries default aud to the token endpoint URL: still refused (FAPI 2.0), and the
    description says which value to use instead."""
    bank = _rp(server, ecosystem.bank)
    for wrong in (server.url("/token"), server.url(path), [server.issuer]):
        refused = bank.post(
            path,
            [*ENDPOINTS[path].items(), *bank.credentials(bank.assertion(claims={"aud": wrong}))],
            authenticate=False,
        )
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert refused.json()["error_description"].startswith(
            f'client_assertion aud must be exactly "{server.issuer}"'
        )


def test_assertion_descriptions_over_http(server: RunningServer, ecosystem: Ecosystem) -> None:
    bank = _rp(server, ecosystem.bank)
    now = int(time.time())
    grant = {"grant_type": "client_credentials"}

    def said(assertion: str) -> str:
        refused = bank.post(
            "/token", [*grant.items(), *bank.credentials(assertion)], authenticate=False
        )
        assert refused.status_code == 401, refused.text
        return str(refused.json()["error_description"])

    assert "has expired" in said(bank.assertion(claims={"iat": now - 200, "exp": now - 100}))
    assert "iat is in the future" in said(
        bank.assertion(claims={"iat": now + 600, "exp": now + 660})
    )
    once = bank.assertion()
    assert bank.post("/token", [*grant.items(), *bank.credentials(once)], authenticate=False).ok
    assert "jti was already used" in said(once)


def test_dpop_descriptions_over_http(server: RunningServer, ecosystem: Ecosystem) -> None:
    bank = _rp(server, ecosystem.bank)
    key = DpopKey()
    grant = {"grant_type": "client_credentials"}
    token_url = server.url("/token")
    now = int(time.time())
    cases = {
        f"it must be {token_url}": key.proof("POST", server.url("/par"), iat=now),
        "it must be POST": key.proof("GET", token_url, iat=now),
        "within 60 s of the server's time": key.proof("POST", token_url, iat=now - 3600),
    }
    for expected, proof in cases.items():
        refused = bank.post("/token", grant, dpop=proof)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_dpop_proof"
        assert expected in refused.json()["error_description"]
