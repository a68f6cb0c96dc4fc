"""The demo ledger asks the real service, over HTTP, whether each token it is about to execute is
still active (RFC 7662 introspection as its own client ``demo-ledger``, ``private_key_jwt``).

Hanako approves an automatic top-up at the demo bank. The bank mints movement tokens under it
(each a funding token DPoP-bound to the standing authorization's key, valid 60 s). A live one
executes at ``POST /ledger/fundings``; one minted before the standing authorization was stopped,
or before the link was removed, through the links API, is refused by the ledger with
``token_revoked``: nothing moves and the token is not spent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from requests_oauth2client import DPoPKey
from test_demo_bank import (
    Customer,
    Demo,
    deposit_balance,
    element_text,
    running_demo,
    wallet_balance,
)
from test_demo_standing import DETAIL_TYPES, STANDING_SETS

from trustanchor.demo.bank.client import Movement
from trustanchor.demo.bank.desk import funding_details
from trustanchor.demo.ledger_desk import DemoLedger
from trustanchor.ledger.replay_store import TOKEN_NAMESPACE


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path, STANDING_SETS, DETAIL_TYPES) as running:
        yield running


class Standing:
    """Hanako's automatic top-up as the bank holds it, and movement tokens minted under it
    without submitting them."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.hanako = Customer(demo, "hanako")
        self.hanako.sign_in()
        self.hanako.link()
        started = self.hanako.submit(
            self.hanako.bank_home(),
            "/bank/standing",
            standing_max="30,000",
            standing_daily="40,000",
            standing_days="30",
        )
        result = self.hanako.follow(
            self.hanako.decide(self.hanako.consent(self.hanako.follow(started)))
        )
        assert element_text(result.text, "result") == "Automatic top-up is set up"
        [granted] = json.loads(element_text(result.text, "approved"))
        self.link_id: str = granted["link_id"]
        self.standing_id: str = granted["standing_authorization_id"]
        held = demo.desk.store.active_standing("hanako")
        assert held is not None and held.refresh_token is not None
        self.refresh_token: str = held.refresh_token
        self.key: DPoPKey = demo.desk.client.new_dpop_key(held.dpop_key)[0]
        person = self.hanako.person
        self.instruction = {
            "direction": "deposit_to_wallet",
            "amount": "1000",
            "currency": "JPY",
            "deposit_account": demo.desk.account_id(person, "bank_deposit"),
            "wallet_account": demo.desk.account_id(person, "cbdc_wallet"),
        }

    def mint(self) -> Movement:
        """One movement token (the refresh token rotates, as the bank's own top-up does)."""
        entry = funding_details(self.instruction, self.link_id)[0]
        entry["standing_authorization_id"] = self.standing_id
        movement = self.demo.desk.client.movement(self.refresh_token, self.key, entry)
        self.refresh_token = movement.refresh_token
        return movement

    def submit(self, movement: Movement) -> tuple[int, dict[str, Any]]:
        answer = self.demo.desk.client.submit_funding(
            movement.access_token, self.instruction, dpop_key=self.key
        )
        return answer.status, dict(answer.body)

    def balances(self) -> tuple[int, int]:
        return deposit_balance(self.demo, "hanako"), wallet_balance(self.demo, "hanako")

    def not_spent(self, movement: Movement) -> bool:
        """Whether the ledger's replay store has no record of the token (this records it)."""
        ledger: DemoLedger = self.demo.app.extensions["demo_ledger"]
        claims = self.demo.desk.client.verify_access_token(movement.access_token)
        return ledger.replay.consume(claims["jti"], claims["exp"], namespace=TOKEN_NAMESPACE)


def test_a_movement_token_minted_before_the_stop_is_refused(demo: Demo) -> None:
    standing = Standing(demo)
    live = standing.mint()
    minted_before_the_stop = standing.mint()
    before = standing.balances()

    status, body = standing.submit(live)
    assert (status, body.get("status")) == (201, "executed"), body
    assert standing.balances() == (before[0] - 1000, before[1] + 1000)

    assert demo.desk.client.end_standing(standing.link_id, standing.standing_id) is True
    executed = standing.balances()
    status, body = standing.submit(minted_before_the_stop)
    assert (status, body.get("reason")) == (401, "token_revoked"), body
    assert body["error"] == "invalid_token"
    assert standing.balances() == executed  # nothing moved
    latest = demo.book.fundings()[0]
    assert (latest.outcome, latest.reason, latest.anchor_set) == (
        "refused",
        "token_revoked",
        "jp-cbdc",
    )
    assert standing.not_spent(minted_before_the_stop)


def test_a_movement_token_minted_before_the_link_was_removed_is_refused(demo: Demo) -> None:
    standing = Standing(demo)
    minted_before_the_removal = standing.mint()
    before = standing.balances()

    client = demo.desk.client
    removed = client.oauth().session.delete(
        demo.site.service(f"/links/{standing.link_id}"),
        auth=client._machine_token(),
        timeout=10,
    )
    assert removed.status_code == 204, removed.text
    assert demo.desk.active_link(standing.hanako.person) is None

    status, body = standing.submit(minted_before_the_removal)
    assert (status, body.get("reason")) == (401, "token_revoked"), body
    assert standing.balances() == before
    assert [(e.outcome, e.reason) for e in demo.book.fundings()] == [("refused", "token_revoked")]
    assert standing.not_spent(minted_before_the_removal)
