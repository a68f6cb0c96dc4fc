"""Issue 4, the authorization_details types over real HTTP: SECURITY-CASES.md "authorization_details
and policy" at the PAR endpoint (malformed ``value_transfer`` entries, a type the client is not
registered for), the same validation at the token endpoint's refresh comparison, and the JSON
Schemas named in discovery and served at ``/schemas/<type>.json``.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from support.assertions import assert_json_error
from support.details import CREDITOR, DEBTOR, link, transfer
from support.ecosystem import BANK_REDIRECT, Ecosystem, Party
from support.person import Person
from support.rp import Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.clock import SystemClock
from trustanchor.oauth.authorization_details import type_schema

PAYER = Party("payer-bank")
LINKER = Party("linker-bank")
PAYER_REDIRECT = "https://payer-bank.example/callback"
LINKER_REDIRECT = "https://linker-bank.example/callback"


def intermediary(who: Party, redirect_uri: str, types: list[str]) -> dict[str, Any]:
    return {
        "client_id": who.client_id,
        "client_name": who.client_id,
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": who.jwks,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile",
        "authorization_details_types": types,
    }


@pytest.fixture
def extra_clients() -> list[dict[str, Any]]:
    return [
        intermediary(PAYER, PAYER_REDIRECT, ["account_link", "value_transfer"]),
        intermediary(LINKER, LINKER_REDIRECT, ["account_link"]),
    ]


@pytest.fixture
def payer(server: RunningServer) -> RelyingParty:
    return RelyingParty(server, PAYER, SystemClock(), redirect_uri=PAYER_REDIRECT)


@pytest.fixture
def linker(server: RunningServer) -> RelyingParty:
    return RelyingParty(server, LINKER, SystemClock(), redirect_uri=LINKER_REDIRECT)


def raw_transfer(
    *,
    amount: str = '"5000"',
    currency: str = '"JPY"',
    creditor: str = CREDITOR,
    extra: str = "",
) -> str:
    """A value_transfer request as raw JSON text: what a client can send that a JSON encoder in
    the test would never produce (NaN, a duplicate key)."""
    return (
        '[{"type":"value_transfer",'
        f'"instructed_amount":{{"currency":{currency},"amount":{amount}}},'
        f'"debtor_account":"{DEBTOR}","creditor_account":"{creditor}"{extra}}}]'
    )


def assert_refused(response: requests.Response, description: str) -> None:
    assert_json_error(response, 400, "invalid_authorization_details")
    assert response.json()["error_description"] == description


# -- PAR -----------------------------------------------------------------------------------------


def test_par_with_a_well_formed_value_transfer_is_accepted(payer: RelyingParty) -> None:
    response = payer.push(authorization_details=raw_transfer())
    assert response.status_code == 201, response.text


def test_par_with_a_well_formed_account_link_is_accepted(payer: RelyingParty) -> None:
    response = payer.push(authorization_details=json.dumps([link()]))
    assert response.status_code == 201, response.text


ENTRY = "entry 0 (value_transfer): "


@pytest.mark.parametrize(
    ("details", "description"),
    [
        pytest.param(
            raw_transfer(amount="5000"),
            ENTRY + "instructed_amount.amount must be a string",
            id="amount_as_json_number",
        ),
        pytest.param(
            raw_transfer(amount="NaN"),
            "authorization_details is not valid JSON: non-standard number NaN",
            id="amount_nan_in_raw_json",
        ),
        pytest.param(
            raw_transfer(amount="1e999"),
            ENTRY + "instructed_amount.amount must be a string",
            id="amount_huge_json_exponent",
        ),
        pytest.param(
            raw_transfer(amount='"1e9"'),
            ENTRY + "instructed_amount.amount must be a string of decimal digits with an optional "
            "fraction (no sign, exponent, spaces or leading zeros)",
            id="amount_exponent_text",
        ),
        pytest.param(
            raw_transfer(amount='"1.5"'),
            ENTRY + "instructed_amount.amount has more decimals than JPY allows (0)",
            id="too_many_decimals_for_jpy",
        ),
        pytest.param(
            raw_transfer(amount='"0"'),
            ENTRY + "instructed_amount.amount must be greater than zero",
            id="amount_zero",
        ),
        pytest.param(
            raw_transfer(amount='"-5000"'),
            ENTRY + "instructed_amount.amount must be a string of decimal digits with an optional "
            "fraction (no sign, exponent, spaces or leading zeros)",
            id="amount_negative",
        ),
        pytest.param(
            raw_transfer(extra=',"note":"pay now"'),
            ENTRY + "unknown member note is not allowed",
            id="unknown_member",
        ),
        pytest.param(
            raw_transfer(extra=f',"debtor_account":"{CREDITOR}"'),
            "authorization_details is not valid JSON: duplicate member 'debtor_account'",
            id="duplicate_key",
        ),
        pytest.param(
            raw_transfer(creditor=DEBTOR),
            ENTRY + "debtor_account and creditor_account must differ",
            id="debtor_equals_creditor",
        ),
        pytest.param(
            json.dumps([transfer(), transfer(amount="1")]),
            "entry 1: at most one value_transfer entry is allowed per request",
            id="two_transfers_in_one_request",
        ),
    ],
)
def test_par_with_a_malformed_value_transfer_is_invalid_authorization_details(
    payer: RelyingParty, details: str, description: str
) -> None:
    assert_refused(payer.push(authorization_details=details), description)


def test_par_with_a_type_the_client_is_not_registered_for_is_invalid_authorization_details(
    linker: RelyingParty,
) -> None:
    response = linker.push(authorization_details=raw_transfer())
    assert_refused(response, "entry 0: type value_transfer is not allowed for this client")
    # The type it is registered for is fine.
    assert linker.push(authorization_details=json.dumps([link()])).status_code == 201


def test_par_from_a_client_registered_for_no_type_is_invalid_authorization_details(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    bank = RelyingParty(server, ecosystem.bank, SystemClock(), redirect_uri=BANK_REDIRECT)
    response = bank.push(authorization_details=json.dumps([link()]))
    assert_refused(response, "entry 0: type account_link is not allowed for this client")


# -- the refresh comparison at the token endpoint validates the same way -----------------------


def test_refresh_token_request_validates_authorization_details_with_the_types(
    server: RunningServer, ecosystem: Ecosystem, payer: RelyingParty
) -> None:
    pkce = Pkce.generate()
    url = payer.authorization_url(payer.request_uri(pkce, scope="openid"))
    answer = Person(server, ecosystem).authorize(url, redirect_uri=PAYER_REDIRECT)
    tokens = payer.redeem(answer["code"], pkce.verifier)
    assert tokens.status_code == 200, tokens.text
    refresh_token = tokens.json()["refresh_token"]

    def refresh(details: str) -> requests.Response:
        return payer.post(
            "/token",
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "authorization_details": details,
            },
        )

    # Well formed, so the type's validator accepted it, but never granted: a refresh cannot add.
    assert_refused(refresh(json.dumps([link()])), "a refresh cannot add authorization_details")
    assert_refused(
        refresh(raw_transfer(amount='"1.5"')),
        ENTRY + "instructed_amount.amount has more decimals than JPY allows (0)",
    )
    # The failed attempts left the refresh token usable.
    assert payer.refresh(refresh_token).status_code == 200


# -- discovery and the served schemas ------------------------------------------------------------


def discovery(server: RunningServer) -> dict[str, Any]:
    response = requests.get(server.url("/.well-known/openid-configuration"), timeout=10)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def test_discovery_lists_every_type_with_its_schema_url(server: RunningServer) -> None:
    doc = discovery(server)
    types = ["account_link", "funding", "standing_funding", "value_transfer"]
    assert doc["authorization_details_types_supported"] == types
    assert doc["authorization_details_schemas"] == {
        name: server.url(f"/schemas/{name}.json") for name in types
    }


def test_each_published_schema_is_served_as_cacheable_schema_json(server: RunningServer) -> None:
    for type_name, url in discovery(server)["authorization_details_schemas"].items():
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/schema+json")
        assert response.headers["Cache-Control"] == "public, max-age=86400"
        served = response.json()
        assert served == {"$id": url, **type_schema(type_name)}
        Draft202012Validator.check_schema(served)

        etag = response.headers["ETag"]
        again = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
        assert again.status_code == 304
        assert again.content == b""


def test_the_served_schema_judges_entries_like_the_server(server: RunningServer) -> None:
    url = discovery(server)["authorization_details_schemas"]["value_transfer"]
    schema = Draft202012Validator(requests.get(url, timeout=10).json())
    assert schema.is_valid(transfer())
    assert not schema.is_valid(transfer(amount=5000))
    assert not schema.is_valid(transfer(amount="1.5"))
    assert not schema.is_valid(transfer(note="x"))


@pytest.mark.parametrize("path", ["/schemas/payment_initiation.json", "/schemas/..%2Fjwks.json"])
def test_an_unknown_schema_is_a_json_404(server: RunningServer, path: str) -> None:
    response = requests.get(server.url(path), timeout=10)
    assert_json_error(response, 404, "not_found")
