"""Standing authorizations of funding in the anchor-set policy (docs/POLICY.md, "Standing
authorizations"): the parser's ``standing_funding_max_days`` (refusals naming the field, JSON
left alone at 0), ``StandingFundingRequest``'s own refusals, and the engine's
``decide_standing_funding`` on a fixed trust world, one table row per reason it can give, then
the finer points (every direction asked, the standing checks' place in the order, step-up and
dynamic linking against ``max_amount``, the same answer as ``decide_funding``)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from support.policy_world import (
    ANCHORS,
    AT,
    JP_CBDC_POLICY,
    POLICIES,
    account,
    funding,
    identity,
    jpy,
    login,
    snapshot,
)

from trustanchor.domain.money import Amount, parse_amount
from trustanchor.policy.anchor_set_policy import (
    DEFAULT_STANDING_FUNDING_MAX_DAYS,
    MAX_STANDING_FUNDING_DAYS,
    PolicyError,
    parse_policy,
)
from trustanchor.policy.decision import REASONS, Decision, StepUp
from trustanchor.policy.engine import (
    STAGE_REASONS,
    STANDING_REASONS,
    decide_funding,
    decide_standing_funding,
)
from trustanchor.policy.facts import (
    FUNDING_DIRECTIONS,
    AccountFact,
    AuthenticationFact,
    FundingDirection,
    IdentityFact,
    StandingFundingRequest,
)
from trustanchor.policy.snapshot import TrustSnapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "POLICY.md"
STANDING_POLICY: dict[str, Any] = {
    **JP_CBDC_POLICY,
    "operations": ["account_link", "value_transfer", "funding"],
    "funding_limits": {"JPY": "500000"},
    "funding_step_up": [
        {"currency": "JPY", "above": "200000", "assurance": "high", "max_age": 300},
    ],
    "cumulative": [
        {
            "id": "daily-funding",
            "operation": "funding",
            "currency": "JPY",
            "window": "calendar_day",
            "per": "holder",
            "limit": "1000000",
        }
    ],
    "standing_funding_max_days": 90,
}


def policy_with(**fields: Any) -> dict[str, Any]:
    return {**STANDING_POLICY, **fields}


def world_with(anchors: Any = None, **fields: Any) -> TrustSnapshot:
    return snapshot(POLICIES | {"jp-cbdc": policy_with(**fields)}, anchors)


def problems(policy: object) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(policy)
    return caught.value.problems


# -- parser -------------------------------------------------------------------------------------


def test_the_default_allows_none_and_is_left_out_of_the_json() -> None:
    assert DEFAULT_STANDING_FUNDING_MAX_DAYS == 0
    without = {k: v for k, v in STANDING_POLICY.items() if k != "standing_funding_max_days"}
    assert parse_policy(without).standing_funding_max_days == 0
    spelt = parse_policy({**without, "standing_funding_max_days": 0})
    assert spelt == parse_policy(without)
    assert "standing_funding_max_days" not in spelt.to_json()


@pytest.mark.parametrize("policy", list(POLICIES.values()))
def test_a_stored_policy_keeps_its_json(policy: dict[str, Any]) -> None:
    assert "standing_funding_max_days" not in parse_policy(policy).to_json()


@pytest.mark.parametrize("days", [1, 90, MAX_STANDING_FUNDING_DAYS])
def test_days_round_trip(days: int) -> None:
    policy = parse_policy(policy_with(standing_funding_max_days=days))
    assert policy.standing_funding_max_days == days
    stored = policy.to_json()
    assert stored["standing_funding_max_days"] == days
    assert list(stored)[-1] == "standing_funding_max_days"  # after every earlier field
    assert parse_policy(stored) == policy
    assert parse_policy(stored).to_json() == stored


@pytest.mark.parametrize(
    "junk", [-1, 367, 10**9, True, False, 90.0, "90", None, [90], {"days": 90}]
)
def test_junk_days_are_refused_naming_the_field(junk: object) -> None:
    assert problems(policy_with(standing_funding_max_days=junk)) == [
        (
            "standing_funding_max_days",
            "must be a whole number of days from 0 to 366 (0: standing authorizations not allowed)",
        )
    ]


def test_days_above_zero_need_funding_in_operations() -> None:
    found = problems(
        policy_with(operations=["account_link", "value_transfer"], standing_funding_max_days=30)
    )
    assert [w for w, _ in found] == ["standing_funding_max_days"]
    assert "add funding to operations" in found[0][1]
    # 0 needs nothing; broken operations are reported once, as themselves
    assert parse_policy({"operations": ["account_link"], "standing_funding_max_days": 0})
    broken = problems(policy_with(operations="funding", standing_funding_max_days=30))
    assert [w for w, _ in broken] == ["operations"]


def test_the_documented_example_parses() -> None:
    section = DOC.read_text(encoding="utf-8").split("## Standing authorizations", 1)[1]
    [example] = re.findall(r"```toml\n(.*?)```", section, flags=re.S)[:1]
    declared = tomllib.loads(example)["anchor_sets"]["policy"]
    policy = parse_policy({**declared, "limits": {"JPY": "1000000"}})
    assert policy.standing_funding_max_days == 90
    assert policy.allows("funding")


def test_the_snapshot_carries_the_days() -> None:
    world = world_with(standing_funding_max_days=30)
    assert world.sets["jp-cbdc"].standing_funding_max_days == 30
    assert world.sets["jp-open"].standing_funding_max_days == 0


# -- the request --------------------------------------------------------------------------------

TARO_MN = identity("taro-mn", "taro", "mynumber", "high")
TARO_BANK = identity("taro-bank", "taro", "bank-ekyc", "substantial")
HANAKO_MN = identity("hanako-mn", "hanako", "mynumber", "high")
TARO_EU = identity("taro-eu", "taro", "eu-pid", "high")
TARO_OLD = identity("taro-old", "taro", "old-ca", "high")
TARO = [TARO_MN, TARO_BANK, HANAKO_MN, TARO_EU, TARO_OLD]
DEPOSIT = account("acc_taro_deposit_000001", TARO_BANK, "bank_deposit")
WALLET = account("acc_taro_wallet_0000001", TARO_MN)
AS_TARO = login(TARO_MN)  # high, 10 s ago
AS_TARO_BANK = login(TARO_BANK)  # substantial, 10 s ago
WORLD = world_with()
BOTH: tuple[FundingDirection, ...] = FUNDING_DIRECTIONS


def request(
    max_amount: str = "50000",
    *,
    directions: tuple[FundingDirection, ...] = ("deposit_to_wallet",),
    daily_amount: str = "100000",
    valid_days: int = 90,
    deposit: AccountFact = DEPOSIT,
    wallet: AccountFact = WALLET,
    **flags: Any,
) -> StandingFundingRequest:
    fields: dict[str, Any] = {"linked": True, "link_flagged": False, "debit_approved": False}
    return StandingFundingRequest(
        directions=directions,
        max_amount=jpy(max_amount),
        daily_amount=jpy(daily_amount),
        valid_days=valid_days,
        deposit_account=deposit,
        wallet_account=wallet,
        **(fields | flags),
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"directions": ()}, "at least one direction"),
        ({"directions": ("deposit_to_wallet", "deposit_to_wallet")}, "twice"),
        ({"directions": ("sideways",)}, "unknown funding direction"),
        ({"valid_days": 0}, "valid_days"),
        ({"valid_days": True}, "valid_days"),
    ],
)
def test_a_malformed_request_is_a_programming_error(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        replace(request(), **changes)


def test_each_direction_is_a_movement_of_max_amount() -> None:
    asked = request("70000", directions=BOTH, totals={("jp-cbdc", "calendar_day", "holder"): 5})
    movements = [asked.movement(d) for d in asked.directions]
    assert [m.direction for m in movements] == list(BOTH)
    assert {m.amount for m in movements} == {jpy("70000")}
    assert [m.debtor_account for m in movements] == [DEPOSIT, WALLET]
    assert asked.debtor_accounts == (DEPOSIT, WALLET)
    assert all(m.totals == asked.totals for m in movements)


# -- engine: one row per reason -----------------------------------------------------------------


def stands(
    max_amount: str = "50000",
    by: AuthenticationFact = AS_TARO,
    people: list[IdentityFact] = TARO,
    *,
    world: TrustSnapshot = WORLD,
    **fields: Any,
) -> Callable[[], Decision]:
    def decide() -> Decision:
        return decide_standing_funding(world, request(max_amount, **fields), by, people, at=AT)

    return decide


@dataclass(frozen=True)
class Case:
    name: str
    decide: Callable[[], Decision]
    reason: str
    anchor_set: str | None = None


ELSEWHERE_WALLET = replace(WALLET, registered_elsewhere=True)
CASES = [
    Case("a top-up for 90 days", stands(), "allowed", "jp-cbdc"),
    Case("a sweep back", stands(directions=("wallet_to_deposit",)), "allowed", "jp-cbdc"),
    Case("both directions", stands(directions=BOTH), "allowed", "jp-cbdc"),
    Case("one day", stands(valid_days=1), "allowed", "jp-cbdc"),
    Case(
        "a substantial login (the funding minimum)", stands(by=AS_TARO_BANK), "allowed", "jp-cbdc"
    ),
    Case("max_amount at the funding limit", stands("500000"), "allowed", "jp-cbdc"),
    Case(
        "topping up from the requester's deposit account into another intermediary's wallet",
        stands(wallet=ELSEWHERE_WALLET),
        "allowed",
        "jp-cbdc",
    ),
    Case("wallet not bound", stands(wallet=account(WALLET.id, None)), "account_not_bound"),
    Case(
        "someone else's wallet",
        stands(wallet=account("acc_hanako_wallet_00001", HANAKO_MN)),
        "holder_mismatch",
    ),
    Case(
        "two deposit accounts",
        stands(wallet=account(WALLET.id, TARO_MN, "bank_deposit")),
        "account_kind_mismatch",
    ),
    Case(
        "neither account is the requester's",
        stands(
            deposit=replace(DEPOSIT, registered_elsewhere=True),
            wallet=ELSEWHERE_WALLET,
            debit_approved=True,
        ),
        "account_registered_elsewhere",
    ),
    Case(
        "both directions, the wallet is another intermediary's, which has not approved debits",
        stands(wallet=ELSEWHERE_WALLET, directions=BOTH),
        "debit_not_approved",
    ),
    Case("no active link", stands(linked=False), "link_not_found"),
    Case("the link is flagged", stands(link_flagged=True), "link_flagged"),
    Case("a closed wallet", stands(wallet=replace(WALLET, status="closed")), "account_closed"),
    Case(
        "a flagged deposit account",
        stands(deposit=replace(DEPOSIT, status="flagged")),
        "account_flagged",
    ),
    Case(
        "wallet bound through an EU identity",
        stands(wallet=account(WALLET.id, TARO_EU)),
        "no_common_anchor_set",
    ),
    Case(
        "a set that does not allow funding (nor, so, standing authorizations)",
        stands(world=snapshot()),
        "operation_not_allowed",
        "jp-cbdc",
    ),
    Case(
        "a set that allows funding but no standing authorization",
        stands(world=world_with(standing_funding_max_days=0)),
        "standing_not_allowed",
        "jp-cbdc",
    ),
    Case("91 days where 90 are allowed", stands(valid_days=91), "standing_too_long", "jp-cbdc"),
    Case(
        "wallet bound through a suspended anchor",
        stands(wallet=account(WALLET.id, TARO_OLD)),
        "anchor_suspended",
        "jp-cbdc",
    ),
    Case(
        "deposit bound through a revoked credential",
        stands(people=[TARO_MN, replace(TARO_BANK, credential_status="revoked")]),
        "credential_revoked",
        "jp-cbdc",
    ),
    Case(
        "deposit credential status unknown, failing closed",
        stands(people=[TARO_MN, replace(TARO_BANK, credential_status="unknown")]),
        "credential_status_unknown",
        "jp-cbdc",
    ),
    Case(
        "deposit identity expired",
        stands(people=[TARO_MN, replace(TARO_BANK, expires_at=AT)]),
        "identity_expired",
        "jp-cbdc",
    ),
    Case(
        "deposit identity below min_assurance_funding",
        stands(world=world_with(min_assurance_funding="high")),
        "assurance_too_low",
        "jp-cbdc",
    ),
    Case(
        "no KYC registered where the set requires it",
        stands(world=world_with(account_kyc="required")),
        "kyc_not_registered",
        "jp-cbdc",
    ),
    Case(
        "registered KYC does not match",
        stands(wallet=replace(WALLET, kyc="mismatch")),
        "kyc_mismatch",
        "jp-cbdc",
    ),
    Case(
        "a currency without a funding limit",
        lambda: decide_standing_funding(
            WORLD,
            replace(
                request(),
                max_amount=parse_amount("10.00", "EUR"),
                daily_amount=parse_amount("20.00", "EUR"),
            ),
            AS_TARO,
            TARO,
            at=AT,
        ),
        "currency_not_allowed",
        "jp-cbdc",
    ),
    Case(
        "max_amount above the funding limit",
        stands("500001", daily_amount="1000000"),
        "limit_exceeded",
        "jp-cbdc",
    ),
    Case(
        "max_amount above a cumulative funding limit (totals given)",
        stands("100000", totals={("jp-cbdc", "calendar_day", "holder"): 900_001}),
        "cumulative_limit_exceeded",
        "jp-cbdc",
    ),
    Case(
        "max_amount above the funding step-up threshold, substantial login",
        stands("200001", AS_TARO_BANK, daily_amount="400000"),
        "step_up_required",
        "jp-cbdc",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(case: Case) -> None:
    decision = case.decide()
    assert (decision.reason, decision.anchor_set_id) == (case.reason, case.anchor_set)
    assert decision.allowed == (case.reason == "allowed")
    if decision.anchor_set_id is not None:
        assert decision.policy_version == WORLD.sets[decision.anchor_set_id].version
    if decision.allowed:
        assert decision.relied_anchors == ("bank-ekyc", "mynumber")
    else:
        assert decision.relied_anchors == ()


def test_every_reason_a_standing_authorization_can_give_has_a_case() -> None:
    """Every reason but the one only a transfer has."""
    assert {case.reason for case in CASES} == set(REASONS) - {"debtor_account_elsewhere"}


def test_the_standing_reasons_come_right_after_operation_not_allowed() -> None:
    stages = list(STAGE_REASONS)
    start = stages.index("operation_not_allowed") + 1
    assert tuple(stages[start : start + 2]) == STANDING_REASONS
    names = list(REASONS)
    start = names.index("operation_not_allowed") + 1
    assert tuple(names[start : start + 2]) == STANDING_REASONS


# -- engine: the finer points -------------------------------------------------------------------


def test_exactly_the_policy_days_pass_and_one_more_does_not() -> None:
    for days in (1, 30, 366):
        world = world_with(standing_funding_max_days=days)
        assert stands(valid_days=days, world=world)().allowed
        if days < 366:
            assert stands(valid_days=days + 1, world=world)().reason == "standing_too_long"


def test_every_direction_asked_needs_the_debit_approval() -> None:
    """The wallet is another intermediary's: a top-up debits the requester's deposit account
    and needs nothing; a sweep back, alone or with a top-up, debits the wallet and needs that
    intermediary's approval; with it, both directions are allowed."""
    assert stands(wallet=ELSEWHERE_WALLET)().allowed
    for directions in (("wallet_to_deposit",), BOTH):
        refused = stands(wallet=ELSEWHERE_WALLET, directions=directions)()
        assert refused.reason == "debit_not_approved"
        approved = stands(wallet=ELSEWHERE_WALLET, directions=directions, debit_approved=True)
        assert approved().allowed


def test_the_standing_checks_come_before_the_identity_checks() -> None:
    """In one set: no standing authorizations beats a suspended anchor; but a set that lets a
    standing authorization through to a step-up is reported rather than one that allows none
    (step_up_required still wins where a new login would help)."""
    suspended = stands(
        wallet=account(WALLET.id, TARO_OLD), world=world_with(standing_funding_max_days=0)
    )
    assert suspended().reason == "standing_not_allowed"
    # bank-ekyc and mynumber in a second set, jp-open, that allows funding but no standing
    anchors = ANCHORS | {
        "mynumber": ("active", ("jp-banks", "jp-cbdc", "jp-open")),
        "bank-ekyc": ("active", ("jp-cbdc", "jp-open")),
    }
    open_policy = {**STANDING_POLICY, "revocation_check": "fail_open", "step_up": []}
    open_policy["standing_funding_max_days"] = 0
    open_policy["funding_step_up"] = []
    world = snapshot(POLICIES | {"jp-cbdc": STANDING_POLICY, "jp-open": open_policy}, anchors)
    decision = stands("200001", AS_TARO_BANK, daily_amount="400000", world=world)()
    assert (decision.reason, decision.anchor_set_id) == ("step_up_required", "jp-cbdc")
    assert decision.step_up == StepUp("high", 300, "jp-cbdc", ("mynumber",))
    # and a set that allows it is relied on when the other allows too few days
    short = {**STANDING_POLICY, "standing_funding_max_days": 30}
    world = snapshot(
        POLICIES | {"jp-cbdc": short, "jp-open": {**open_policy, "standing_funding_max_days": 60}},
        anchors,
    )
    decision = stands(valid_days=60, world=world)()
    assert (decision.reason, decision.anchor_set_id) == ("allowed", "jp-open")
    decision = stands(valid_days=61, world=world)()  # too long in both: the first set by id
    assert (decision.reason, decision.anchor_set_id) == ("standing_too_long", "jp-cbdc")


def test_step_up_rules_apply_to_max_amount_not_to_the_daily_amount() -> None:
    old = login(TARO_BANK, age=5000)
    assert stands("200000", old, daily_amount="1000000")().allowed
    assert stands("200001", old, daily_amount="200001")().reason == "step_up_required"
    assert stands("200001", login(TARO_MN, age=300), daily_amount="200001")().allowed


def test_the_daily_amount_is_not_a_policy_matter() -> None:
    """The daily bound is counted when each movement is minted; the approval does not look at
    it (even above the funding limit or a cumulative limit)."""
    for daily in ("50000", "999999", "5000000"):
        assert stands("50000", daily_amount=daily)().allowed


def test_dynamic_linking_of_funding_applies_to_the_approval() -> None:
    world = world_with(dynamic_linking=["funding"])
    unsigned = stands(world=world)()
    assert unsigned.reason == "step_up_required"
    assert unsigned.step_up is not None and unsigned.step_up.dynamic_linking
    assert stands(world=world, transaction_signed=True)().allowed
    sso = replace(AS_TARO, fresh=False)
    assert stands("50000", sso, world=world, transaction_signed=True)().reason == "step_up_required"
    # transfers alone under dynamic linking leave it alone
    assert stands(world=world_with(dynamic_linking=["value_transfer"]))().allowed


def test_in_person_funding_applies_to_the_approval() -> None:
    world = world_with(channel_funding="in_person")
    remote = stands(world=world)()
    assert remote.step_up is not None and remote.step_up.in_person
    assert stands("50000", replace(AS_TARO, channel="in_person"), world=world)().allowed


def test_one_direction_is_decided_as_a_funding_of_max_amount() -> None:
    """Where standing authorizations are allowed long enough, a one-direction standing
    authorization gets exactly the funding decision for a movement of ``max_amount``: allowed,
    step-up (with the same StepUp) or denied, naming the same set and relied anchors."""
    for directions in (("deposit_to_wallet",), ("wallet_to_deposit",)):
        for amount, by in (("50000", AS_TARO), ("200001", AS_TARO_BANK), ("500001", AS_TARO)):
            asked = request(amount, directions=directions, daily_amount="1000000")
            standing = decide_standing_funding(WORLD, asked, by, TARO, at=AT)
            movement = decide_funding(WORLD, asked.movement(directions[0]), by, TARO, at=AT)
            assert standing == movement


def test_a_movement_of_max_amount_in_each_direction_is_what_is_allowed() -> None:
    elsewhere = replace(DEPOSIT, registered_elsewhere=True)
    for deposit in (DEPOSIT, elsewhere):
        for approved in (False, True):
            asked = request(directions=BOTH, deposit=deposit, debit_approved=approved)
            standing = decide_standing_funding(WORLD, asked, AS_TARO, TARO, at=AT)
            each = [
                funding(
                    jpy("50000"),
                    deposit,
                    WALLET,
                    AS_TARO,
                    TARO,
                    world=WORLD,
                    direction=d,
                    debit_approved=approved,
                )
                for d in BOTH
            ]
            assert standing.allowed == all(d.allowed for d in each)
            assert standing.reason in {d.reason for d in each}


def test_amounts_of_another_currency_are_decided_in_it() -> None:
    world = world_with(funding_limits={"JPY": "500000", "EUR": "100.00"})
    eur = replace(
        request(),
        max_amount=Amount("EUR", 10_000),
        daily_amount=Amount("EUR", 20_000),
    )
    assert decide_standing_funding(world, eur, AS_TARO, TARO, at=AT).allowed
    above = replace(eur, max_amount=Amount("EUR", 10_001), daily_amount=Amount("EUR", 20_000))
    assert decide_standing_funding(world, above, AS_TARO, TARO, at=AT).reason == "limit_exceeded"
