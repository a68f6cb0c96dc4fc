"""Funding and dynamic linking in the anchor-set policy (docs/POLICY.md, "Funding" and "Dynamic
linking"): the parser (refusals naming their field, canonical JSON that leaves existing sets'
JSON alone), and the engine's ``decide_funding`` on a fixed trust world, one table row per
reason it can give, then the finer points (funding rules apart from transfer rules, dynamic
linking for both operations, cumulative rules counted per operation)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from support.policy_world import (
    AT,
    JP_CBDC_POLICY,
    POLICIES,
    account,
    funding,
    identity,
    jpy,
    login,
    snapshot,
    transfer,
)

from trustanchor.domain.money import parse_amount
from trustanchor.policy.anchor_set_policy import (
    DEFAULT_MIN_ASSURANCE_FUNDING,
    MOVEMENTS,
    OPERATIONS,
    PolicyError,
    parse_policy,
)
from trustanchor.policy.decision import REASONS, Decision, StepUp
from trustanchor.policy.engine import STAGE_REASONS, STANDING_REASONS, decide_transfer
from trustanchor.policy.facts import (
    AccountFact,
    AuthenticationFact,
    FundingRequest,
    IdentityFact,
    TransferRequest,
)
from trustanchor.policy.snapshot import TrustSnapshot

FUNDING_POLICY: dict[str, Any] = {
    **JP_CBDC_POLICY,
    "operations": ["account_link", "value_transfer", "funding"],
    "min_assurance_transfer": "high",  # stricter than funding's default (substantial)
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
}
NEW_FIELDS = {
    "min_assurance_funding",
    "funding_limits",
    "funding_step_up",
    "channel_funding",
    "dynamic_linking",
}


def policy_with(**fields: Any) -> dict[str, Any]:
    return {**FUNDING_POLICY, **fields}


def world_with(**fields: Any) -> TrustSnapshot:
    return snapshot(POLICIES | {"jp-cbdc": policy_with(**fields)})


def problems(policy: object) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(policy)
    return caught.value.problems


# -- parser -------------------------------------------------------------------------------------


def test_funding_is_an_operation_after_the_others() -> None:
    assert OPERATIONS == ("account_link", "value_transfer", "funding")
    assert MOVEMENTS == ("value_transfer", "funding")


@pytest.mark.parametrize("policy", list(POLICIES.values()))
def test_a_policy_without_funding_keeps_its_json(policy: dict[str, Any]) -> None:
    """Sets stored before funding existed: no new member, so the same JSON and version."""
    stored = parse_policy(policy).to_json()
    assert not NEW_FIELDS & set(stored)
    for rule in stored.get("cumulative", []) + stored.get("cumulative_step_up", []):
        assert "operation" not in rule


def test_defaults_are_left_out_even_when_spelt_out() -> None:
    spelt = policy_with(
        min_assurance_funding=DEFAULT_MIN_ASSURANCE_FUNDING,
        channel_funding="any",
        funding_step_up=[],
        dynamic_linking=[],
        cumulative=[{**FUNDING_POLICY["cumulative"][0], "operation": "funding"}],
        cumulative_step_up=[
            {
                "operation": "value_transfer",
                "currency": "JPY",
                "window": "rolling_24h",
                "per": "holder",
                "above": "300000",
                "assurance": "high",
                "max_age": 60,
            }
        ],
    )
    stored = parse_policy(spelt).to_json()
    assert not {"min_assurance_funding", "channel_funding", "funding_step_up"} & set(stored)
    assert "dynamic_linking" not in stored
    assert stored["cumulative"][0]["operation"] == "funding"
    assert "operation" not in stored["cumulative_step_up"][0]


def test_funding_fields_round_trip() -> None:
    declared = policy_with(
        min_assurance_funding="high",
        channel_funding="in_person",
        funding_limits={"EUR": "1000.5", "JPY": "500000"},
        dynamic_linking=["funding", "value_transfer"],
    )
    policy = parse_policy(declared)
    stored = policy.to_json()
    assert stored["min_assurance_funding"] == "high"
    assert stored["channel_funding"] == "in_person"
    assert stored["funding_limits"] == {"EUR": "1000.50", "JPY": "500000"}
    assert stored["funding_step_up"] == FUNDING_POLICY["funding_step_up"]
    assert stored["dynamic_linking"] == ["value_transfer", "funding"]  # the fixed order
    assert stored["operations"] == ["account_link", "value_transfer", "funding"]
    assert parse_policy(stored) == policy
    assert parse_policy(stored).to_json() == stored
    assert policy.requires_dynamic_linking("funding")
    assert not policy.requires_dynamic_linking("account_link")


def test_one_currency_window_and_per_may_have_a_rule_per_operation() -> None:
    transfers = {**FUNDING_POLICY["cumulative"][0], "id": "daily-transfers"}
    del transfers["operation"]
    policy = parse_policy(policy_with(cumulative=[*FUNDING_POLICY["cumulative"], transfers]))
    assert sorted(r.operation for r in policy.cumulative) == ["funding", "value_transfer"]


STEP = {"currency": "JPY", "above": "100000", "assurance": "high", "max_age": 300}
FUNDING_RULE = FUNDING_POLICY["cumulative"][0]


@pytest.mark.parametrize(
    ("fields", "where", "words"),
    [
        ({"funding_limits": {}}, "funding_limits", "no currency has a funding limit"),
        ({"funding_limits": "500000"}, "funding_limits", "must be a table"),
        ({"funding_limits": {"JPY": 500000}}, "funding_limits.JPY", "decimal string"),
        ({"funding_limits": {"JPY": "0"}}, "funding_limits.JPY", "greater than"),
        ({"funding_limits": {"XXX": "1"}}, "funding_limits.XXX", "ISO 4217"),
        ({"min_assurance_funding": "medium"}, "min_assurance_funding", "one of"),
        ({"channel_funding": "branch"}, "channel_funding", "one of"),
        ({"funding_step_up": {"currency": "JPY"}}, "funding_step_up", "list"),
        (
            {"funding_step_up": [{**STEP, "currency": "EUR"}]},
            "funding_step_up[0].currency",
            "EUR has no funding limit",
        ),
        ({"funding_step_up": [{**STEP, "max_age": 0}]}, "funding_step_up[0].max_age", "seconds"),
        ({"funding_step_up": [{**STEP, "channel": "x"}]}, "funding_step_up[0].channel", "one of"),
        ({"funding_step_up": [STEP, STEP]}, "funding_step_up[1]", "same currency and above"),
        ({"funding_step_up": [STEP] * 33}, "funding_step_up", "at most 32"),
        ({"dynamic_linking": "funding"}, "dynamic_linking", "must be a list"),
        ({"dynamic_linking": ["account_link"]}, "dynamic_linking", "not one of"),
        ({"dynamic_linking": ["funding", "funding"]}, "dynamic_linking", "twice"),
        (
            {"cumulative": [{**FUNDING_RULE, "operation": "link"}]},
            "cumulative[0].operation",
            "one of",
        ),
        (
            {"cumulative": [{**FUNDING_RULE, "currency": "EUR"}]},
            "cumulative[0].currency",
            "EUR has no funding limit",
        ),
        (
            {"cumulative": [FUNDING_RULE, {**FUNDING_RULE, "id": "again"}]},
            "cumulative[1]",
            "same currency, window and per",
        ),
        (
            {
                "cumulative_step_up": [
                    {
                        "operation": "funding",
                        "currency": "USD",
                        "window": "calendar_day",
                        "per": "holder",
                        "above": "1",
                        "assurance": "high",
                        "max_age": 60,
                    }
                ]
            },
            "cumulative_step_up[0].currency",
            "USD has no funding limit",
        ),
    ],
)
def test_a_bad_funding_field_is_refused_with_its_place(
    fields: dict[str, Any], where: str, words: str
) -> None:
    found = problems(policy_with(**fields))
    assert any(w == where and words in message for w, message in found), found


def test_a_transfer_limit_does_not_let_a_funding_rule_in_nor_the_other_way() -> None:
    found = problems(
        policy_with(
            limits={"JPY": "1000000", "EUR": "5000.00"},
            funding_limits={"JPY": "500000", "USD": "100.00"},
            funding_step_up=[{**STEP, "currency": "EUR", "above": "10.00"}],
            step_up=[{**STEP, "currency": "USD", "above": "10.00"}],
        )
    )
    assert [w for w, _ in found] == ["step_up[0].currency", "funding_step_up[0].currency"]


def test_funding_without_operations_listing_it_needs_no_funding_limit() -> None:
    assert parse_policy({"operations": ["account_link"], "dynamic_linking": ["funding"]})


def test_the_documented_funding_example_parses() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "POLICY.md").read_text()
    section = text.split("## Funding", 1)[1]
    [example] = re.findall(r"```toml\n(.*?)```", section, flags=re.S)[:1]
    declared = tomllib.loads(example)["anchor_sets"]["policy"]
    policy = parse_policy({**declared, "limits": {"JPY": "1000000"}})
    assert policy.allows("funding")
    assert policy.funding_limits == {"JPY": parse_amount("500000", "JPY")}
    assert [r.operation for r in policy.cumulative] == ["funding"]


# -- engine: one row per reason -----------------------------------------------------------------

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


def funds(
    amount: str = "5000",
    by: AuthenticationFact = AS_TARO,
    people: list[IdentityFact] = TARO,
    *,
    deposit: AccountFact = DEPOSIT,
    wallet: AccountFact = WALLET,
    world: TrustSnapshot = WORLD,
    **flags: Any,
) -> Callable[[], Decision]:
    def decide() -> Decision:
        return funding(jpy(amount), deposit, wallet, by, people, world=world, **flags)

    return decide


@dataclass(frozen=True)
class Case:
    name: str
    decide: Callable[[], Decision]
    reason: str
    anchor_set: str | None = None


CASES = [
    Case("top-up over an active link", funds(), "allowed", "jp-cbdc"),
    Case("sweep back", funds(direction="wallet_to_deposit"), "allowed", "jp-cbdc"),
    Case(
        "at a substantial login (the funding minimum; transfers need high)",
        funds(by=AS_TARO_BANK),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "at exactly the funding limit, freshly",
        funds("500000", login(TARO_MN, age=10)),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "crediting another intermediary's deposit account needs no approval",
        funds(deposit=replace(DEPOSIT, registered_elsewhere=True), direction="wallet_to_deposit"),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "debiting another intermediary's deposit account with its approval",
        funds(deposit=replace(DEPOSIT, registered_elsewhere=True), debit_approved=True),
        "allowed",
        "jp-cbdc",
    ),
    Case("wallet not bound", funds(wallet=account(WALLET.id, None)), "account_not_bound"),
    Case(
        "wallet bound through an identity not given",
        funds(people=[TARO_BANK]),
        "account_not_bound",
    ),
    Case(
        "someone else's wallet",
        funds(wallet=account("acc_hanako_wallet_00001", HANAKO_MN)),
        "holder_mismatch",
    ),
    Case("logged in as someone else", funds(by=login(HANAKO_MN)), "holder_mismatch"),
    Case(
        "two deposit accounts",
        funds(wallet=account(WALLET.id, TARO_MN, "bank_deposit")),
        "account_kind_mismatch",
    ),
    Case(
        "neither account is the requester's",
        funds(
            deposit=replace(DEPOSIT, registered_elsewhere=True),
            wallet=replace(WALLET, registered_elsewhere=True),
            debit_approved=True,
        ),
        "account_registered_elsewhere",
    ),
    Case(
        "debiting another intermediary's deposit account without its approval",
        funds(deposit=replace(DEPOSIT, registered_elsewhere=True)),
        "debit_not_approved",
    ),
    Case(
        "sweeping back from another intermediary's wallet without its approval",
        funds(wallet=replace(WALLET, registered_elsewhere=True), direction="wallet_to_deposit"),
        "debit_not_approved",
    ),
    Case("no active link", funds(linked=False), "link_not_found"),
    Case("the link is flagged", funds(link_flagged=True), "link_flagged"),
    Case("a closed wallet", funds(wallet=replace(WALLET, status="closed")), "account_closed"),
    Case(
        "a flagged deposit account",
        funds(deposit=replace(DEPOSIT, status="flagged")),
        "account_flagged",
    ),
    Case(
        "wallet bound through an EU identity: no set holds both",
        funds(wallet=account(WALLET.id, TARO_EU)),
        "no_common_anchor_set",
    ),
    Case(
        "a set that does not allow funding",
        funds(world=snapshot()),
        "operation_not_allowed",
        "jp-cbdc",
    ),
    Case(
        "wallet bound through a suspended anchor",
        funds(wallet=account(WALLET.id, TARO_OLD)),
        "anchor_suspended",
        "jp-cbdc",
    ),
    Case(
        "deposit bound through a revoked credential",
        funds(people=[TARO_MN, replace(TARO_BANK, credential_status="revoked")]),
        "credential_revoked",
        "jp-cbdc",
    ),
    Case(
        "deposit credential status unknown, failing closed",
        funds(people=[TARO_MN, replace(TARO_BANK, credential_status="unknown")]),
        "credential_status_unknown",
        "jp-cbdc",
    ),
    Case(
        "deposit identity expired",
        funds(people=[TARO_MN, replace(TARO_BANK, expires_at=AT)]),
        "identity_expired",
        "jp-cbdc",
    ),
    Case(
        "deposit identity below min_assurance_funding",
        funds(world=world_with(min_assurance_funding="high")),
        "assurance_too_low",
        "jp-cbdc",
    ),
    Case(
        "no KYC registered where the set requires it",
        funds(world=world_with(account_kyc="required")),
        "kyc_not_registered",
        "jp-cbdc",
    ),
    Case(
        "registered KYC does not match",
        funds(wallet=replace(WALLET, kyc="mismatch")),
        "kyc_mismatch",
        "jp-cbdc",
    ),
    Case(
        "a currency with a transfer limit but no funding limit",
        lambda: funding(
            parse_amount("10.00", "EUR"),
            DEPOSIT,
            WALLET,
            AS_TARO,
            TARO,
            world=world_with(limits={"JPY": "1000000", "EUR": "5000.00"}),
        ),
        "currency_not_allowed",
        "jp-cbdc",
    ),
    Case(
        "above the funding limit (within the transfer limit)",
        funds("500001"),
        "limit_exceeded",
        "jp-cbdc",
    ),
    Case(
        "the day's funding total would go above the funding limit",
        funds("100000", totals={("jp-cbdc", "calendar_day", "holder"): 900_001}),
        "cumulative_limit_exceeded",
        "jp-cbdc",
    ),
    Case(
        "above the funding step-up threshold with a substantial login",
        funds("200001", AS_TARO_BANK),
        "step_up_required",
        "jp-cbdc",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(case: Case) -> None:
    decision = case.decide()
    assert (decision.reason, decision.anchor_set_id) == (case.reason, case.anchor_set)
    assert decision.allowed == (case.reason == "allowed")
    if decision.allowed:
        assert decision.relied_anchors == ("bank-ekyc", "mynumber")


def test_every_reason_funding_can_give_has_a_case() -> None:
    """Every reason but the one only a transfer has and those only a standing authorization
    has."""
    not_funding = {"debtor_account_elsewhere", *STANDING_REASONS}
    assert {case.reason for case in CASES} == set(REASONS) - not_funding


def test_the_new_reasons_are_account_checks_not_stages() -> None:
    assert not {"link_flagged", "debit_not_approved"} & set(STAGE_REASONS)
    names = list(REASONS)
    assert names.index("debit_not_approved") < names.index("no_common_anchor_set")
    assert names.index("link_flagged") < names.index("no_common_anchor_set")


# -- engine: the finer points -------------------------------------------------------------------


def test_account_checks_come_in_the_documented_order() -> None:
    """Each row fails every check from its own on: the first one is reported."""
    elsewhere = replace(DEPOSIT, registered_elsewhere=True, status="closed")
    both_elsewhere = replace(WALLET, registered_elsewhere=True, status="closed")
    steps = [
        (funds(wallet=account(WALLET.id, None, "bank_deposit")), "account_not_bound"),
        (funds(wallet=account(WALLET.id, HANAKO_MN, "bank_deposit")), "holder_mismatch"),
        (
            funds(deposit=elsewhere, wallet=replace(both_elsewhere, kind="bank_deposit")),
            "account_kind_mismatch",
        ),
        (funds(deposit=elsewhere, wallet=both_elsewhere), "account_registered_elsewhere"),
        (funds(deposit=elsewhere, linked=False, link_flagged=True), "debit_not_approved"),
        (
            funds(deposit=elsewhere, debit_approved=True, linked=False, link_flagged=True),
            "link_not_found",
        ),
        (funds(deposit=elsewhere, debit_approved=True, link_flagged=True), "link_flagged"),
        (funds(deposit=elsewhere, debit_approved=True), "account_closed"),
    ]
    assert [decide().reason for decide, _ in steps] == [reason for _, reason in steps]


def test_transfer_step_up_rules_do_not_apply_to_funding() -> None:
    """150,000 is above the transfer rule's 100,000 but not the funding rule's 200,000: an old
    substantial login moves it, while a transfer of it would need a fresh high one."""
    old = login(TARO_BANK, age=5000)
    assert funds("150000", old)().allowed
    assert not transfer(
        jpy("150000"),
        WALLET,
        account("acc_hanako_wallet_00001", HANAKO_MN),
        old,
        TARO,
        world=WORLD,
    ).allowed


def test_the_funding_step_up_asks_for_its_own_level_and_age() -> None:
    decision = funds("200001", AS_TARO_BANK)()
    assert decision.step_up == StepUp("high", 300, "jp-cbdc", ("mynumber",))
    assert funds("200001", login(TARO_MN, age=300))().allowed
    assert funds("200001", login(TARO_MN, age=301))().reason == "step_up_required"


def test_a_funding_step_up_is_not_met_by_a_login_from_sso() -> None:
    from_sso = replace(AS_TARO, fresh=False)
    assert funds("200001", from_sso)().reason == "step_up_required"
    assert funds("200000", from_sso)().allowed  # no rule applies at the threshold


def test_channel_funding_in_person_needs_a_fresh_counter_login() -> None:
    world = world_with(channel_funding="in_person")
    decision = funds(world=world)()
    assert decision.step_up is not None and decision.step_up.in_person
    counter = replace(AS_TARO, channel="in_person")
    assert funds(by=counter, world=world)().allowed
    assert not funds(by=replace(counter, fresh=False), world=world)().allowed
    # ... and channel_transfer does not bind funding
    assert funds(world=world_with(channel_transfer="in_person"))().allowed


def test_transfer_totals_keys_are_the_engines_input_the_operation_is_the_rules() -> None:
    """A funding cumulative rule never applies to a transfer, nor a transfer rule to funding:
    with only a funding rule, a transfer is allowed whatever the totals say, and the other way
    round."""
    totals = {("jp-cbdc", "calendar_day", "holder"): 10**9}
    hanako = account("acc_hanako_wallet_00001", HANAKO_MN)
    assert transfer(jpy("5000"), WALLET, hanako, AS_TARO, TARO, world=WORLD, totals=totals).allowed
    transfer_rule = {**FUNDING_RULE, "id": "daily-transfers", "operation": "value_transfer"}
    only_transfers = world_with(cumulative=[transfer_rule])
    assert funds(world=only_transfers, totals=totals)().allowed
    assert (
        transfer(jpy("5000"), WALLET, hanako, AS_TARO, TARO, world=only_transfers, totals=totals)
    ).reason == "cumulative_limit_exceeded"


def test_a_funding_cumulative_step_up_applies_to_the_window_total() -> None:
    world = world_with(
        cumulative_step_up=[
            {
                "operation": "funding",
                "currency": "JPY",
                "window": "rolling_24h",
                "per": "debtor_account",
                "above": "300000",
                "assurance": "high",
                "max_age": 60,
            }
        ]
    )
    totals = {("jp-cbdc", "rolling_24h", "debtor_account"): 250_001}
    decision = funds("50000", AS_TARO_BANK, world=world, totals=totals)()
    assert decision.step_up == StepUp("high", 60, "jp-cbdc", ("mynumber",))
    assert funds("50000", AS_TARO_BANK, world=world, totals={})().allowed


def test_the_funding_request_names_what_it_debits_and_credits() -> None:
    top_up = FundingRequest("deposit_to_wallet", jpy("1"), DEPOSIT, WALLET, True, False, False)
    assert (top_up.debtor_account, top_up.creditor_account) == (DEPOSIT, WALLET)
    sweep = replace(top_up, direction="wallet_to_deposit")
    assert (sweep.debtor_account, sweep.creditor_account) == (WALLET, DEPOSIT)
    with pytest.raises(ValueError, match="direction"):
        FundingRequest("sideways", jpy("1"), DEPOSIT, WALLET, True, False, False)  # type: ignore[arg-type]


# -- dynamic linking ----------------------------------------------------------------------------

DYNAMIC = world_with(dynamic_linking=["funding", "value_transfer"])
HANAKO_WALLET = account("acc_hanako_wallet_00001", HANAKO_MN)


def pays(by: AuthenticationFact, *, signed: bool, world: TrustSnapshot = DYNAMIC) -> Decision:
    request = TransferRequest(jpy("5000"), WALLET, HANAKO_WALLET, transaction_signed=signed)
    return decide_transfer(world, request, by, TARO, at=AT)


@pytest.mark.parametrize(
    ("fresh", "signed", "allowed"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_dynamic_linking_needs_a_fresh_login_that_signed_the_operation(
    fresh: bool, signed: bool, allowed: bool
) -> None:
    by = replace(AS_TARO, fresh=fresh)
    for decision, anchors in (
        # funding at substantial: both of Taro's anchors can make the new login; a transfer
        # at high: only My Number
        (funds(by=by, world=DYNAMIC, transaction_signed=signed)(), ("bank-ekyc", "mynumber")),
        (pays(by, signed=signed), ("mynumber",)),
    ):
        assert decision.allowed == allowed
        if not allowed:
            assert decision.reason == "step_up_required"
            assert decision.step_up is not None and decision.step_up.dynamic_linking
            assert decision.step_up.anchors == anchors


def test_dynamic_linking_applies_only_to_the_operations_listed() -> None:
    unsigned = replace(AS_TARO, fresh=False)
    only_funding = world_with(dynamic_linking=["funding"])
    assert pays(unsigned, signed=False, world=only_funding).allowed
    assert not funds(by=unsigned, world=only_funding)().allowed
    only_transfers = world_with(dynamic_linking=["value_transfer"])
    assert funds(by=unsigned, world=only_transfers)().allowed
    assert not pays(unsigned, signed=False, world=only_transfers).allowed


def test_without_dynamic_linking_a_step_up_does_not_ask_for_it() -> None:
    decision = funds("200001", AS_TARO_BANK)()
    assert decision.step_up is not None and not decision.step_up.dynamic_linking


def test_a_signed_login_below_the_level_still_steps_up_and_says_so() -> None:
    """Dynamic linking does not lower any other requirement: above the funding step-up a
    signed, fresh, substantial login must still step up, to a high signed one."""
    decision = funds("200001", AS_TARO_BANK, world=DYNAMIC, transaction_signed=True)()
    assert decision.step_up == StepUp("high", 300, "jp-cbdc", ("mynumber",), dynamic_linking=True)
    signed_high = funds("200001", AS_TARO, world=DYNAMIC, transaction_signed=True)()
    assert signed_high.allowed
