"""Anchor-set policies (trustanchor.policy.anchor_set_policy): what a declaration may say, the
defaults, the canonical JSON form, and how refusals read. Junk of any shape is refused with
PolicyError and nothing else."""

from __future__ import annotations

import datetime
import json
import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.domain.assurance import LEVELS
from trustanchor.domain.money import MINOR_UNITS, parse_amount
from trustanchor.policy.anchor_set_policy import (
    DENY_ALL,
    OPERATIONS,
    AnchorSetPolicy,
    PolicyError,
    StepUpRule,
    parse_policy,
)

DOCUMENTED = """
[anchor_sets.policy]
operations = ["account_link", "value_transfer"]
min_assurance_link = "substantial"
min_assurance_transfer = "high"
revocation_check = "fail_closed"

[anchor_sets.policy.limits]
JPY = "1000000"

[[anchor_sets.policy.step_up]]
currency = "JPY"
above = "100000"
assurance = "high"
max_age = 300
"""


def problems_of(mapping: object) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(mapping)
    return caught.value.problems


def test_the_documented_example() -> None:
    policy = parse_policy(tomllib.loads(DOCUMENTED)["anchor_sets"]["policy"])
    assert policy == AnchorSetPolicy(
        operations=("account_link", "value_transfer"),
        min_assurance_link="substantial",
        min_assurance_transfer="high",
        revocation_check="fail_closed",
        limits={"JPY": parse_amount("1000000", "JPY")},
        step_up=(StepUpRule("JPY", parse_amount("100000", "JPY"), "high", 300),),
    )
    assert policy.allows("value_transfer") and policy.allows("account_link")


def test_an_empty_policy_allows_nothing_with_the_documented_defaults() -> None:
    policy = parse_policy({})
    assert policy == DENY_ALL
    assert not any(policy.allows(op) for op in OPERATIONS)
    assert (policy.min_assurance_link, policy.min_assurance_transfer) == ("substantial", "high")
    assert policy.revocation_check == "fail_closed"
    assert (dict(policy.limits), policy.step_up) == ({}, ())


def test_canonical_json_spells_out_defaults_and_canonical_amounts() -> None:
    policy = parse_policy(
        {
            "operations": ["value_transfer", "account_link"],
            "limits": {"USD": "10", "EUR": "5000.5", "JPY": "1000000"},
            "step_up": [
                {"currency": "JPY", "above": "500000", "assurance": "high", "max_age": 60},
                {"currency": "EUR", "above": "100", "assurance": "high", "max_age": 300},
                {"currency": "JPY", "above": "100000", "assurance": "substantial", "max_age": 300},
            ],
        }
    )
    assert policy.to_json() == {
        "operations": ["account_link", "value_transfer"],
        "min_assurance_link": "substantial",
        "min_assurance_transfer": "high",
        "revocation_check": "fail_closed",
        "limits": {"EUR": "5000.50", "JPY": "1000000", "USD": "10.00"},
        "step_up": [
            {"currency": "EUR", "above": "100.00", "assurance": "high", "max_age": 300},
            {"currency": "JPY", "above": "100000", "assurance": "substantial", "max_age": 300},
            {"currency": "JPY", "above": "500000", "assurance": "high", "max_age": 60},
        ],
    }
    assert parse_policy(policy.to_json()) == policy


def test_two_spellings_of_one_policy_store_the_same_json() -> None:
    terse = parse_policy({"operations": ["account_link"]})
    explicit = parse_policy(
        {
            "operations": ["account_link"],
            "min_assurance_link": "substantial",
            "min_assurance_transfer": "high",
            "revocation_check": "fail_closed",
            "limits": {},
            "step_up": [],
        }
    )
    assert json.dumps(terse.to_json()) == json.dumps(explicit.to_json())


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("strict", [("", "must be a table")]),
        ({"operation": ["account_link"]}, [("operation", "unknown field")]),
        ({"operations": "account_link"}, [("operations", "must be a list drawn from")]),
        ({"operations": ["account_link", 1]}, [("operations", "must be a list drawn from")]),
        ({"operations": ["payment"]}, [("operations", "'payment' is not one of")]),
        ({"operations": ["account_link"] * 2}, [("operations", "lists an operation twice")]),
        ({"min_assurance_link": "medium"}, [("min_assurance_link", "must be one of low")]),
        ({"min_assurance_transfer": 3}, [("min_assurance_transfer", "must be one of low")]),
        ({"revocation_check": "open"}, [("revocation_check", "must be one of fail_closed")]),
        ({"limits": ["JPY"]}, [("limits", "must be a table of currency")]),
        ({"limits": {"XBT": "1"}}, [("limits.XBT", "not a supported ISO 4217")]),
        ({"limits": {"jpy": "1"}}, [("limits.jpy", "not a supported ISO 4217")]),
        ({"limits": {"JPY": 1000000}}, [("limits.JPY", "must be a decimal string")]),
        ({"limits": {"JPY": 1e6}}, [("limits.JPY", "must be a decimal string")]),
        ({"limits": {"JPY": "1e6"}}, [("limits.JPY", "must be a plain decimal string")]),
        ({"limits": {"JPY": "-5"}}, [("limits.JPY", "must be a plain decimal string")]),
        ({"limits": {"JPY": "0"}}, [("limits.JPY", "must be greater than zero")]),
        ({"limits": {"JPY": "1.5"}}, [("limits.JPY", "too many decimals: JPY has 0")]),
        ({"limits": {"EUR": "1.005"}}, [("limits.EUR", "too many decimals: EUR has 2")]),
        ({"limits": {"JPY": "9" * 17}}, [("limits.JPY", "is out of range")]),
        ({"limits": {"JPY": " 5"}}, [("limits.JPY", "must be a plain decimal string")]),
        (
            {"operations": ["value_transfer"]},
            [("limits", "value_transfer is allowed but no currency has a limit")],
        ),
        ({"step_up": {"currency": "JPY"}}, [("step_up", "must be a list of tables")]),
        ({"step_up": ["high"]}, [("step_up[0]", "must be a table")]),
    ],
)
def test_refusals_name_the_field(policy: object, expected: list[tuple[str, str]]) -> None:
    problems = problems_of(policy)
    assert len(problems) == len(expected), problems
    for (field, message), (want_field, want_start) in zip(problems, expected, strict=True):
        assert field == want_field
        assert message.startswith(want_start), message


RULE: dict[str, Any] = {"currency": "JPY", "above": "100000", "assurance": "high", "max_age": 300}
LIMITED = {"limits": {"JPY": "1000000"}}


@pytest.mark.parametrize(
    ("change", "field", "start"),
    [
        ({"currency": "XBT"}, "step_up[0].currency", "not a supported ISO 4217"),
        ({"currency": "EUR"}, "step_up[0].currency", "EUR has no limit"),
        ({"above": 100000}, "step_up[0].above", "must be a decimal string"),
        ({"above": "100000.0"}, "step_up[0].above", "too many decimals"),
        ({"above": "0"}, "step_up[0].above", "must be greater than zero"),
        ({"assurance": "extreme"}, "step_up[0].assurance", "must be one of low"),
        ({"max_age": 0}, "step_up[0].max_age", "must be whole seconds from 1 to 86400"),
        ({"max_age": 86_401}, "step_up[0].max_age", "must be whole seconds"),
        ({"max_age": 300.0}, "step_up[0].max_age", "must be whole seconds"),
        ({"max_age": True}, "step_up[0].max_age", "must be whole seconds"),
        ({"max_age": "300"}, "step_up[0].max_age", "must be whole seconds"),
        ({"minutes": 5}, "step_up[0].minutes", "unknown field"),
    ],
)
def test_step_up_refusals(change: dict[str, Any], field: str, start: str) -> None:
    problems = problems_of({**LIMITED, "step_up": [{**RULE, **change}]})
    assert [f for f, _ in problems] == [field]
    assert problems[0][1].startswith(start), problems


def test_every_missing_step_up_field_is_named() -> None:
    problems = problems_of({**LIMITED, "step_up": [{}]})
    assert problems == [
        ("step_up[0].above", "missing"),
        ("step_up[0].assurance", "missing"),
        ("step_up[0].currency", "missing"),
        ("step_up[0].max_age", "missing"),
    ]


def test_two_rules_for_the_same_threshold_are_refused() -> None:
    problems = problems_of({**LIMITED, "step_up": [RULE, {**RULE, "max_age": 60}]})
    assert problems == [("step_up[1]", "another rule has the same currency and above")]


def test_rules_for_different_thresholds_or_currencies_are_fine() -> None:
    policy = parse_policy(
        {
            "limits": {"JPY": "1000000", "EUR": "5000.00"},
            "step_up": [
                RULE,
                {**RULE, "above": "500000", "max_age": 60},
                {**RULE, "currency": "EUR", "above": "100000.00"},
            ],
        }
    )
    assert len(policy.step_up) == 3


def test_too_many_rules_are_refused() -> None:
    rules = [{**RULE, "above": str(1000 + i)} for i in range(33)]
    assert problems_of({**LIMITED, "step_up": rules}) == [("step_up", "at most 32 rules")]


def test_every_problem_is_reported_at_once_and_prefixed_for_the_loader() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            {
                "operations": ["value_transfer", "payments"],
                "limits": {"JPY": 5},
                "revocation": "open",
                "step_up": [{**RULE, "currency": "USD", "above": "1.001"}],
            }
        )
    assert caught.value.lines("anchor_sets.jp-cbdc.policy") == [
        "anchor_sets.jp-cbdc.policy.revocation: unknown field",
        "anchor_sets.jp-cbdc.policy.operations: 'payments' is not one of account_link, "
        "value_transfer, funding",
        'anchor_sets.jp-cbdc.policy.limits.JPY: must be a decimal string, e.g. "1000000"',
        "anchor_sets.jp-cbdc.policy.step_up[0].currency: USD has no limit, so transfers in it "
        "are refused and the rule never applies",
        "anchor_sets.jp-cbdc.policy.step_up[0].above: too many decimals: USD has 2 decimal places",
    ]
    assert str(caught.value).splitlines()[0] == "policy.revocation: unknown field"
    assert PolicyError([("", "must be a table")]).lines("anchor_sets.s.policy") == [
        "anchor_sets.s.policy: must be a table"
    ]


def test_odd_keys_do_not_spill_into_messages() -> None:
    problems = problems_of({"x" * 100: 1, "a\nb": 2, 3: 4})
    assert problems == [
        ("?", "unknown field"),
        ("?", "unknown field"),
        ("", "field names must be strings"),
    ]


# -- properties ------------------------------------------------------------------------------

CURRENCIES = sorted(MINOR_UNITS)


@st.composite
def valid_policies(draw: st.DrawFn) -> dict[str, Any]:
    currencies = draw(st.lists(st.sampled_from(CURRENCIES), unique=True, max_size=4))

    def amount(code: str) -> str:
        units = draw(st.integers(1, 10**9))
        return str(units) + ("" if MINOR_UNITS[code] == 0 else f".{draw(st.integers(0, 99)):02d}")

    policy: dict[str, Any] = {}
    operations = draw(st.lists(st.sampled_from(OPERATIONS), unique=True))
    if draw(st.booleans()) or operations:
        policy["operations"] = operations
    for name in ("min_assurance_link", "min_assurance_transfer"):
        if draw(st.booleans()):
            policy[name] = draw(st.sampled_from(LEVELS))
    if draw(st.booleans()):
        policy["revocation_check"] = draw(st.sampled_from(["fail_open", "fail_closed"]))
    limits = {code: amount(code) for code in currencies}
    if "value_transfer" in operations and not limits:
        limits = {"JPY": "1000000"}
    if draw(st.booleans()) or limits:
        policy["limits"] = limits
    if "funding" in operations:  # funding needs a funding limit (tests/unit/test_policy_funding)
        policy["funding_limits"] = {"JPY": "500000"}
    rules, seen = [], set()
    for code in limits if draw(st.booleans()) else []:
        above = amount(code)
        if (code, parse_amount(above, code)) in seen:
            continue
        seen.add((code, parse_amount(above, code)))
        rules.append(
            {
                "currency": code,
                "above": above,
                "assurance": draw(st.sampled_from(LEVELS)),
                "max_age": draw(st.integers(1, 86_400)),
            }
        )
    if rules:
        policy["step_up"] = rules
    return policy


@given(valid_policies())
def test_canonical_json_round_trips_and_is_a_fixed_point(declared: dict[str, Any]) -> None:
    policy = parse_policy(declared)
    stored = json.loads(json.dumps(policy.to_json()))  # as the repository's JSON column has it
    assert parse_policy(stored) == policy
    assert parse_policy(stored).to_json() == stored


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from([*LEVELS, *OPERATIONS, *CURRENCIES, "fail_open", "100000", "1.5", "0"])
    | st.dates()
    | st.just(datetime.time(12, 0))
)
junk = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "operations",
                    "limits",
                    "step_up",
                    "currency",
                    "above",
                    "assurance",
                    "max_age",
                    "JPY",
                    "EUR",
                    "min_assurance_link",
                    "revocation_check",
                    "x",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
policy_shaped = st.dictionaries(
    st.sampled_from(
        [
            "operations",
            "min_assurance_link",
            "min_assurance_transfer",
            "revocation_check",
            "limits",
            "step_up",
        ]
    ),
    junk,
)


@given(st.one_of(junk, policy_shaped, valid_policies()))
def test_junk_is_refused_with_policy_error_and_nothing_else(value: object) -> None:
    try:
        policy = parse_policy(value)
    except PolicyError as exc:
        assert exc.problems
        assert all(isinstance(f, str) and isinstance(m, str) and m for f, m in exc.problems)
    else:
        assert parse_policy(policy.to_json()) == policy


@given(valid_policies(), st.sampled_from(["operations", "limits", "step_up"]), junk)
def test_one_bad_field_in_a_good_policy_is_named(
    declared: dict[str, Any], name: str, value: object
) -> None:
    try:
        parse_policy({**declared, name: value})
    except PolicyError as exc:
        assert {field.split(".")[0].split("[")[0] for field, _ in exc.problems} <= {
            name,
            "limits",  # a step_up rule or value_transfer may need a limit that is now gone
            "step_up",
            "funding_limits",  # junk operations may add funding, which needs a funding limit
        }


def test_a_bad_limit_is_reported_once_not_again_by_its_step_up_rules() -> None:
    problems = problems_of({"limits": {"JPY": "1.5"}, "step_up": [RULE]})
    assert problems == [("limits.JPY", "too many decimals: JPY has 0 decimal places")]
