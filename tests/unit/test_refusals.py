"""The pieces of refusal recording that need no server: the entry builder's handling of values
that come from the request path, and the per-process budget for unauthenticated refusals."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from trustanchor.oauth.errors import InvalidClient, InvalidGrant, UseDpopNonce
from trustanchor.services import audit_trail
from trustanchor.services.refusals import RefusalBudget, supported_value

T0 = 1_700_000_000


def test_refusal_builder_drops_a_client_id_the_log_cannot_hold() -> None:
    for odd in ("a@b", "x" * 43, "with space"):
        entry = audit_trail.refusal(
            at=T0, endpoint="token", client_id=odd, grant_type=None, error="x", reason="y"
        )
        assert entry.client_id is None
    kept = audit_trail.refusal(
        at=T0, endpoint="par", client_id="bank", grant_type=None, error="x", reason="y"
    )
    assert kept.client_id == "bank"


def test_refusal_builder_classifies_codes_it_cannot_record() -> None:
    entry = audit_trail.refusal(
        at=T0,
        endpoint="token",
        client_id=None,
        grant_type="client_credentials",
        error="Weird Error",
        reason="nope!",
    )
    assert (entry.error, entry.reason) == ("unclassified", "unclassified")


def test_reason_defaults_to_the_error_code() -> None:
    assert InvalidGrant("x").reason == "invalid_grant"
    assert InvalidGrant("x", reason="code_reused").reason == "code_reused"
    assert InvalidClient("x").client_id is None
    assert UseDpopNonce("n").reason == "dpop_nonce_required"


def test_only_a_single_supported_value_is_taken_from_the_request() -> None:
    supported = ("authorization_code", "client_credentials")
    assert supported_value({"grant_type": ["client_credentials"]}, "grant_type", supported) == (
        "client_credentials"
    )
    for values in ([], ["password"], ["client_credentials", "client_credentials"], ["Alice"]):
        assert supported_value({"grant_type": values}, "grant_type", supported) is None
    assert supported_value({}, "grant_type", supported) is None


def test_budget_admits_a_burst_then_refills_per_second() -> None:
    budget = RefusalBudget(burst=3, per_second=1)
    assert [budget.admit(T0) for _ in range(5)] == [
        (True, 0),
        (True, 0),
        (True, 0),
        (False, 1),
        (False, 2),
    ]
    assert budget.admit(T0 + 1) == (True, 2)  # reports the two left out, once
    assert budget.admit(T0 + 1) == (False, 1)
    assert [budget.admit(T0 + 100)[0] for _ in range(4)] == [True, True, True, False]


def test_budget_ignores_a_clock_that_goes_back() -> None:
    budget = RefusalBudget(burst=1, per_second=1)
    assert budget.admit(T0)[0]
    assert not budget.admit(T0 - 50)[0]
    assert not budget.admit(T0)[0]
    assert budget.admit(T0 + 1)[0]


def test_budget_is_exact_under_threads() -> None:
    budget = RefusalBudget(burst=50, per_second=0)
    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(lambda _: budget.admit(T0)[0], range(400)))
    assert admitted.count(True) == 50


def test_budget_needs_room_for_one() -> None:
    with pytest.raises(ValueError):
        RefusalBudget(burst=0)
