"""Issue 10, "accounts bound to the right person", in the pure policy engine: only the
intermediary that registered an account binds it; a debtor account another intermediary
registered is debitable only when it is bound to the logged-in holder and linked to one of the
requester's accounts; and an anchor set's ``account_kyc`` says whether the KYC attributes an
intermediary registered must match the identity binding the account (docs/POLICY.md).

SECURITY-CASES.md ("Holders, sessions and cross-device logins") lines covered at the engine
level here (over HTTP in tests/flows/test_account_binding.py): "an account registered by
intermediary A named in intermediary B's request → never bound by B"; "an account whose
registered KYC attributes do not match the binding identity (where the policy asks) → refused".
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.policy_world import (
    AT,
    JP_CBDC_POLICY,
    account,
    identity,
    jpy,
    link,
    login,
    snapshot,
    transfer,
)

from trustanchor.policy.anchor_set_policy import (
    ACCOUNT_KYC,
    DEFAULT_ACCOUNT_KYC,
    PolicyError,
    parse_policy,
)
from trustanchor.policy.decision import REASONS, Decision
from trustanchor.policy.engine import STAGE_REASONS, decide_transfer
from trustanchor.policy.facts import AccountFact, KycState, TransferRequest
from trustanchor.policy.snapshot import TrustSnapshot

TARO = identity("taro-mn", "taro", "mynumber", "high")
HANAKO = identity("hanako-mn", "hanako", "mynumber", "high")
AS_TARO = login(TARO)
DEPOSIT = account("acc_taro_deposit_000001", TARO, "bank_deposit")
WALLET = account("acc_taro_wallet_0000001", TARO)
UNBOUND_DEPOSIT = account("acc_free_deposit_000001", None, "bank_deposit")
HANAKO_WALLET = account("acc_hanako_wallet_00001", HANAKO)


def world(account_kyc: str) -> TrustSnapshot:
    """jp-cbdc alone (mynumber, bank-ekyc), with the given ``account_kyc``."""
    return snapshot(
        {"jp-cbdc": {**JP_CBDC_POLICY, "account_kyc": account_kyc}},
        {"mynumber": ("active", ("jp-cbdc",)), "bank-ekyc": ("active", ("jp-cbdc",))},
    )


KYC_WORLDS = {mode: world(mode) for mode in ACCOUNT_KYC}


# -- the policy field ----------------------------------------------------------------------------


def test_account_kyc_defaults_to_if_registered_and_round_trips() -> None:
    assert DEFAULT_ACCOUNT_KYC == "if_registered"
    assert parse_policy({}).account_kyc == "if_registered"
    for mode in ACCOUNT_KYC:
        policy = parse_policy({"operations": ["account_link"], "account_kyc": mode})
        assert policy.account_kyc == mode
        assert parse_policy(policy.to_json()) == policy


def test_the_default_is_not_spelt_out_so_stored_policies_keep_their_version() -> None:
    terse = parse_policy({"operations": ["account_link"]})
    explicit = parse_policy({"operations": ["account_link"], "account_kyc": "if_registered"})
    assert json.dumps(terse.to_json()) == json.dumps(explicit.to_json())
    assert "account_kyc" not in terse.to_json()
    required = parse_policy({"operations": ["account_link"], "account_kyc": "required"})
    assert required.to_json()["account_kyc"] == "required"


@pytest.mark.parametrize("value", ["Required", "on", "", True, 1, None, ["required"]])
def test_an_unknown_account_kyc_value_is_refused(value: Any) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy({"account_kyc": value})
    assert info.value.problems == [("account_kyc", "must be one of required, if_registered, off")]


def test_the_new_reasons_are_closed_list_members_in_check_order() -> None:
    for reason in (
        "account_registered_elsewhere",
        "debtor_account_elsewhere",
        "kyc_not_registered",
        "kyc_mismatch",
    ):
        assert reason in REASONS
    stages = list(STAGE_REASONS)
    assert stages.index("assurance_too_low") < stages.index("kyc_not_registered")
    assert stages.index("kyc_not_registered") < stages.index("kyc_mismatch")
    assert stages.index("kyc_mismatch") < stages.index("currency_not_allowed")


# -- who may bind, link and debit ------------------------------------------------------------


def test_a_link_that_would_bind_another_intermediarys_account_is_refused() -> None:
    foreign = replace(UNBOUND_DEPOSIT, registered_elsewhere=True)
    decision = link(foreign, WALLET, AS_TARO, [TARO])
    assert (decision.allowed, decision.reason) == (False, "account_registered_elsewhere")


def test_a_link_naming_no_account_of_the_requester_is_refused() -> None:
    decision = link(
        replace(DEPOSIT, registered_elsewhere=True),
        replace(WALLET, registered_elsewhere=True),
        AS_TARO,
        [TARO],
    )
    assert decision.reason == "account_registered_elsewhere"
    unlink = link(
        replace(DEPOSIT, registered_elsewhere=True),
        replace(WALLET, registered_elsewhere=True),
        AS_TARO,
        [TARO],
        action="unlink",
        linked=True,
    )
    assert unlink.reason == "account_registered_elsewhere"


def test_a_cross_intermediary_link_with_the_other_account_already_the_holders_is_allowed() -> None:
    decision = link(DEPOSIT, replace(WALLET, registered_elsewhere=True), AS_TARO, [TARO])
    assert decision.allowed


def test_another_intermediarys_account_bound_to_someone_else_stays_theirs() -> None:
    hanakos = account("acc_hanako_deposit_0001", HANAKO, "bank_deposit", registered_elsewhere=True)
    decision = link(hanakos, WALLET, AS_TARO, [TARO, HANAKO])
    assert decision.reason == "holder_mismatch"


def test_a_debtor_account_of_another_intermediary_needs_a_link_to_one_of_the_requesters() -> None:
    foreign = replace(WALLET, registered_elsewhere=True)
    refused = transfer(jpy("5000"), foreign, HANAKO_WALLET, AS_TARO, [TARO, HANAKO])
    assert (refused.allowed, refused.reason) == (False, "debtor_account_elsewhere")
    linked = _transfer(foreign, HANAKO_WALLET, linked_here=True, world=snapshot())
    assert linked.allowed
    own = transfer(jpy("5000"), WALLET, HANAKO_WALLET, AS_TARO, [TARO, HANAKO])
    assert own.allowed


def test_a_creditor_account_of_another_intermediary_may_be_paid() -> None:
    creditor = replace(HANAKO_WALLET, registered_elsewhere=True)
    assert transfer(jpy("5000"), WALLET, creditor, AS_TARO, [TARO, HANAKO]).allowed


# -- KYC -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "state", "reason"),
    [
        ("required", "match", "allowed"),
        ("required", "none", "kyc_not_registered"),
        ("required", "mismatch", "kyc_mismatch"),
        ("if_registered", "match", "allowed"),
        ("if_registered", "none", "allowed"),
        ("if_registered", "mismatch", "kyc_mismatch"),
        ("off", "match", "allowed"),
        ("off", "none", "allowed"),
        ("off", "mismatch", "allowed"),
    ],
)
def test_account_kyc_decides_links_and_transfers(mode: str, state: KycState, reason: str) -> None:
    matched: KycState = "match"
    deposit = replace(UNBOUND_DEPOSIT, holder_id="taro", binding_identity_id=TARO.id, kyc=state)
    wallet = replace(WALLET, kyc=matched)
    decision = link(deposit, wallet, AS_TARO, [TARO], world=KYC_WORLDS[mode])
    assert decision.reason == reason
    paid = transfer(
        jpy("5000"),
        replace(WALLET, kyc=state),
        replace(HANAKO_WALLET, kyc=matched),
        AS_TARO,
        [TARO, HANAKO],
        world=KYC_WORLDS[mode],
    )
    assert paid.reason == reason
    if reason != "allowed":
        assert decision.anchor_set_id == "jp-cbdc" and not decision.relied_anchors


def test_the_creditors_account_must_be_properly_kycd_too_where_required() -> None:
    decision = transfer(
        jpy("5000"),
        replace(WALLET, kyc="match"),
        HANAKO_WALLET,  # no KYC registered
        AS_TARO,
        [TARO, HANAKO],
        world=KYC_WORLDS["required"],
    )
    assert decision.reason == "kyc_not_registered"


def test_kyc_never_stands_in_the_way_of_an_unlink() -> None:
    decision = link(
        replace(DEPOSIT, kyc="mismatch"),
        replace(WALLET, kyc="none"),
        AS_TARO,
        [TARO],
        action="unlink",
        linked=True,
        world=KYC_WORLDS["required"],
    )
    assert decision.allowed


def test_a_set_that_asks_less_is_relied_on_when_another_refuses_for_kyc() -> None:
    """Two candidate sets: the strict one refuses for KYC, the other allows; first passing
    set by id is relied on, as for every other per-set check."""
    two = snapshot(
        {
            "a-strict": {**JP_CBDC_POLICY, "account_kyc": "required"},
            "b-lenient": {**JP_CBDC_POLICY, "account_kyc": "off"},
        },
        {"mynumber": ("active", ("a-strict", "b-lenient"))},
    )
    decision = transfer(jpy("5000"), WALLET, HANAKO_WALLET, AS_TARO, [TARO, HANAKO], world=two)
    assert (decision.allowed, decision.anchor_set_id) == (True, "b-lenient")


# -- a property: the new facts only ever take permissions away, exactly as documented --------

STATES: tuple[KycState, ...] = ("none", "match", "mismatch")


def _transfer(
    debtor: AccountFact,
    creditor: AccountFact,
    *,
    linked_here: bool,
    world: TrustSnapshot,
    amount: str = "5000",
) -> Decision:
    request = TransferRequest(jpy(amount), debtor, creditor, debtor_linked_here=linked_here)
    return decide_transfer(world, request, AS_TARO, [TARO, HANAKO], at=AT)


def _kyc_allows(mode: str, states: tuple[KycState, ...]) -> bool:
    if mode == "required":
        return all(s == "match" for s in states)
    if mode == "if_registered":
        return "mismatch" not in states
    return True


@given(
    mode=st.sampled_from(ACCOUNT_KYC),
    deposit_state=st.sampled_from(STATES),
    wallet_state=st.sampled_from(STATES),
    deposit_elsewhere=st.booleans(),
    wallet_elsewhere=st.booleans(),
    deposit_bound=st.booleans(),
)
def test_links_follow_the_registrar_and_kyc_rules(
    mode: str,
    deposit_state: KycState,
    wallet_state: KycState,
    deposit_elsewhere: bool,
    wallet_elsewhere: bool,
    deposit_bound: bool,
) -> None:
    deposit = replace(
        DEPOSIT if deposit_bound else UNBOUND_DEPOSIT,
        registered_elsewhere=deposit_elsewhere,
        kyc=deposit_state,
    )
    wallet = replace(WALLET, registered_elsewhere=wallet_elsewhere, kyc=wallet_state)
    decision = link(deposit, wallet, AS_TARO, [TARO], world=KYC_WORLDS[mode])
    registrar_ok = deposit_bound or not deposit_elsewhere
    expected_allowed = (
        registrar_ok
        and deposit_bound  # an unbound deposit fact means nobody proposed a binding
        and not (deposit_elsewhere and wallet_elsewhere)
        and _kyc_allows(mode, (deposit_state, wallet_state))
    )
    assert decision.allowed == expected_allowed
    if not registrar_ok:
        assert decision.reason == "account_registered_elsewhere"


@given(
    mode=st.sampled_from(ACCOUNT_KYC),
    debtor_state=st.sampled_from(STATES),
    creditor_state=st.sampled_from(STATES),
    debtor_elsewhere=st.booleans(),
    linked_here=st.booleans(),
    amount=st.integers(1, 100_000),
)
def test_transfers_debit_only_the_requesters_or_linked_accounts_and_kyc_applies(
    mode: str,
    debtor_state: KycState,
    creditor_state: KycState,
    debtor_elsewhere: bool,
    linked_here: bool,
    amount: int,
) -> None:
    decision = _transfer(
        replace(WALLET, registered_elsewhere=debtor_elsewhere, kyc=debtor_state),
        replace(HANAKO_WALLET, kyc=creditor_state),
        linked_here=linked_here,
        world=KYC_WORLDS[mode],
        amount=str(amount),
    )
    may_debit = not debtor_elsewhere or linked_here
    assert decision.allowed == (may_debit and _kyc_allows(mode, (debtor_state, creditor_state)))
    if not may_debit:
        assert decision.reason == "debtor_account_elsewhere"
