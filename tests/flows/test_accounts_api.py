"""Issue 4, for intermediaries: the accounts API (``/accounts``, ``/links``) over real HTTP with
client_credentials tokens carrying the ``accounts`` scope. Registering is idempotent per
reference, the raw reference is never stored, an intermediary sees only its own accounts, and
every refusal is a specific JSON error. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select
from support.ecosystem import Ecosystem, Party
from support.rp import RelyingParty
from support.server import RunningServer

from trustanchor.clock import SystemClock
from trustanchor.domain.accounts import is_account_id
from trustanchor.storage.tables import accounts

FIRST_BANK = Party("first-bank")
SECOND_BANK = Party("second-bank")
NO_SCOPE = Party("no-accounts-scope")


def machine_client(who: Party, scope: str) -> dict[str, Any]:
    return {
        "client_id": who.client_id,
        "client_name": who.client_id,
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": who.jwks,
        "grant_types": ["client_credentials"],
        "scope": scope,
    }


@pytest.fixture
def extra_clients() -> list[dict[str, Any]]:
    return [
        machine_client(FIRST_BANK, "accounts"),
        machine_client(SECOND_BANK, "accounts"),
        machine_client(NO_SCOPE, "audit"),
    ]


def token_for(server: RunningServer, who: Party, scope: str) -> str:
    rp = RelyingParty(server, who, SystemClock(), redirect_uri="")
    response = rp.post("/token", {"grant_type": "client_credentials", "scope": scope})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class Api:
    def __init__(self, server: RunningServer, token: str) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(
        self, path: str, body: Any = None, *, data: str | None = None, **headers: str
    ) -> requests.Response:
        kwargs: dict[str, Any] = {"json": body} if data is None else {"data": data}
        return requests.post(
            self.server.url(path), headers={**self.headers, **headers}, timeout=10, **kwargs
        )

    def get(self, path: str) -> requests.Response:
        return requests.get(self.server.url(path), headers=self.headers, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.server.url(path), headers=self.headers, timeout=10)


@pytest.fixture
def first(server: RunningServer) -> Api:
    return Api(server, token_for(server, FIRST_BANK, "accounts"))


@pytest.fixture
def second(server: RunningServer) -> Api:
    return Api(server, token_for(server, SECOND_BANK, "accounts"))


DEPOSIT = {"reference": "0001-234-5678901", "kind": "bank_deposit", "label": "普通預金 ****8901"}


def test_registering_an_account_is_idempotent_per_reference(
    server: RunningServer, first: Api
) -> None:
    created = first.post("/accounts", DEPOSIT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert is_account_id(body["account_id"])
    assert created.headers["Location"] == server.url(f"/accounts/{body['account_id']}")
    assert created.headers["Cache-Control"] == "no-store"
    assert body["kind"] == "bank_deposit" and body["label"] == DEPOSIT["label"]
    assert (body["bound"], body["holder"], body["status"]) == (False, None, "active")

    again = first.post("/accounts", DEPOSIT)
    assert again.status_code == 200 and again.json() == body
    conflict = first.post("/accounts", {**DEPOSIT, "kind": "cbdc_wallet"})
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"

    listed = first.get("/accounts")
    assert listed.status_code == 200 and listed.json()["accounts"] == [body]
    assert first.get(f"/accounts/{body['account_id']}").json() == body


def test_the_raw_account_reference_is_never_stored(server: RunningServer, first: Api) -> None:
    assert first.post("/accounts", DEPOSIT).status_code == 201
    with server.services.db.reader() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(accounts))]
    assert len(rows) == 1
    assert DEPOSIT["reference"] not in repr(rows)
    assert len(rows[0]["reference_digest"]) == 43


def test_an_intermediary_sees_only_its_own_accounts(
    server: RunningServer, first: Api, second: Api
) -> None:
    mine = first.post("/accounts", DEPOSIT).json()
    theirs = second.post("/accounts", DEPOSIT)  # the same reference at another bank
    assert theirs.status_code == 201 and theirs.json()["account_id"] != mine["account_id"]
    assert second.get("/accounts").json()["accounts"] == [theirs.json()]
    assert second.get(f"/accounts/{mine['account_id']}").status_code == 404
    assert second.delete(f"/accounts/{mine['account_id']}").status_code == 404
    assert first.get(f"/accounts/{mine['account_id']}").json()["status"] == "active"


def test_closing_an_account(server: RunningServer, first: Api) -> None:
    account = first.post("/accounts", DEPOSIT).json()
    closed = first.delete(f"/accounts/{account['account_id']}")
    assert closed.status_code == 204
    assert first.get(f"/accounts/{account['account_id']}").json()["status"] == "closed"
    again = first.delete(f"/accounts/{account['account_id']}")
    assert again.status_code == 404 and again.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**DEPOSIT, "holder_name": "Taro"}, 400),  # unknown member
        ({**DEPOSIT, "kind": "credit_card"}, 400),
        ({**DEPOSIT, "label": ""}, 400),
        ({**DEPOSIT, "label": "x" * 65}, 400),
        ({**DEPOSIT, "label": "tab\there"}, 400),
        ({**DEPOSIT, "label": " padded"}, 400),
        ({**DEPOSIT, "reference": 12345}, 400),
        ({**DEPOSIT, "label": "Cafe\u0301"}, 400),  # not NFC
        (["not", "an", "object"], 400),
    ],
)
def test_malformed_registrations_are_refused(
    server: RunningServer, first: Api, body: Any, status: int
) -> None:
    response = first.post("/accounts", body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == "invalid_request"
    assert first.get("/accounts").json()["accounts"] == []


def test_duplicate_keys_wrong_type_and_oversized_bodies_are_refused(
    server: RunningServer, first: Api
) -> None:
    duplicate = '{"reference":"a","reference":"b","kind":"bank_deposit","label":"x"}'
    response = first.post("/accounts", data=duplicate, **{"Content-Type": "application/json"})
    assert response.status_code == 400 and "duplicate" in response.json()["error_description"]
    form = first.post("/accounts", data="reference=a", **{"Content-Type": "text/plain"})
    assert form.status_code == 415
    huge = first.post("/accounts", {**DEPOSIT, "label": "x" * 5000})
    assert huge.status_code == 413


def test_the_accounts_api_needs_a_token_with_the_accounts_scope(server: RunningServer) -> None:
    anonymous = requests.get(server.url("/accounts"), timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer scope="accounts"')
    garbage = Api(server, "not-a-token").get("/accounts")
    assert garbage.status_code == 401 and garbage.json()["error"] == "invalid_token"
    other_scope = Api(server, token_for(server, NO_SCOPE, "audit")).get("/accounts")
    assert other_scope.status_code == 403
    assert 'error="insufficient_scope", scope="accounts"' in other_scope.headers["WWW-Authenticate"]


def test_accounts_scope_cannot_be_requested_at_the_token_endpoint_without_registration(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    rp = RelyingParty(server, ecosystem.ledger, SystemClock(), redirect_uri="")
    response = rp.post("/token", {"grant_type": "client_credentials", "scope": "accounts"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_links_of_an_intermediary_start_empty_and_unknown_links_are_not_found(
    server: RunningServer, first: Api
) -> None:
    assert first.get("/links").json() == {"links": []}
    missing = first.delete("/links/lnk_AAAAAAAAAAAAAAAAAAAAAA")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
