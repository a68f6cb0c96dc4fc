"""The ``standing_funding`` authorization_details type (issue 12, standing authorizations,
trustanchor/oauth/standing_funding.py): every refusal with its exact description, for a request
and for a granted entry; the normalised form; the dataclass view; ``covers`` (a concrete
``funding`` movement within the per-movement bounds); and properties (nothing but
invalid_authorization_details escapes; normalisation is idempotent and survives JSON;
``from_entry(to_entry(x)) == x``; ``covers`` is exactly the documented rule; no client value is
repeated in a description).

The validator is called directly: registering the type (oauth/detail_types.py) is done together
with its policy decision, and the request-level rules (entry index prefix, one entry per type)
are the registry's."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.details import (
    DEPOSIT,
    EXPIRES_AT,
    LINK_ID,
    OMIT,
    STANDING_ID,
    WALLET,
    funding,
    granted_standing_funding,
    link,
    standing_funding,
    transfer,
)

from trustanchor import strict_json
from trustanchor.domain.money import MAX_MINOR, MINOR_UNITS, Amount
from trustanchor.oauth import standing_funding as standing_type
from trustanchor.oauth.errors import InvalidAuthorizationDetails
from trustanchor.oauth.funding import DIRECTIONS, FundingDetail
from trustanchor.oauth.standing_funding import (
    MAX_EXPIRES_AT,
    MAX_VALID_DAYS,
    MIN_VALID_DAYS,
    STANDING_AUTHORIZATION_ID,
    StandingFundingDetail,
    find,
    validate,
)

MEMBERS = [
    "type",
    "directions",
    "deposit_account",
    "wallet_account",
    "max_amount",
    "daily_amount",
    "valid_days",
]
GRANTED_MEMBERS = [*MEMBERS, "link_id", "standing_authorization_id", "expires_at"]
BAD_AMOUNT = (
    "must be a string of decimal digits with an optional fraction "
    "(no sign, exponent, spaces or leading zeros)"
)
BAD_DIRECTION = 'directions may hold only "deposit_to_wallet" and "wallet_to_deposit"'
BAD_LINK_ID = "link_id must be a link id (lnk_…)"
BAD_STANDING_ID = "standing_authorization_id must be a standing authorization id (sta_…)"
NOT_IN_A_REQUEST = "{} is set by the service and is not allowed in a request"


def refusal(entry: Any, *, granted: bool = False) -> str:
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        validate(entry, granted=granted)
    assert caught.value.error == "invalid_authorization_details"
    return caught.value.description


# -- well-formed entries -------------------------------------------------------------------------


def test_a_well_formed_request_is_returned_normalised() -> None:
    entry = validate(
        standing_funding(
            currency="EUR",
            max_text="12.5",
            daily_text="100",
            directions=["wallet_to_deposit", "deposit_to_wallet"],
        )
    )
    assert entry == {
        "type": "standing_funding",
        "directions": ["deposit_to_wallet", "wallet_to_deposit"],
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
        "max_amount": {"currency": "EUR", "amount": "12.50"},
        "daily_amount": {"currency": "EUR", "amount": "100.00"},
        "valid_days": 90,
    }
    assert list(entry) == MEMBERS


def test_a_request_may_name_the_link() -> None:
    entry = validate(standing_funding(link_id=LINK_ID))
    assert list(entry) == [*MEMBERS, "link_id"]
    assert entry["link_id"] == LINK_ID


def test_a_granted_entry_carries_the_service_members_last() -> None:
    reversed_entry = dict(reversed(list(granted_standing_funding().items())))
    entry = validate(reversed_entry, granted=True)
    assert list(entry) == GRANTED_MEMBERS
    assert (entry["link_id"], entry["standing_authorization_id"], entry["expires_at"]) == (
        LINK_ID,
        STANDING_ID,
        EXPIRES_AT,
    )


@pytest.mark.parametrize(
    "directions",
    [["deposit_to_wallet"], ["wallet_to_deposit"], list(DIRECTIONS), list(reversed(DIRECTIONS))],
)
def test_directions_come_back_in_canonical_order(directions: list[str]) -> None:
    entry = validate(standing_funding(directions=directions))
    assert entry["directions"] == [d for d in DIRECTIONS if d in directions]


@pytest.mark.parametrize("days", [MIN_VALID_DAYS, 2, 365, MAX_VALID_DAYS])
def test_valid_days_bounds_are_inclusive(days: int) -> None:
    assert validate(standing_funding(valid_days=days))["valid_days"] == days


def test_the_bounds() -> None:
    assert (MIN_VALID_DAYS, MAX_VALID_DAYS) == (1, 366)
    assert MAX_EXPIRES_AT == 253_402_300_799  # 9999-12-31T23:59:59Z
    assert standing_type.TYPE == "standing_funding"
    assert STANDING_AUTHORIZATION_ID.fullmatch(STANDING_ID)
    assert not STANDING_AUTHORIZATION_ID.fullmatch(LINK_ID)


def test_max_amount_may_equal_daily_amount() -> None:
    entry = validate(standing_funding(max_text="100000", daily_text="100000"))
    assert entry["max_amount"] == entry["daily_amount"]


@pytest.mark.parametrize("expires_at", [1, EXPIRES_AT, MAX_EXPIRES_AT])
def test_expires_at_bounds_are_inclusive(expires_at: int) -> None:
    entry = validate(granted_standing_funding(expires_at=expires_at), granted=True)
    assert entry["expires_at"] == expires_at


# -- refusals, each with its exact description ---------------------------------------------------

COMMON_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("type_other", {"type": "funding"}, "type must be 'standing_funding'"),
    ("type_missing", {"type": OMIT}, "type is required"),
    ("directions_missing", {"directions": OMIT}, "directions is required"),
    ("directions_string", {"directions": "deposit_to_wallet"}, "directions must be an array"),
    ("directions_null", {"directions": None}, "directions must be an array"),
    ("directions_object", {"directions": {"a": 1}}, "directions must be an array"),
    ("directions_empty", {"directions": []}, "directions must not be empty"),
    ("directions_number_item", {"directions": [1]}, "directions must hold strings"),
    ("directions_null_item", {"directions": [None]}, "directions must hold strings"),
    (
        "directions_nested",
        {"directions": [["deposit_to_wallet"]]},
        "directions must hold strings",
    ),
    ("directions_unknown", {"directions": ["sweep"]}, BAD_DIRECTION),
    ("directions_upper_case", {"directions": ["DEPOSIT_TO_WALLET"]}, BAD_DIRECTION),
    ("directions_empty_string", {"directions": [""]}, BAD_DIRECTION),
    (
        "directions_one_good_one_unknown",
        {"directions": ["deposit_to_wallet", "sweep"]},
        BAD_DIRECTION,
    ),
    (
        "directions_repeated",
        {"directions": ["deposit_to_wallet", "deposit_to_wallet"]},
        "directions must not repeat a direction",
    ),
    (
        "directions_three",
        {"directions": ["deposit_to_wallet", "wallet_to_deposit", "deposit_to_wallet"]},
        "directions must not repeat a direction",
    ),
    ("deposit_missing", {"deposit_account": OMIT}, "deposit_account is required"),
    ("wallet_missing", {"wallet_account": OMIT}, "wallet_account is required"),
    ("deposit_number", {"deposit_account": 1}, "deposit_account must be a string"),
    (
        "deposit_not_an_account_id",
        {"deposit_account": "DE89370400440532013000"},
        "deposit_account must be an account id (acc_…)",
    ),
    (
        "wallet_with_newline",
        {"wallet_account": WALLET + "\n"},
        "wallet_account must be an account id (acc_…)",
    ),
    (
        "deposit_equals_wallet",
        {"wallet_account": DEPOSIT},
        "deposit_account and wallet_account must differ",
    ),
    ("max_amount_missing", {"max_amount": OMIT}, "max_amount is required"),
    ("daily_amount_missing", {"daily_amount": OMIT}, "daily_amount is required"),
    ("max_amount_string", {"max_amount": "50000 JPY"}, "max_amount must be an object"),
    ("daily_amount_array", {"daily_amount": ["JPY", "1"]}, "daily_amount must be an object"),
    ("max_amount_number", {"max_amount": 50000}, "max_amount must be an object"),
    (
        "max_amount_as_json_number",
        {"max_amount": {"currency": "JPY", "amount": 50000}},
        "max_amount.amount must be a string",
    ),
    (
        "daily_amount_nan",
        {"daily_amount": {"currency": "JPY", "amount": float("nan")}},
        "daily_amount.amount must be a string",
    ),
    (
        "max_amount_exponent",
        {"max_amount": {"currency": "JPY", "amount": "5e4"}},
        "max_amount.amount " + BAD_AMOUNT,
    ),
    (
        "daily_amount_negative",
        {"daily_amount": {"currency": "JPY", "amount": "-1"}},
        "daily_amount.amount " + BAD_AMOUNT,
    ),
    (
        "max_amount_zero",
        {"max_amount": {"currency": "JPY", "amount": "0"}},
        "max_amount.amount must be greater than zero",
    ),
    (
        "max_amount_jpy_decimals",
        {"max_amount": {"currency": "JPY", "amount": "1.5"}},
        "max_amount.amount has more decimals than JPY allows (0)",
    ),
    (
        "daily_amount_eur_three_decimals",
        {"daily_amount": {"currency": "EUR", "amount": "1.005"}},
        "daily_amount.amount has more decimals than EUR allows (2)",
    ),
    (
        "daily_amount_beyond_the_range",
        {"daily_amount": {"currency": "JPY", "amount": str(MAX_MINOR + 1)}},
        "daily_amount.amount is out of range",
    ),
    (
        "max_currency_lower_case",
        {"max_amount": {"currency": "jpy", "amount": "1"}},
        "max_amount.currency must be a supported ISO 4217 code",
    ),
    (
        "daily_currency_missing",
        {"daily_amount": {"amount": "1"}},
        "daily_amount.currency is required",
    ),
    (
        "max_amount_extra_member",
        {"max_amount": {"currency": "JPY", "amount": "1", "per": "day"}},
        "unknown member max_amount.per is not allowed",
    ),
    (
        "max_amount_long_extra_member",
        {"max_amount": {"currency": "JPY", "amount": "1", "p" * 33: 1}},
        "an unknown member of max_amount is not allowed",
    ),
    (
        "two_currencies",
        {"daily_amount": {"currency": "EUR", "amount": "100000"}},
        "max_amount and daily_amount must be in one currency",
    ),
    (
        "max_above_daily",
        {"max_amount": {"currency": "JPY", "amount": "100001"}},
        "max_amount must not exceed daily_amount",
    ),
    (
        "max_above_daily_by_one_cent",
        {
            "max_amount": {"currency": "EUR", "amount": "10.01"},
            "daily_amount": {"currency": "EUR", "amount": "10"},
        },
        "max_amount must not exceed daily_amount",
    ),
    ("valid_days_missing", {"valid_days": OMIT}, "valid_days is required"),
    ("valid_days_string", {"valid_days": "90"}, "valid_days must be an integer"),
    ("valid_days_float", {"valid_days": 90.0}, "valid_days must be an integer"),
    ("valid_days_true", {"valid_days": True}, "valid_days must be an integer"),
    ("valid_days_null", {"valid_days": None}, "valid_days must be an integer"),
    ("valid_days_zero", {"valid_days": 0}, "valid_days must be from 1 to 366"),
    ("valid_days_negative", {"valid_days": -1}, "valid_days must be from 1 to 366"),
    ("valid_days_367", {"valid_days": 367}, "valid_days must be from 1 to 366"),
    ("valid_days_huge", {"valid_days": 10**30}, "valid_days must be from 1 to 366"),
    ("link_id_null", {"link_id": None}, "link_id must be a string"),
    ("link_id_an_account_id", {"link_id": DEPOSIT}, BAD_LINK_ID),
    ("link_id_too_long", {"link_id": "lnk_" + "A" * 61}, BAD_LINK_ID),
    ("link_id_a_standing_id", {"link_id": STANDING_ID}, BAD_LINK_ID),
    ("unknown_member", {"note": "x"}, "unknown member note is not allowed"),
    (
        "a_funding_member",
        {"direction": "deposit_to_wallet"},
        "unknown member direction is not allowed",
    ),
    ("rfc9396_actions", {"actions": ["fund"]}, "unknown member actions is not allowed"),
    ("rfc9396_locations", {"locations": ["x"]}, "unknown member locations is not allowed"),
    ("long_unknown_member", {"x" * 33: 1}, "an unknown member is not allowed"),
]

REQUEST_ONLY_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    (
        "request_with_standing_id",
        {"standing_authorization_id": STANDING_ID},
        NOT_IN_A_REQUEST.format("standing_authorization_id"),
    ),
    ("request_with_expiry", {"expires_at": EXPIRES_AT}, NOT_IN_A_REQUEST.format("expires_at")),
    (
        "request_with_a_bad_standing_id",
        {"standing_authorization_id": 7},
        NOT_IN_A_REQUEST.format("standing_authorization_id"),
    ),
    (
        "request_with_both",
        {"standing_authorization_id": STANDING_ID, "expires_at": EXPIRES_AT},
        NOT_IN_A_REQUEST.format("standing_authorization_id"),
    ),
    (
        "unknown_before_the_service_members",
        {"expires_at": EXPIRES_AT, "zeta": 1},
        "unknown member zeta is not allowed",
    ),
    (
        "missing_before_the_service_members",
        {"expires_at": EXPIRES_AT, "valid_days": OMIT},
        "valid_days is required",
    ),
]

GRANTED_ONLY_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("granted_without_link", {"link_id": OMIT}, "link_id is required"),
    (
        "granted_without_standing_id",
        {"standing_authorization_id": OMIT},
        "standing_authorization_id is required",
    ),
    ("granted_without_expiry", {"expires_at": OMIT}, "expires_at is required"),
    (
        "standing_id_number",
        {"standing_authorization_id": 1},
        "standing_authorization_id must be a string",
    ),
    ("standing_id_empty", {"standing_authorization_id": ""}, BAD_STANDING_ID),
    ("standing_id_a_link_id", {"standing_authorization_id": LINK_ID}, BAD_STANDING_ID),
    ("standing_id_too_short", {"standing_authorization_id": "sta_" + "A" * 15}, BAD_STANDING_ID),
    ("standing_id_too_long", {"standing_authorization_id": "sta_" + "A" * 61}, BAD_STANDING_ID),
    (
        "standing_id_with_newline",
        {"standing_authorization_id": STANDING_ID + "\n"},
        BAD_STANDING_ID,
    ),
    ("expires_at_string", {"expires_at": str(EXPIRES_AT)}, "expires_at must be an integer"),
    ("expires_at_float", {"expires_at": float(EXPIRES_AT)}, "expires_at must be an integer"),
    ("expires_at_true", {"expires_at": True}, "expires_at must be an integer"),
    ("expires_at_null", {"expires_at": None}, "expires_at must be an integer"),
    ("expires_at_zero", {"expires_at": 0}, "expires_at must be from 1 to 253402300799"),
    ("expires_at_negative", {"expires_at": -1}, "expires_at must be from 1 to 253402300799"),
    (
        "expires_at_beyond_year_9999",
        {"expires_at": MAX_EXPIRES_AT + 1},
        "expires_at must be from 1 to 253402300799",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        pytest.param(over, text, id=case)
        for case, over, text in COMMON_REFUSALS + REQUEST_ONLY_REFUSALS
    ],
)
def test_a_malformed_request_is_refused_naming_the_member(
    overrides: dict[str, Any], description: str
) -> None:
    assert refusal(standing_funding(**overrides)) == description


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        pytest.param(over, text, id=case)
        for case, over, text in COMMON_REFUSALS + GRANTED_ONLY_REFUSALS
    ],
)
def test_a_malformed_granted_entry_is_refused_naming_the_member(
    overrides: dict[str, Any], description: str
) -> None:
    entry = granted_standing_funding(**overrides)
    assert refusal(entry, granted=True) == description
    # from_entry reads it as granted (it names the service's members) and refuses it alike
    if "standing_authorization_id" in entry or "expires_at" in entry:
        with pytest.raises(InvalidAuthorizationDetails) as caught:
            StandingFundingDetail.from_entry(entry)
        assert caught.value.description == description


@pytest.mark.parametrize(
    ("entry", "description"),
    [
        (funding(), "unknown member direction is not allowed"),
        (transfer(), "unknown member creditor_account is not allowed"),
        (link(), "unknown member actions is not allowed"),
    ],
    ids=["a_funding", "a_value_transfer", "an_account_link"],
)
def test_other_types_are_refused(entry: dict[str, Any], description: str) -> None:
    assert refusal(entry) == description


def test_unknown_members_are_reported_before_missing_ones_and_in_sorted_order() -> None:
    assert refusal(standing_funding(directions=OMIT, zeta=1, alpha=2)) == (
        "unknown member alpha is not allowed"
    )


def test_a_granted_entry_is_not_a_request_and_a_request_is_not_granted() -> None:
    assert refusal(granted_standing_funding()) == NOT_IN_A_REQUEST.format(
        "standing_authorization_id"
    )
    assert refusal(standing_funding(link_id=LINK_ID), granted=True) == (
        "standing_authorization_id is required"
    )


# -- the dataclass view ------------------------------------------------------------------------

GRANTED_DETAIL = StandingFundingDetail(
    directions=("deposit_to_wallet",),
    deposit_account=DEPOSIT,
    wallet_account=WALLET,
    max_amount=Amount("JPY", 50000),
    daily_amount=Amount("JPY", 100000),
    valid_days=90,
    link_id=LINK_ID,
    standing_authorization_id=STANDING_ID,
    expires_at=EXPIRES_AT,
)


def test_the_view_reads_a_granted_entry() -> None:
    entry = granted_standing_funding()
    detail = StandingFundingDetail.from_entry(entry)
    assert detail == GRANTED_DETAIL
    assert detail.granted
    assert detail.to_entry() == validate(entry, granted=True)


def test_the_view_reads_a_request() -> None:
    detail = StandingFundingDetail.from_entry(standing_funding())
    assert detail == replace(
        GRANTED_DETAIL, link_id=None, standing_authorization_id=None, expires_at=None
    )
    assert not detail.granted
    assert detail.to_entry() == validate(standing_funding())
    with_link = StandingFundingDetail.from_entry(standing_funding(link_id=LINK_ID))
    assert with_link.link_id == LINK_ID and not with_link.granted


def test_the_view_validates_what_it_is_given() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="must not exceed"):
        replace(GRANTED_DETAIL, max_amount=Amount("JPY", 100001)).to_entry()
    with pytest.raises(InvalidAuthorizationDetails, match="expires_at is required"):
        replace(GRANTED_DETAIL, expires_at=None).to_entry()
    with pytest.raises(InvalidAuthorizationDetails, match="link_id is required"):
        StandingFundingDetail.from_entry(granted_standing_funding(link_id=OMIT))
    with pytest.raises(InvalidAuthorizationDetails, match="directions must not be empty"):
        replace(GRANTED_DETAIL, directions=()).to_entry()


def test_find_picks_the_standing_funding_entry() -> None:
    found = find([link(), funding(), granted_standing_funding()])
    assert found == GRANTED_DETAIL
    assert find([link(), funding()]) is None
    assert find(()) is None
    with pytest.raises(InvalidAuthorizationDetails, match="more than one standing_funding entry"):
        find([standing_funding(), standing_funding(valid_days=1)])
    with pytest.raises(InvalidAuthorizationDetails, match="directions"):
        find([standing_funding(directions=["up"])])


# -- covers: one concrete movement within the per-movement bounds -------------------------------

MOVEMENT = FundingDetail(
    direction="deposit_to_wallet",
    amount=Amount("JPY", 50000),
    deposit_account=DEPOSIT,
    wallet_account=WALLET,
    link_id=LINK_ID,
)
OTHER_ACCOUNT = "acc_otherGGGGGGGGGGGGGGG"


@pytest.mark.parametrize(
    "movement",
    [
        MOVEMENT,
        replace(MOVEMENT, amount=Amount("JPY", 1)),
        replace(MOVEMENT, link_id=None),
        replace(MOVEMENT, standing_authorization_id=STANDING_ID),
        replace(MOVEMENT, link_id=None, standing_authorization_id=STANDING_ID),
    ],
    ids=["at_the_maximum", "one_yen", "no_link_named", "naming_this_authorization", "only_sta"],
)
def test_a_movement_within_the_bounds_is_covered(movement: FundingDetail) -> None:
    assert GRANTED_DETAIL.covers(movement)


@pytest.mark.parametrize(
    "movement",
    [
        replace(MOVEMENT, amount=Amount("JPY", 50001)),
        replace(MOVEMENT, direction="wallet_to_deposit"),
        replace(MOVEMENT, amount=Amount("EUR", 1)),
        replace(MOVEMENT, deposit_account=OTHER_ACCOUNT),
        replace(MOVEMENT, wallet_account=OTHER_ACCOUNT),
        replace(MOVEMENT, deposit_account=WALLET, wallet_account=DEPOSIT),
        replace(MOVEMENT, link_id="lnk_otherHHHHHHHHHHHHHHH"),
        replace(MOVEMENT, standing_authorization_id="sta_otherIIIIIIIIIIIIIII"),
    ],
    ids=[
        "one_yen_above_the_maximum",
        "the_other_direction",
        "another_currency",
        "another_deposit_account",
        "another_wallet",
        "accounts_swapped",
        "another_link",
        "another_standing_authorization",
    ],
)
def test_a_movement_outside_the_bounds_is_not_covered(movement: FundingDetail) -> None:
    assert not GRANTED_DETAIL.covers(movement)


def test_both_directions_cover_both_movements() -> None:
    both = replace(GRANTED_DETAIL, directions=DIRECTIONS)
    assert both.covers(MOVEMENT)
    assert both.covers(replace(MOVEMENT, direction="wallet_to_deposit"))
    sweep_only = replace(GRANTED_DETAIL, directions=("wallet_to_deposit",))
    assert not sweep_only.covers(MOVEMENT)


def test_a_requested_authorization_covers_only_movements_naming_no_link() -> None:
    requested = replace(GRANTED_DETAIL, link_id=None, standing_authorization_id=None)
    assert requested.covers(replace(MOVEMENT, link_id=None))
    assert not requested.covers(MOVEMENT)
    assert not requested.covers(
        replace(MOVEMENT, link_id=None, standing_authorization_id=STANDING_ID)
    )


# -- properties --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(
        ["50000", "12.50", "0", "1e9", DEPOSIT, WALLET, LINK_ID, STANDING_ID, *DIRECTIONS]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=16,
)


def maybe(good: Any) -> st.SearchStrategy[Any]:
    """Mostly the good value, sometimes anything at all."""
    return st.one_of(st.just(good), st.just(good), json_values)


account_ids = st.from_regex(r"acc_[A-Za-z0-9_-]{16,60}", fullmatch=True)
link_ids = st.from_regex(r"lnk_[A-Za-z0-9_-]{16,60}", fullmatch=True)
standing_ids = st.from_regex(r"sta_[A-Za-z0-9_-]{16,60}", fullmatch=True)
amount_texts = st.from_regex(r"(0|[1-9][0-9]{0,16})(\.[0-9]{1,3})?", fullmatch=True)
currencies = st.sampled_from(sorted(MINOR_UNITS))
direction_lists = st.lists(st.sampled_from([*DIRECTIONS, "sweep"]), max_size=3)
amount_objects = st.one_of(
    st.fixed_dictionaries(
        {"currency": maybe("JPY") | currencies, "amount": maybe("1") | amount_texts}
    ),
    json_values,
)

SPOILERS: dict[str, st.SearchStrategy[Any]] = {
    "type": json_values,
    "directions": direction_lists | json_values,
    "deposit_account": account_ids | json_values,
    "wallet_account": st.just(DEPOSIT) | account_ids | json_values,
    "max_amount": amount_objects,
    "daily_amount": amount_objects,
    "valid_days": st.integers(-2, 400) | json_values,
    "link_id": link_ids | json_values,
    "standing_authorization_id": standing_ids | json_values,
    "expires_at": st.integers(-1, MAX_EXPIRES_AT + 1) | json_values,
    "locations": json_values,
    "": json_values,
}


def amount_text(amount: Amount, *, short: bool) -> str:
    """The canonical text, or for a currency with decimals the same amount without trailing
    zeros (``"12.5"`` for 12.50), which the validator normalises."""
    text = str(amount)
    return text.rstrip("0").rstrip(".") if short and "." in text else text


@st.composite
def near_standing(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed request or granted entry (members in any order, amounts in any spelling),
    with zero to two members spoiled, dropped or added."""
    currency = draw(currencies)
    daily = draw(st.integers(1, MAX_MINOR))
    maximum = draw(st.integers(1, daily) | st.just(daily))
    entry: dict[str, Any] = {
        "type": "standing_funding",
        "directions": draw(
            st.sampled_from([["deposit_to_wallet"], ["wallet_to_deposit"], list(DIRECTIONS)])
            | st.just(list(reversed(DIRECTIONS)))
        ),
        "deposit_account": draw(st.just(DEPOSIT) | account_ids),
        "wallet_account": draw(st.just(WALLET) | account_ids),
        "max_amount": {
            "currency": currency,
            "amount": amount_text(Amount(currency, maximum), short=draw(st.booleans())),
        },
        "daily_amount": {
            "currency": currency,
            "amount": amount_text(Amount(currency, daily), short=draw(st.booleans())),
        },
        "valid_days": draw(st.integers(MIN_VALID_DAYS, MAX_VALID_DAYS)),
    }
    if draw(st.booleans()):
        entry["link_id"] = draw(st.just(LINK_ID) | link_ids)
    if draw(st.booleans()):
        entry["link_id"] = draw(st.just(LINK_ID) | link_ids)
        entry["standing_authorization_id"] = draw(st.just(STANDING_ID) | standing_ids)
        entry["expires_at"] = draw(st.integers(1, MAX_EXPIRES_AT))
    for name in draw(st.lists(st.sampled_from(sorted(SPOILERS)), max_size=2)):
        if draw(st.booleans()):
            entry.pop(name, None)
        else:
            entry[name] = draw(SPOILERS[name])
    names = draw(st.permutations(list(entry)))
    return {name: entry[name] for name in names}


@st.composite
def standing_details(draw: st.DrawFn, *, granted: bool | None = None) -> StandingFundingDetail:
    currency = draw(currencies)
    deposit = draw(account_ids)
    wallet = draw(account_ids.filter(lambda value: value != deposit))
    daily = draw(st.integers(min_value=1, max_value=MAX_MINOR))
    is_granted = draw(st.booleans()) if granted is None else granted
    return StandingFundingDetail(
        directions=draw(st.sampled_from([DIRECTIONS[:1], DIRECTIONS[1:], DIRECTIONS])),
        deposit_account=deposit,
        wallet_account=wallet,
        max_amount=Amount(currency, draw(st.integers(min_value=1, max_value=daily))),
        daily_amount=Amount(currency, daily),
        valid_days=draw(st.integers(MIN_VALID_DAYS, MAX_VALID_DAYS)),
        link_id=draw(link_ids) if is_granted else draw(st.none() | link_ids),
        standing_authorization_id=draw(standing_ids) if is_granted else None,
        expires_at=draw(st.integers(1, MAX_EXPIRES_AT)) if is_granted else None,
    )


def outcome(value: Any, *, granted: bool) -> dict[str, Any] | str:
    try:
        return validate(value, granted=granted)
    except InvalidAuthorizationDetails as exc:
        assert len(exc.description) <= 160, exc.description
        return exc.description


@settings(max_examples=300)
@given(near_standing() | json_values.filter(lambda value: isinstance(value, dict)), st.booleans())
def test_nothing_but_invalid_authorization_details_escapes(value: Any, granted: bool) -> None:
    outcome(value, granted=granted)
    with contextlib.suppress(InvalidAuthorizationDetails):
        StandingFundingDetail.from_entry(value)


@settings(max_examples=300)
@given(near_standing(), st.booleans())
def test_normalisation_is_idempotent(value: Any, granted: bool) -> None:
    result = outcome(value, granted=granted)
    if isinstance(result, str):
        return
    assert validate(result, granted=granted) == result
    assert list(validate(result, granted=granted)) == list(result)
    # It survives the JSON round trip the grant store and the token claims put it through.
    again = strict_json.loads(strict_json.dumps_canonical(result))
    assert validate(again, granted=granted) == result
    # A request never holds the service's members; a granted entry always does.
    assert granted == ("standing_authorization_id" in result) == ("expires_at" in result)
    assert not granted or "link_id" in result


@settings(max_examples=300)
@given(standing_details())
def test_from_entry_of_to_entry_is_the_same_detail(detail: StandingFundingDetail) -> None:
    entry = detail.to_entry()
    assert StandingFundingDetail.from_entry(entry) == detail
    assert validate(entry, granted=detail.granted) == entry
    assert list(entry) == (
        GRANTED_MEMBERS if detail.granted else MEMBERS + (["link_id"] if detail.link_id else [])
    )


@settings(max_examples=300)
@given(near_standing())
def test_the_view_of_an_accepted_entry_gives_back_the_normalised_entry(value: Any) -> None:
    for granted in (False, True):
        result = outcome(value, granted=granted)
        if isinstance(result, str):
            continue
        assert StandingFundingDetail.from_entry(value).to_entry() == result


@st.composite
def movements(draw: st.DrawFn, detail: StandingFundingDetail) -> FundingDetail:
    """Movements near the detail's bounds: each member either the detail's own or another."""
    currency = draw(st.sampled_from([detail.max_amount.currency, *sorted(MINOR_UNITS)]))
    limit = detail.max_amount.minor
    minor = draw(
        st.sampled_from([limit, max(1, limit - 1), min(MAX_MINOR, limit + 1), 1, MAX_MINOR])
        | st.integers(1, MAX_MINOR)
    )
    deposit = draw(st.sampled_from([detail.deposit_account, detail.wallet_account]) | account_ids)
    wallet = draw(st.sampled_from([detail.wallet_account, detail.deposit_account]) | account_ids)
    return FundingDetail(
        direction=draw(st.sampled_from(DIRECTIONS)),
        amount=Amount(currency, minor),
        deposit_account=deposit,
        wallet_account=wallet,
        link_id=draw(st.sampled_from([None, detail.link_id, LINK_ID]) | link_ids),
        standing_authorization_id=draw(
            st.sampled_from([None, detail.standing_authorization_id, STANDING_ID]) | standing_ids
        ),
    )


@settings(max_examples=500)
@given(st.data(), standing_details())
def test_covers_is_exactly_the_documented_rule(
    data: st.DataObject, detail: StandingFundingDetail
) -> None:
    movement = data.draw(movements(detail))
    expected = (
        movement.deposit_account == detail.deposit_account
        and movement.wallet_account == detail.wallet_account
        and movement.direction in detail.directions
        and movement.amount.currency == detail.max_amount.currency
        and movement.amount.minor <= detail.max_amount.minor
        and movement.link_id in (None, detail.link_id)
        and movement.standing_authorization_id in (None, detail.standing_authorization_id)
    )
    assert detail.covers(movement) == expected


@settings(max_examples=300)
@given(st.data(), standing_details(granted=True))
def test_a_movement_above_max_amount_is_never_covered(
    data: st.DataObject, detail: StandingFundingDetail
) -> None:
    movement = data.draw(movements(detail))
    above = detail.max_amount.minor + data.draw(st.integers(1, 10**6))
    if above > MAX_MINOR:
        return
    assert not detail.covers(replace(movement, amount=Amount(detail.max_amount.currency, above)))


@settings(max_examples=300)
@given(st.data(), standing_details(granted=True))
def test_changing_one_bound_member_uncovers_a_covered_movement(
    data: st.DataObject, detail: StandingFundingDetail
) -> None:
    covered = FundingDetail(
        direction=data.draw(st.sampled_from(detail.directions)),
        amount=Amount(
            detail.max_amount.currency, data.draw(st.integers(1, detail.max_amount.minor))
        ),
        deposit_account=detail.deposit_account,
        wallet_account=detail.wallet_account,
        link_id=data.draw(st.sampled_from([None, detail.link_id])),
        standing_authorization_id=data.draw(
            st.sampled_from([None, detail.standing_authorization_id])
        ),
    )
    assert detail.covers(covered)
    other_currency = data.draw(currencies.filter(lambda c: c != detail.max_amount.currency))
    other_account = data.draw(
        account_ids.filter(lambda a: a not in (detail.deposit_account, detail.wallet_account))
    )
    other_link = data.draw(link_ids.filter(lambda value: value != detail.link_id))
    other_standing = data.draw(
        standing_ids.filter(lambda value: value != detail.standing_authorization_id)
    )
    uncovered = [
        replace(covered, amount=Amount(other_currency, 1)),
        replace(covered, deposit_account=other_account),
        replace(covered, wallet_account=other_account),
        replace(covered, link_id=other_link),
        replace(covered, standing_authorization_id=other_standing),
    ]
    if detail.directions != DIRECTIONS:
        other = next(d for d in DIRECTIONS if d not in detail.directions)
        uncovered.append(replace(covered, direction=other))
    for movement in uncovered:
        assert not detail.covers(movement), movement


MARKER = "Zq9-marker-Zq9"


@settings(max_examples=300)
@given(
    member=st.sampled_from(
        [
            "directions",
            "deposit_account",
            "wallet_account",
            "max_amount",
            "daily_amount",
            "valid_days",
            "link_id",
            "standing_authorization_id",
            "expires_at",
        ]
    ),
    prefix=st.sampled_from(["", "acc_", "lnk_", "sta_", "1", "deposit_to_wallet"]),
    shape=st.sampled_from(["text", "in_a_list", "as_amount", "as_currency"]),
    granted=st.booleans(),
)
def test_no_client_value_is_repeated_in_a_description(
    member: str, prefix: str, shape: str, granted: bool
) -> None:
    value: Any = prefix + MARKER
    if shape == "in_a_list":
        value = [value]
    elif shape == "as_amount":
        value = {"currency": "JPY", "amount": value}
    elif shape == "as_currency":
        value = {"currency": value, "amount": "1"}
    entry = (granted_standing_funding if granted else standing_funding)(**{member: value})
    description = refusal(entry, granted=granted)
    assert MARKER not in description
    assert "marker" not in description.lower()


# -- the documentation -------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "AUTHORIZATION-DETAILS.md"


def test_every_standing_funding_description_is_documented() -> None:
    """docs/AUTHORIZATION-DETAILS.md §6 lists the member rules of this type word for word (the
    generic ones — required, amount rules — are listed once for every type)."""
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    specific = {
        description
        for _, _, description in COMMON_REFUSALS + REQUEST_ONLY_REFUSALS + GRANTED_ONLY_REFUSALS
        if description.startswith(
            (
                "directions",
                "valid_days",
                "standing_authorization_id",
                "max_amount must not",
                "max_amount and",
            )
        )
        and "required" not in description
    }
    assert len(specific) >= 10
    for description in sorted(specific):
        assert f"`{description}`" in text, description
    assert f"`{NOT_IN_A_REQUEST.format('standing_authorization_id')}`" in text
    assert "(and the same for `expires_at`)" in text
