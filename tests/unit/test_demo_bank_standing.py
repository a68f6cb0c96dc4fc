"""The demo bank's automatic top-up records (store) and how it reads the token endpoint's refusal
of a movement (client): the key is kept with the request until the person comes back, the refresh
token is rotated only over the one on file, ending forgets both; descriptions become the reason
codes the bank words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trustanchor.clock import FixedClock
from trustanchor.demo.bank.client import MovementRefused, movement_reason
from trustanchor.demo.bank.store import BankStore
from trustanchor.demo.parties_state import parties_engine
from trustanchor.randomness import SystemRandomness

AT = 1_800_000_000
GRANTED = {
    "type": "standing_funding",
    "directions": ["deposit_to_wallet"],
    "deposit_account": "acc_deposit0000000000",
    "wallet_account": "acc_wallet00000000000",
    "max_amount": {"currency": "JPY", "amount": "30000"},
    "daily_amount": {"currency": "JPY", "amount": "100000"},
    "valid_days": 30,
    "link_id": "lnk_0123456789abcdef",
    "standing_authorization_id": "sta_0123456789abcdef",
    "expires_at": AT + 30 * 86_400,
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(AT)


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> Iterator[BankStore]:
    engine = parties_engine(tmp_path)
    store = BankStore(engine, clock, SystemRandomness(), pending_lifetime=60)
    store.create_tables()
    yield store
    engine.dispose()


def test_a_standing_request_becomes_active_rotates_and_ends(
    store: BankStore, clock: FixedClock
) -> None:
    store.save_standing_request("hanako", "state-1", b"PEM-1")
    assert store.standing_request("state-1", "taro") is None  # only the person who asked
    kept = store.standing_request("state-1", "hanako")
    assert kept is not None and kept.dpop_key == b"PEM-1" and kept.status == "pending"
    assert store.active_standing("hanako") is None

    store.activate_standing(kept.id, refresh_token="rt-1", granted=GRANTED)
    active = store.active_standing("hanako")
    assert active is not None
    assert (active.standing_id, active.link_id, active.refresh_token) == (
        "sta_0123456789abcdef",
        "lnk_0123456789abcdef",
        "rt-1",
    )
    assert store.standing_request("state-1", "hanako") is None  # no longer pending

    assert store.rotate_standing(active.id, "rt-1", "rt-2")
    assert not store.rotate_standing(active.id, "rt-1", "rt-3")  # only over the one on file
    again = store.active_standing("hanako")
    assert again is not None and again.refresh_token == "rt-2"

    clock.advance(30 * 86_400)
    assert store.active_standing("hanako") is None  # past its end
    clock.advance(-30 * 86_400)
    assert store.active_standing("hanako") is not None
    store.end_standing(active.id, "stopped_at_bank")
    assert store.active_standing("hanako") is None
    assert not store.rotate_standing(active.id, "rt-2", "rt-4")  # its token is forgotten


def test_a_dropped_request_leaves_nothing(store: BankStore) -> None:
    store.save_standing_request("hanako", "state-2", b"PEM-2")
    kept = store.standing_request("state-2", "hanako")
    assert kept is not None
    store.drop_standing_request(kept.id)
    assert store.standing_request("state-2", "hanako") is None
    assert store.active_standing("hanako") is None


@pytest.mark.parametrize(
    ("error", "description", "reason", "ended"),
    [
        (
            "invalid_authorization_details",
            "the standing authorization's daily amount would be exceeded",
            "standing_daily_limit_exceeded",
            False,
        ),
        (
            "invalid_authorization_details",
            "the movement is not within the standing authorization's bounds",
            "standing_movement_not_covered",
            False,
        ),
        (
            "invalid_authorization_details",
            "the anchor set's cumulative funding limit would be exceeded",
            "cumulative_limit_exceeded",
            False,
        ),
        (
            "invalid_authorization_details",
            "the amount is above the anchor set's funding limit",
            "limit_exceeded",
            False,
        ),
        ("invalid_grant", "the grant has been revoked or has expired", "standing_ended", True),
        ("invalid_grant", "the standing authorization has ended", "standing_ended", True),
        (
            "invalid_grant",
            "the refresh token was already used; the token family is revoked",
            "standing_ended",
            True,
        ),
        (
            "invalid_grant",
            "the link is flagged for the holder's re-verification",
            "link_flagged",
            False,
        ),
        ("invalid_grant", None, "standing_ended", True),
        ("invalid_request", "something new", "standing_refused", False),
    ],
)
def test_a_refused_movement_is_read_as_a_reason(
    error: str, description: str | None, reason: str, ended: bool
) -> None:
    assert movement_reason(error, description) == reason
    assert MovementRefused(error, description).ended is ended
