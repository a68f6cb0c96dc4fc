"""Channels in the anchor-set policy (docs/POLICY.md, "Channels"): a set may require that the
login relied on was made in person at a bank branch's counter terminal, for an operation
(``channel_link`` / ``channel_transfer``) or above an amount (a step-up rule's ``channel``).
A login taken over from SSO never counts as in person, whatever channel it was made through."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from support.policy_world import (
    JP_CBDC_POLICY,
    POLICIES,
    account,
    identity,
    jpy,
    link,
    login,
    snapshot,
    transfer,
)

from trustanchor.domain.identity import Authentication
from trustanchor.policy.anchor_set_policy import PolicyError, parse_policy
from trustanchor.policy.facts import AuthenticationFact

TARO = identity("taro-mn", "taro", "mynumber")
HANAKO = identity("hanako-mn", "hanako", "mynumber")
DEPOSIT = account("dep-1", TARO, "bank_deposit")
WALLET = account("wal-1", TARO, "cbdc_wallet")
HANAKO_WALLET = account("wal-2", HANAKO, "cbdc_wallet")


def world(**policy: Any) -> Any:
    """The fixed world with jp-cbdc's policy changed (jp-banks also allows links, so links are
    judged in jp-cbdc by making jp-banks hold nothing of Taro's: mynumber only in jp-cbdc)."""
    return snapshot(
        {**POLICIES, "jp-cbdc": {**JP_CBDC_POLICY, **policy}},
        {"mynumber": ("active", ("jp-cbdc",))},
    )


def at_counter(fact: AuthenticationFact) -> AuthenticationFact:
    return replace(fact, channel="in_person")


# -- parsing -----------------------------------------------------------------------------------


def test_channels_parse_and_store_only_when_not_the_default() -> None:
    plain = parse_policy(JP_CBDC_POLICY)
    assert (plain.channel_link, plain.channel_transfer) == ("any", "any")
    stored = plain.to_json()
    assert "channel_link" not in stored and "channel_transfer" not in stored
    assert all("channel" not in rule for rule in stored["step_up"])  # versions do not move

    rules = [{**JP_CBDC_POLICY["step_up"][0], "channel": "in_person"}, JP_CBDC_POLICY["step_up"][1]]
    policy = parse_policy(
        {**JP_CBDC_POLICY, "channel_link": "in_person", "step_up": rules, "channel_transfer": "any"}
    )
    assert policy.channel_link == "in_person" and policy.channel_transfer == "any"
    assert [rule.channel for rule in policy.step_up] == ["in_person", "any"]
    stored = policy.to_json()
    assert stored["channel_link"] == "in_person" and "channel_transfer" not in stored
    assert stored["step_up"][0]["channel"] == "in_person" and "channel" not in stored["step_up"][1]
    assert parse_policy(stored) == policy


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel_link": "remote"}, "channel_link"),
        ({"channel_transfer": "branch"}, "channel_transfer"),
        ({"channel_transfer": True}, "channel_transfer"),
        ({"channel_link": ["in_person"]}, "channel_link"),
        (
            {"step_up": [{**JP_CBDC_POLICY["step_up"][0], "channel": "counter"}]},
            "step_up[0].channel",
        ),
    ],
)
def test_unknown_channels_are_refused_with_the_field_named(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy({**JP_CBDC_POLICY, **changes})
    assert info.value.problems == [(field, "must be one of any, in_person")]


# -- the fact ----------------------------------------------------------------------------------


def test_the_login_fact_carries_the_recorded_channel() -> None:
    recorded = Authentication(
        holder_id="taro",
        identity_id="taro-mn",
        anchor_id="mynumber",
        acr="urn:trustanchor:acr:high",
        amr=("x509",),
        auth_time=1,
        trust_framework="jp_aml",
        channel="in_person",
        in_person={"branch": "tokyo-marunouchi", "operator": "S-0042"},
    )
    assert AuthenticationFact.of(recorded).channel == "in_person"
    assert AuthenticationFact.of(replace(recorded, channel="remote")).channel == "remote"


# -- operation requirements --------------------------------------------------------------------


def test_an_in_person_link_requirement_refuses_a_remote_login() -> None:
    decision = link(DEPOSIT, WALLET, login(TARO), [TARO], world=world(channel_link="in_person"))
    assert decision.reason == "step_up_required"
    assert decision.step_up is not None and decision.step_up.in_person
    assert decision.step_up.anchors == ("mynumber",)


def test_an_in_person_link_requirement_accepts_a_login_at_the_counter() -> None:
    by = at_counter(login(TARO))
    assert link(DEPOSIT, WALLET, by, [TARO], world=world(channel_link="in_person")).allowed


def test_a_login_taken_over_from_sso_never_satisfies_an_in_person_requirement() -> None:
    """Even when the session's login was made at a counter: SSO means nobody was at the
    counter for this request."""
    from_sso = replace(at_counter(login(TARO)), fresh=False)
    decision = link(DEPOSIT, WALLET, from_sso, [TARO], world=world(channel_link="in_person"))
    assert decision.reason == "step_up_required" and decision.step_up is not None
    assert decision.step_up.in_person


@pytest.mark.parametrize("channel", ["", "IN_PERSON", "in-person", "branch"])
def test_only_the_exact_channel_counts_as_in_person(channel: str) -> None:
    by = replace(login(TARO), channel=channel)
    decision = link(DEPOSIT, WALLET, by, [TARO], world=world(channel_link="in_person"))
    assert decision.reason == "step_up_required"


def test_the_link_requirement_does_not_apply_to_transfers() -> None:
    decision = transfer(
        jpy("1000"), WALLET, HANAKO_WALLET, login(TARO), [TARO, HANAKO],
        world=world(channel_link="in_person"),
    )  # fmt: skip
    assert decision.allowed


def test_an_in_person_transfer_requirement() -> None:
    w = world(channel_transfer="in_person")
    remote = transfer(jpy("1000"), WALLET, HANAKO_WALLET, login(TARO), [TARO, HANAKO], world=w)
    assert remote.reason == "step_up_required" and remote.step_up is not None
    assert remote.step_up.in_person and remote.step_up.max_age is None
    counter = at_counter(login(TARO))
    assert transfer(jpy("1000"), WALLET, HANAKO_WALLET, counter, [TARO, HANAKO], world=w).allowed
    # and it does not apply to links
    assert link(DEPOSIT, WALLET, login(TARO), [TARO], world=w).allowed


# -- step-up rules -----------------------------------------------------------------------------


def _counter_above(amount: str) -> Any:
    rule = {"currency": "JPY", "above": amount, "assurance": "high", "max_age": 300}
    return world(step_up=[{**rule, "channel": "in_person"}])


def test_a_step_up_rule_with_channel_applies_above_its_amount_only() -> None:
    w = _counter_above("100000")
    remote = login(TARO, "high", age=1)
    below = transfer(jpy("100000"), WALLET, HANAKO_WALLET, remote, [TARO, HANAKO], world=w)
    assert below.allowed
    above = transfer(jpy("100001"), WALLET, HANAKO_WALLET, remote, [TARO, HANAKO], world=w)
    assert above.reason == "step_up_required" and above.step_up is not None
    assert above.step_up.in_person and above.step_up.max_age == 300
    counter = at_counter(remote)
    assert transfer(jpy("100001"), WALLET, HANAKO_WALLET, counter, [TARO, HANAKO], world=w).allowed


def test_an_in_person_login_still_has_to_be_recent_and_strong_enough() -> None:
    w = _counter_above("100000")
    old = at_counter(login(TARO, "high", age=301))
    assert (
        transfer(jpy("100001"), WALLET, HANAKO_WALLET, old, [TARO, HANAKO], world=w).reason
        == "step_up_required"
    )
    weak = at_counter(login(TARO, "substantial", age=1))
    assert (
        transfer(jpy("100001"), WALLET, HANAKO_WALLET, weak, [TARO, HANAKO], world=w).reason
        == "step_up_required"
    )


def test_a_rule_without_channel_is_satisfied_by_either_channel() -> None:
    w = world()
    remote = login(TARO, "high", age=1)
    for by in (remote, at_counter(remote)):
        assert transfer(jpy("100001"), WALLET, HANAKO_WALLET, by, [TARO, HANAKO], world=w).allowed


def test_a_remote_step_up_is_not_marked_in_person() -> None:
    weak = login(TARO, "substantial", age=1)
    decision = transfer(jpy("100001"), WALLET, HANAKO_WALLET, weak, [TARO, HANAKO], world=world())
    assert decision.step_up is not None and not decision.step_up.in_person
