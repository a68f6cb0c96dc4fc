"""Issue 4, for operators: the admin API changes an anchor set's policy over HTTP — validated by
the policy engine's parser (every problem listed), versioned, audited in the same transaction.
Only client_credentials tokens with the ``admin`` scope of
private_key_jwt clients get in. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from support.ecosystem import Party
from support.payments import JP_SET, Payments
from support.rp import RelyingParty
from support.server import RunningServer

from trustanchor.audit.entries import OperatorChange, parse_entry
from trustanchor.clock import SystemClock

OPERATOR = Party("operator")


@pytest.fixture
def payments() -> Payments:
    world = Payments()
    world.extra_clients.append(
        {
            "client_id": OPERATOR.client_id,
            "client_name": "Operator",
            "client_type": "confidential",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": OPERATOR.jwks,
            "grant_types": ["client_credentials"],
            "scope": "admin",
        }
    )
    return world


def admin_headers(server: RunningServer, who: Party, scope: str) -> dict[str, str]:
    rp = RelyingParty(server, who, SystemClock(), redirect_uri="")
    response = rp.post("/token", {"grant_type": "client_credentials", "scope": scope})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def put_policy(server: RunningServer, headers: dict[str, str], body: Any) -> requests.Response:
    return requests.put(
        server.url(f"/admin/anchor-sets/{JP_SET}/policy"), json=body, headers=headers, timeout=10
    )


def test_an_operator_replaces_a_policy_and_it_is_versioned_and_audited(
    payment_server: RunningServer,
) -> None:
    server = payment_server
    headers = admin_headers(server, OPERATOR, "admin")
    listed = requests.get(server.url("/admin/anchor-sets"), headers=headers, timeout=10)
    assert listed.status_code == 200 and listed.headers["Cache-Control"] == "no-store"
    before = {s["id"]: s for s in listed.json()["anchor_sets"]}[JP_SET]
    assert before["policy"]["limits"] == {"JPY": "1000000"}

    changed = put_policy(
        server,
        headers,
        {"operations": ["account_link"], "min_assurance_link": "high"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["changed"] and body["version"] == before["version"] + 1
    assert body["policy"]["operations"] == ["account_link"]
    assert body["policy"]["limits"] == {}
    same = put_policy(
        server, headers, {"operations": ["account_link"], "min_assurance_link": "high"}
    )
    assert same.json()["changed"] is False and same.json()["version"] == body["version"]

    server.services.audit.integrate_pending()
    size = server.services.audit.latest_checkpoint().checkpoint.size
    entries = [parse_entry(e.entry) for e in server.services.audit.entries(0, size)]
    policy_changes = [
        e for e in entries if isinstance(e, OperatorChange) and e.action == "policy_changed"
    ]
    assert [(e.what, e.id) for e in policy_changes] == [("anchor_set", JP_SET)]


def test_an_invalid_policy_is_refused_with_every_problem(payment_server: RunningServer) -> None:
    headers = admin_headers(payment_server, OPERATOR, "admin")
    refused = put_policy(
        payment_server, headers, {"operations": ["teleport"], "limits": {"JPY": "1.5"}}
    )
    assert refused.status_code == 400
    problems = refused.json()["problems"]
    assert any(p.startswith("policy.operations") for p in problems)
    assert any(p.startswith("policy.limits.JPY") for p in problems)
    missing = requests.put(
        payment_server.url("/admin/anchor-sets/nope/policy"), json={}, headers=headers, timeout=10
    )
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_the_admin_api_needs_the_admin_scope(
    payment_server: RunningServer, payments: Payments
) -> None:
    anonymous = requests.get(payment_server.url("/admin/anchor-sets"), timeout=10)
    assert anonymous.status_code == 401
    bank_headers = admin_headers(payment_server, payments.bank, "accounts")
    refused = requests.get(
        payment_server.url("/admin/anchor-sets"), headers=bank_headers, timeout=10
    )
    assert refused.status_code == 403
    assert 'scope="admin"' in refused.headers["WWW-Authenticate"]
