"""Cumulative limits and step-up rules in the anchor-set policy: the parser (refusals, canonical
JSON that leaves existing sets' JSON alone), the windows' buckets, and the engine's use of the
window totals (docs/POLICY.md, "Cumulative limits")."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.policy_world import (
    JP_CBDC_POLICY,
    POLICIES,
    account,
    identity,
    jpy,
    login,
    snapshot,
    transfer,
)

from trustanchor.policy.anchor_set_policy import (
    DEFAULT_TIME_ZONE,
    PolicyError,
    parse_policy,
)
from trustanchor.policy.decision import Decision
from trustanchor.policy.windows import HOUR, bucket_start, earliest_bucket

DAILY = {
    "id": "daily-jpy",
    "currency": "JPY",
    "window": "calendar_day",
    "per": "holder",
    "limit": "1000000",
}
STEP = {
    "currency": "JPY",
    "window": "rolling_24h",
    "per": "debtor_account",
    "above": "300000",
    "assurance": "high",
    "max_age": 120,
}


def with_rules(**fields: Any) -> dict[str, Any]:
    return {**JP_CBDC_POLICY, **fields}


def problems(policy: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(policy)
    return caught.value.problems


# -- parser -------------------------------------------------------------------------------------


def test_a_policy_without_cumulative_rules_keeps_its_json() -> None:
    """Sets stored before cumulative limits existed: the same JSON, hence the same version."""
    stored = parse_policy(JP_CBDC_POLICY).to_json()
    assert not {"time_zone", "cumulative", "cumulative_step_up"} & set(stored)


def test_cumulative_rules_round_trip_with_the_time_zone_spelt_out() -> None:
    policy = parse_policy(with_rules(cumulative=[DAILY], cumulative_step_up=[STEP]))
    stored = policy.to_json()
    assert stored["time_zone"] == DEFAULT_TIME_ZONE
    assert stored["cumulative"] == [DAILY]
    assert stored["cumulative_step_up"] == [STEP]
    assert parse_policy(stored) == policy
    assert parse_policy(stored).to_json() == stored


def test_the_time_zone_alone_is_stored_when_not_the_default() -> None:
    stored = parse_policy(with_rules(time_zone="Europe/Paris")).to_json()
    assert stored["time_zone"] == "Europe/Paris"
    assert "cumulative" not in stored


def test_rules_are_stored_in_a_fixed_order() -> None:
    monthly = {**DAILY, "id": "monthly-jpy", "window": "calendar_month", "limit": "5000000"}
    one = parse_policy(with_rules(cumulative=[monthly, DAILY])).to_json()
    other = parse_policy(with_rules(cumulative=[DAILY, monthly])).to_json()
    assert one == other


@pytest.mark.parametrize(
    ("fields", "where", "words"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
        ({"time_zone": "../etc/passwd"}, "time_zone", "IANA"),
        ({"time_zone": 9}, "time_zone", "IANA"),
        ({"cumulative": {"id": "x"}}, "cumulative", "list"),
        ({"cumulative": [{**DAILY, "window": "weekly"}]}, "cumulative[0].window", "one of"),
        ({"cumulative": [{**DAILY, "per": "person"}]}, "cumulative[0].per", "one of"),
        ({"cumulative": [{**DAILY, "limit": 1000000}]}, "cumulative[0].limit", "decimal"),
        ({"cumulative": [{**DAILY, "limit": "0"}]}, "cumulative[0].limit", "greater than"),
        ({"cumulative": [{**DAILY, "currency": "EUR"}]}, "cumulative[0].currency", "no limit"),
        ({"cumulative": [{**DAILY, "id": "Daily JPY"}]}, "cumulative[0].id", "a-z"),
        ({"cumulative": [{**DAILY, "scope": "all"}]}, "cumulative[0].scope", "unknown"),
        (
            {"cumulative": [{k: v for k, v in DAILY.items() if k != "per"}]},
            "cumulative[0].per",
            "missing",
        ),
        ({"cumulative": [DAILY, DAILY]}, "cumulative[1].id", "same id"),
        (
            {"cumulative": [DAILY, {**DAILY, "id": "again"}]},
            "cumulative[1]",
            "same currency, window and per",
        ),
        ({"cumulative": [DAILY] * 17}, "cumulative", "at most 16"),
        (
            {"cumulative_step_up": [{**STEP, "max_age": 0}]},
            "cumulative_step_up[0].max_age",
            "whole seconds",
        ),
        (
            {"cumulative_step_up": [{**STEP, "assurance": "very"}]},
            "cumulative_step_up[0].assurance",
            "one of",
        ),
        (
            {"cumulative_step_up": [{k: v for k, v in STEP.items() if k != "above"}]},
            "cumulative_step_up[0].above",
            "missing",
        ),
        ({"cumulative_step_up": [STEP, STEP]}, "cumulative_step_up[1]", "same currency"),
    ],
)
def test_a_bad_cumulative_rule_is_refused_with_its_place(
    fields: dict[str, Any], where: str, words: str
) -> None:
    found = problems(with_rules(**fields))
    assert any(w == where and words in message for w, message in found), found


# -- windows ------------------------------------------------------------------------------------


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def test_a_calendar_day_starts_at_midnight_in_the_sets_time_zone() -> None:
    # 15:30 UTC is 00:30 the next day in Tokyo.
    at = epoch("2026-12-06T15:30:00+00:00")
    assert bucket_start("calendar_day", at, "Asia/Tokyo") == epoch("2026-12-07T00:00:00+09:00")
    assert bucket_start("calendar_day", at, "Europe/Paris") == epoch("2026-12-06T00:00:00+01:00")


def test_a_calendar_month_starts_on_the_first() -> None:
    at = epoch("2026-11-30T15:30:00+00:00")  # already 1 December in Tokyo
    assert bucket_start("calendar_month", at, "Asia/Tokyo") == epoch("2026-12-01T00:00:00+09:00")


def test_a_calendar_day_over_a_daylight_saving_change_starts_at_local_midnight() -> None:
    at = epoch("2026-03-29T12:00:00+02:00")  # Paris springs forward that night
    start = bucket_start("calendar_day", at, "Europe/Paris")
    assert datetime.fromtimestamp(start, UTC).isoformat() == "2026-03-28T23:00:00+00:00"


def test_a_rolling_window_spans_the_current_hour_and_the_23_before() -> None:
    at = epoch("2026-12-06T15:30:00+00:00")
    assert bucket_start("rolling_24h", at, "Asia/Tokyo") == epoch("2026-12-06T15:00:00+00:00")
    assert earliest_bucket("rolling_24h", at, "Asia/Tokyo") == epoch("2026-12-05T16:00:00+00:00")


@given(st.integers(0, 4_000_000_000), st.sampled_from(["calendar_day", "calendar_month"]))
def test_every_instant_falls_in_its_calendar_bucket(at: int, window: str) -> None:
    start = bucket_start(window, at, "Asia/Tokyo")
    assert start <= at < start + (32 * 86_400 if window == "calendar_month" else 86_400)
    assert bucket_start(window, start, "Asia/Tokyo") == start


@given(st.integers(0, 4_000_000_000))
def test_a_rolling_window_is_24_hours_of_buckets(at: int) -> None:
    assert bucket_start("rolling_24h", at, "UTC") <= at
    assert earliest_bucket("rolling_24h", at, "UTC") == bucket_start("rolling_24h", at, "UTC") - (
        23 * HOUR
    )


# -- engine -------------------------------------------------------------------------------------

TARO = identity("taro-mn", "taro", "mynumber", "high")
TARO_SUBSTANTIAL = identity("taro-bank", "taro", "bank-ekyc", "substantial")
TARO_WALLET = account("acc_taro_wallet_0000001", TARO)
HANAKO = identity("hanako-mn", "hanako", "mynumber", "high")
HANAKO_WALLET = account("acc_hanako_wallet_00001", HANAKO)
EVERYONE = [TARO, TARO_SUBSTANTIAL, HANAKO]
WORLD = snapshot(POLICIES | {"jp-cbdc": with_rules(cumulative=[DAILY], cumulative_step_up=[STEP])})


def pays(amount: str, already: dict[tuple[str, str], int], *, age: int = 10) -> Decision:
    totals = {("jp-cbdc", window, per): total for (window, per), total in already.items()}
    return transfer(
        jpy(amount),
        TARO_WALLET,
        HANAKO_WALLET,
        login(TARO, age=age),
        EVERYONE,
        world=WORLD,
        totals=totals,
    )


def test_exactly_at_the_cumulative_limit_is_allowed() -> None:
    assert pays("100000", {("calendar_day", "holder"): 900_000}).allowed


def test_one_yen_above_the_cumulative_limit_is_denied() -> None:
    decision = pays("100000", {("calendar_day", "holder"): 900_001})
    assert (decision.reason, decision.anchor_set_id) == ("cumulative_limit_exceeded", "jp-cbdc")


def test_totals_of_other_windows_or_subjects_do_not_count_against_a_limit() -> None:
    other = {("calendar_day", "debtor_account"): 2_000_000, ("calendar_month", "holder"): 10**7}
    assert pays("100000", other).allowed


def test_the_eleventh_transfer_of_100000_is_refused() -> None:
    """The issue's example, as the engine sees it: each approval raises the day's total."""
    results = [pays("100000", {("calendar_day", "holder"): 100_000 * n}) for n in range(11)]
    assert [d.reason for d in results] == ["allowed"] * 10 + ["cumulative_limit_exceeded"]


def test_a_cumulative_step_up_asks_for_the_login_a_step_up_rule_would() -> None:
    """50,000 is below the per-transfer step-up threshold, but the rolling total plus it is
    above the cumulative rule's 300,000: a login older than its 120 s must step up."""
    decision = pays("50000", {("rolling_24h", "debtor_account"): 250_001}, age=121)
    assert decision.reason == "step_up_required"
    assert decision.step_up is not None
    assert (decision.step_up.assurance, decision.step_up.max_age) == ("high", 120)
    assert decision.step_up.anchors == ("mynumber",)
    assert pays("50000", {("rolling_24h", "debtor_account"): 250_001}, age=120).allowed


def test_a_cumulative_step_up_does_not_apply_at_its_threshold() -> None:
    assert pays("50000", {("rolling_24h", "debtor_account"): 250_000}, age=121).allowed
    assert pays("50000", {}, age=121).allowed


def test_the_demo_gives_jp_cbdc_a_daily_limit_per_person() -> None:
    """config/demo.toml: the demo walk can show a refused split transfer."""
    config = tomllib.loads(
        (Path(__file__).resolve().parents[2] / "config" / "demo.toml").read_text()
    )
    [jp] = [s for s in config["anchor_sets"] if s["id"] == "jp-cbdc"]
    policy = parse_policy(jp["policy"])
    [daily] = [r for r in policy.cumulative if r.operation == "value_transfer"]
    assert (daily.currency, daily.window, daily.per) == ("JPY", "calendar_day", "holder")
    assert daily.limit <= policy.limits["JPY"]
    for rule in policy.cumulative:  # a funding rule, if any, is within reach of funding
        if rule.operation == "funding":
            assert rule.currency in policy.funding_limits


# -- parser properties --------------------------------------------------------------------------

WINDOWS = st.sampled_from(["calendar_day", "calendar_month", "rolling_24h"])
PERS = st.sampled_from(["holder", "debtor_account"])
JPY_TEXT = st.integers(1, 10**9).map(str)


@st.composite
def cumulative_policies(draw: st.DrawFn) -> dict[str, Any]:
    limits = draw(
        st.lists(st.tuples(WINDOWS, PERS, JPY_TEXT), max_size=6, unique_by=lambda t: t[:2])
    )
    steps = draw(
        st.lists(
            st.tuples(WINDOWS, PERS, JPY_TEXT, st.sampled_from(["low", "substantial", "high"])),
            max_size=6,
            unique_by=lambda t: (t[0], t[1], int(t[2])),
        )
    )
    policy = with_rules(
        cumulative=[
            {"id": f"r{i}", "currency": "JPY", "window": w, "per": p, "limit": limit}
            for i, (w, p, limit) in enumerate(limits)
        ],
        cumulative_step_up=[
            {
                "currency": "JPY",
                "window": w,
                "per": p,
                "above": above,
                "assurance": level,
                "max_age": 60,
            }
            for w, p, above, level in steps
        ],
    )
    if draw(st.booleans()):
        policy["time_zone"] = draw(st.sampled_from(["Asia/Tokyo", "UTC", "Europe/Paris"]))
    return policy


@given(cumulative_policies())
def test_cumulative_rules_round_trip_in_any_order(declared: dict[str, Any]) -> None:
    policy = parse_policy(declared)
    stored = policy.to_json()
    assert parse_policy(stored) == policy and parse_policy(stored).to_json() == stored
    shuffled = {
        **declared,
        "cumulative": list(reversed(declared["cumulative"])),
        "cumulative_step_up": list(reversed(declared["cumulative_step_up"])),
    }
    assert parse_policy(shuffled).to_json() == stored
    has_rules = bool(declared["cumulative"] or declared["cumulative_step_up"])
    assert ("time_zone" in stored) == (
        has_rules or declared.get("time_zone", DEFAULT_TIME_ZONE) != DEFAULT_TIME_ZONE
    )


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.sampled_from(["time_zone", "cumulative", "cumulative_step_up"]),
    JUNK | st.lists(st.dictionaries(st.sampled_from([*DAILY, *STEP]), JUNK), max_size=3),
)
def test_junk_in_a_cumulative_field_is_refused_with_policy_error_only(
    field: str, value: object
) -> None:
    try:
        parse_policy(with_rules(**{field: value}))
    except PolicyError as exc:
        assert exc.problems and all(where.startswith(field) for where, _ in exc.problems)
