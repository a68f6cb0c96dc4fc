"""Issue 12, standing authorizations over HTTP, on SQLite and PostgreSQL: a holder approves once
automatic funding over their link within bounds (``standing_funding``); the intermediary then
obtains one movement token at a time with its DPoP-bound rotating refresh token, naming the
concrete ``funding`` movement in ``authorization_details`` at the token endpoint; the service
checks the bounds and counts the day's total when it mints; the holder (``/my``), an
intermediary (the links API), a link removal and an anchor suspension end it.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests
from sqlalchemy import func, select
from support.html import parse
from support.payments import ANCHOR_SETS, JP_HIGH, JP_SET, Bank, Holder, Payments, link
from support.rp import DpopKey, Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.clock import SystemClock
from trustanchor.services import anchor_set_admin, cascades
from trustanchor.storage.tables import cumulative_counters

DAY = 86_400


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


def funding(direction: str, deposit: str, wallet: str, amount: str) -> dict[str, Any]:
    return {
        "type": "funding",
        "direction": direction,
        "instructed_amount": {"currency": "JPY", "amount": amount},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }


def standing(
    deposit: str,
    wallet: str,
    *,
    directions: tuple[str, ...] = ("deposit_to_wallet",),
    max_amount: str = "50000",
    daily_amount: str = "100000",
    valid_days: int = 30,
) -> dict[str, Any]:
    return {
        "type": "standing_funding",
        "directions": list(directions),
        "deposit_account": deposit,
        "wallet_account": wallet,
        "max_amount": {"currency": "JPY", "amount": max_amount},
        "daily_amount": {"currency": "JPY", "amount": daily_amount},
        "valid_days": valid_days,
    }


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


@dataclass
class Standing:
    """The bank's side of one standing authorization: its DPoP key and latest refresh token."""

    bank: Bank
    key: DpopKey
    refresh_token: str
    granted: dict[str, Any]

    def move(self, entry: dict[str, Any] | None, **extra: str) -> requests.Response:
        """Ask for one movement token; on success keep the rotated refresh token."""
        params = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, **extra}
        if entry is not None:
            params["authorization_details"] = json.dumps([entry])
        rp = self.bank.rp
        response = rp.post("/token", params, dpop=rp.proof(self.key, "/token"))
        if response.status_code == 200:
            self.refresh_token = response.json()["refresh_token"]
        return response


def linked(bank: Bank, person: Holder, name: str) -> tuple[str, str, str]:
    deposit = bank.register(f"{name}-deposit", "bank_deposit", f"{name} savings")
    wallet = bank.register(f"{name}-wallet", "cbdc_wallet", f"{name} wallet")
    pkce = Pkce.generate()
    consent = person.log_in(
        person.open(bank.authorization_url([link(deposit, wallet)], pkce)), JP_HIGH
    )
    bank.redeem(person.decide(consent, "approve")["code"], pkce)
    rows = bank.api("GET", "/links").json()["links"]
    [row] = [x for x in rows if x["deposit_account"] == deposit]
    return deposit, wallet, str(row["link_id"])


def at_consent(person: Holder, url: str) -> requests.Response:
    page = person.open(url)
    if any(form.action.endswith("/consent") for form in parse(page.text).forms):
        return page
    return person.log_in(page, JP_HIGH)


def approve_standing(bank: Bank, person: Holder, entry: dict[str, Any]) -> Standing:
    key = DpopKey()
    pkce = Pkce.generate()
    consent = at_consent(person, bank.authorization_url([entry], pkce))
    page = parse(consent.text)
    assert any(("decision", "approve") in f.buttons for f in page.forms), page.text
    answer = person.decide(consent, "approve")
    response = bank.rp.redeem(answer["code"], pkce.verifier, dpop=bank.rp.proof(key, "/token"))
    assert response.status_code == 200, response.text
    body = response.json()
    [granted] = body["authorization_details"]
    return Standing(bank, key, body["refresh_token"], granted)


def ledger(server: RunningServer, payments: Payments) -> RelyingParty:
    return RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")


def active(server: RunningServer, payments: Payments, token: str) -> bool:
    response = ledger(server, payments).post("/introspect", {"token": token})
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def refused(response: requests.Response, error: str, description_part: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == error, body
    assert description_part in body["error_description"], body


def test_a_holder_approves_automatic_top_ups_once_and_each_movement_is_minted_within_bounds(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, link_id = linked(bank, taro, "taro")
    at = server.services.clock.now()
    standing_auth = approve_standing(bank, taro, standing(deposit, wallet))
    granted = standing_auth.granted
    assert granted["link_id"] == link_id
    assert re.fullmatch(r"sta_[A-Za-z0-9_-]{16,60}", granted["standing_authorization_id"])
    assert at + 30 * DAY <= granted["expires_at"] <= at + 30 * DAY + 60

    top_up = funding("deposit_to_wallet", deposit, wallet, "50000")
    first = standing_auth.move(top_up)
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    movement = claims(token)
    assert movement["authorization_details"] == [
        top_up
        | {"link_id": link_id, "standing_authorization_id": granted["standing_authorization_id"]}
    ]
    assert movement["cnf"]["jkt"] == standing_auth.key.jkt  # DPoP-bound movement token
    assert movement["anchor_set"] == JP_SET
    assert movement["exp"] - movement["iat"] <= 60  # one movement, now
    assert first.json()["token_type"] == "DPoP"
    assert active(server, payments, token)

    # The day's bound (100,000): a second 50,000 fits, then nothing more today.
    assert standing_auth.move(top_up).status_code == 200
    before = standing_auth.refresh_token
    refused(
        standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "1")),
        "invalid_authorization_details",
        "daily amount",
    )
    # A refused movement counted nothing and kept the refresh token usable.
    assert standing_auth.refresh_token == before


def test_a_movement_outside_the_bounds_or_unnamed_is_refused(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, _ = linked(bank, taro, "taro")
    standing_auth = approve_standing(bank, taro, standing(deposit, wallet))
    refused(standing_auth.move(None), "invalid_authorization_details", "names one funding")
    refused(
        standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "50001")),
        "invalid_authorization_details",
        "not within",
    )
    refused(
        standing_auth.move(funding("wallet_to_deposit", deposit, wallet, "100")),
        "invalid_authorization_details",
        "not within",
    )
    other_wallet = bank.register("taro-wallet-2", "cbdc_wallet", "taro second wallet")
    refused(
        standing_auth.move(funding("deposit_to_wallet", deposit, other_wallet, "100")),
        "invalid_authorization_details",
        "not within",
    )
    two = json.dumps([funding("deposit_to_wallet", deposit, wallet, "100")] * 2)
    response = standing_auth.bank.rp.post(
        "/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": standing_auth.refresh_token,
            "authorization_details": two,
        },
        dpop=standing_auth.bank.rp.proof(standing_auth.key, "/token"),
    )
    assert response.status_code == 400, response.text
    # Within bounds it still works after all those refusals.
    assert standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "100")).ok


def test_the_refresh_token_is_bound_to_the_clients_dpop_key(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, _ = linked(bank, taro, "taro")
    pkce = Pkce.generate()
    consent = at_consent(taro, bank.authorization_url([standing(deposit, wallet)], pkce))
    code = taro.decide(consent, "approve")["code"]
    # Without a DPoP proof the code is not redeemed (and not spent: nothing committed).
    response = bank.rp.redeem(code, pkce.verifier)
    refused(response, "invalid_dpop_proof", "DPoP")
    key = DpopKey()
    response = bank.rp.redeem(code, pkce.verifier, dpop=bank.rp.proof(key, "/token"))
    assert response.status_code == 200, response.text
    body = response.json()
    standing_auth = Standing(
        bank, DpopKey(), body["refresh_token"], body["authorization_details"][0]
    )
    refused(
        standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "100")),
        "invalid_grant",
        "another DPoP key",
    )
    standing_auth.key = key
    assert standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "100")).ok


def test_the_policy_bounds_the_lifetime_of_a_standing_authorization(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """jp-cbdc allows standing authorizations of at most 90 days (support/payments.py)."""
    taro = Holder(server, payments, "taro")
    deposit, wallet, _ = linked(bank, taro, "taro")
    consent = at_consent(
        taro,
        bank.authorization_url([standing(deposit, wallet, valid_days=120)], Pkce.generate()),
    )
    answer = taro.decide(consent, "deny")
    assert answer["error_description"] == "denied by policy: standing_too_long"
    # Above the funding limit per movement (500,000), never.
    consent = at_consent(
        taro,
        bank.authorization_url(
            [standing(deposit, wallet, max_amount="600000", daily_amount="600000")],
            Pkce.generate(),
        ),
    )
    assert taro.decide(consent, "deny")["error_description"] == "denied by policy: limit_exceeded"


def my_links_page(server: RunningServer, person: Holder) -> requests.Response:
    started = person.browser.submit(person.open(server.url("/my/login?lang=en")).text, "/my/login")
    assert started.status_code == 303, started.text
    consent = at_consent(person, started.headers["Location"])
    approved = person.browser.submit(consent.text, "/consent", decision="approve")
    assert approved.status_code == 303, approved.text
    page = person.browser.follow(approved)
    assert page.status_code == 200 and page.url == server.url("/my/links"), page.text
    return page


def test_the_holder_sees_and_stops_a_standing_authorization_on_my_links(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, _ = linked(bank, taro, "taro")
    standing_auth = approve_standing(bank, taro, standing(deposit, wallet))
    moved = standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "12000"))
    assert moved.ok, moved.text
    token = moved.json()["access_token"]

    page = my_links_page(server, taro)
    sta = standing_auth.granted["standing_authorization_id"]
    text = parse(page.text).text
    assert "Test Bank may move money automatically" in text
    assert "at most JPY 50,000 at a time, JPY 100,000 a day" in text
    assert "Top-up authorized" in text and "JPY 12,000" in text
    stopped = taro.browser.submit(page.text, "/my/standing/stop", standing=sta)
    assert stopped.status_code == 303 and stopped.headers["Location"].endswith("notice=stopped")
    # Ended: the minted token is no longer active and no new movement is minted.
    assert not active(server, payments, token)
    refused(
        standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "100")),
        "invalid_grant",
        "revoked",
    )
    again = taro.browser.get(server.url("/my/links"))
    assert sta not in again.text


def test_an_intermediary_lists_and_ends_standing_authorizations_over_its_links(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, link_id = linked(bank, taro, "taro")
    standing_auth = approve_standing(bank, taro, standing(deposit, wallet))
    sta = standing_auth.granted["standing_authorization_id"]
    [row] = [x for x in bank.api("GET", "/links").json()["links"] if x["link_id"] == link_id]
    [listed] = row["standing_authorizations"]
    assert listed["standing_authorization_id"] == sta and listed["active"] is True
    assert listed["max_amount"] == {"currency": "JPY", "amount": "50000"}
    assert bank.api("DELETE", f"/links/{link_id}/standing-authorizations/{sta}").status_code == 204
    assert bank.api("DELETE", f"/links/{link_id}/standing-authorizations/{sta}").status_code == 404
    [row] = [x for x in bank.api("GET", "/links").json()["links"] if x["link_id"] == link_id]
    assert row["standing_authorizations"][0]["active"] is False
    refused(
        standing_auth.move(funding("deposit_to_wallet", deposit, wallet, "100")),
        "invalid_grant",
        "revoked",
    )


def test_removing_the_link_or_suspending_the_anchor_ends_it(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit, wallet, link_id = linked(bank, taro, "taro")
    first = approve_standing(bank, taro, standing(deposit, wallet))
    assert bank.api("DELETE", f"/links/{link_id}").status_code == 204
    refused(
        first.move(funding("deposit_to_wallet", deposit, wallet, "100")),
        "invalid_grant",
        "revoked",
    )

    hanako = Holder(server, payments, "hanako")
    h_deposit, h_wallet, _ = linked(bank, hanako, "hanako")
    second = approve_standing(bank, hanako, standing(h_deposit, h_wallet))
    services = server.services
    at = services.clock.now()
    services.anchors.set_status(JP_HIGH, "suspended", at)
    result = cascades.anchor_suspended(services.db, JP_HIGH, at=at)
    assert result.revoked_grants >= 1
    refused(
        second.move(funding("deposit_to_wallet", h_deposit, h_wallet, "100")),
        "invalid_grant",
        "revoked",
    )


def test_parallel_movements_never_take_the_day_above_the_sets_funding_limit(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """jp-cbdc counts at most 100,000 JPY of funding per person and calendar day (a rule added
    here). Four standing authorizations of one person each ask for a 40,000 JPY movement at the
    same moment: exactly two are minted, and the day's total is 80,000. On PostgreSQL the
    movements meet on the counter's conditional update; on SQLite they wait for the writer."""
    policy = dict(ANCHOR_SETS[0]["policy"]) | {
        "time_zone": "Asia/Tokyo",
        "cumulative": [
            {
                "id": "daily-funding",
                "operation": "funding",
                "currency": "JPY",
                "window": "calendar_day",
                "per": "holder",
                "limit": "100000",
            }
        ],
    }
    anchor_set_admin.replace_policy(
        server.services.anchors, JP_SET, policy, at=server.services.clock.now()
    )
    taro = Holder(server, payments, "taro")
    deposit, wallet, _ = linked(bank, taro, "taro")
    racers = [approve_standing(bank, taro, standing(deposit, wallet)) for _ in range(4)]
    top_up = funding("deposit_to_wallet", deposit, wallet, "40000")
    barrier = threading.Barrier(len(racers))
    answers: list[Any] = [None] * len(racers)

    def move(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            answers[index] = racers[index].move(top_up)
        except BaseException as exc:  # surfaced by the assertion below
            answers[index] = exc

    threads = [threading.Thread(target=move, args=(i,)) for i in range(len(racers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(getattr(a, "status_code", repr(a)) for a in answers)
    assert statuses == [200, 200, 400, 400], answers
    for answer in answers:
        if answer.status_code == 400:
            assert "cumulative" in answer.json()["error_description"], answer.text
    with server.services.db.reader() as conn:
        total = conn.execute(
            select(func.sum(cumulative_counters.c.amount)).where(
                cumulative_counters.c.operation == "funding"
            )
        ).scalar_one()
    assert total == 80000
