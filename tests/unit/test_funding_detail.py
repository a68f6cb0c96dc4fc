"""The ``funding`` authorization_details type (issue 12, trustanchor/oauth/funding.py): every
refusal with its exact description, the normalised form, the dataclass view and its debited /
credited accounts, and properties (nothing but invalid_authorization_details escapes;
normalisation is idempotent and survives JSON; ``from_entry(to_entry(x)) == x``; no client value
is repeated in a description).

The validator is called directly: registering the type (oauth/detail_types.py) is done together
with its policy decision, and the request-level rules (entry index prefix, one entry per type)
are the registry's, tested in test_authorization_details_types.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.details import (
    DEPOSIT,
    LINK_ID,
    OMIT,
    STANDING_ID,
    WALLET,
    funding,
    link,
    standing_funding,
    transfer,
)

from trustanchor import strict_json
from trustanchor.domain.money import MAX_MINOR, MINOR_UNITS, Amount
from trustanchor.oauth import funding as funding_type
from trustanchor.oauth.errors import InvalidAuthorizationDetails
from trustanchor.oauth.funding import DIRECTIONS, FundingDetail, find, validate

BAD_AMOUNT = (
    "instructed_amount.amount must be a string of decimal digits with an optional fraction "
    "(no sign, exponent, spaces or leading zeros)"
)
BAD_DIRECTION = 'direction must be "deposit_to_wallet" or "wallet_to_deposit"'
BAD_LINK_ID = "link_id must be a link id (lnk_…)"
STANDING_ID_STRING = "standing_authorization_id must be a string"
BAD_STANDING_ID = "standing_authorization_id must be a standing authorization id (sta_…)"


def refusal(entry: Any) -> str:
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        validate(entry)
    assert caught.value.error == "invalid_authorization_details"
    return caught.value.description


# -- well-formed entries -------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_well_formed_funding_entry_is_returned_normalised(direction: str) -> None:
    entry = validate(funding(currency="EUR", amount="12.5", direction=direction))
    assert entry == {
        "type": "funding",
        "direction": direction,
        "instructed_amount": {"currency": "EUR", "amount": "12.50"},
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
        "link_id": LINK_ID,
    }
    assert list(entry) == [
        "type",
        "direction",
        "instructed_amount",
        "deposit_account",
        "wallet_account",
        "link_id",
    ]


def test_members_sent_in_another_order_come_back_in_the_fixed_order() -> None:
    reversed_entry = dict(reversed(list(funding().items())))
    assert list(validate(reversed_entry)) == list(validate(funding()))


def test_the_link_id_is_optional_in_a_request() -> None:
    entry = validate(funding(link_id=OMIT))
    assert "link_id" not in entry
    assert list(entry) == [
        "type",
        "direction",
        "instructed_amount",
        "deposit_account",
        "wallet_account",
    ]


def test_a_movement_token_entry_names_its_standing_authorization_last() -> None:
    entry = validate(funding(standing_authorization_id=STANDING_ID))
    assert entry["standing_authorization_id"] == STANDING_ID
    assert list(entry) == [
        "type",
        "direction",
        "instructed_amount",
        "deposit_account",
        "wallet_account",
        "link_id",
        "standing_authorization_id",
    ]
    detail = FundingDetail.from_entry(entry)
    assert detail.standing_authorization_id == STANDING_ID
    assert detail.to_entry() == entry
    assert FundingDetail.from_entry(funding()).standing_authorization_id is None
    assert "standing_authorization_id" not in FundingDetail.from_entry(funding()).to_entry()


def test_the_directions_are_exactly_the_two_movements() -> None:
    assert DIRECTIONS == ("deposit_to_wallet", "wallet_to_deposit")
    assert funding_type.TYPE == "funding"


# -- refusals, each with its exact description ---------------------------------------------------

FUNDING_REFUSALS: list[tuple[str, Any, str]] = [
    ("type_other", funding(type="value_transfer"), "type must be 'funding'"),
    ("type_missing", funding(type=OMIT), "type is required"),
    ("direction_missing", funding(direction=OMIT), "direction is required"),
    ("direction_number", funding(direction=1), "direction must be a string"),
    ("direction_null", funding(direction=None), "direction must be a string"),
    ("direction_array", funding(direction=["deposit_to_wallet"]), "direction must be a string"),
    ("direction_unknown", funding(direction="sweep"), BAD_DIRECTION),
    ("direction_upper_case", funding(direction="DEPOSIT_TO_WALLET"), BAD_DIRECTION),
    ("direction_trailing_space", funding(direction="deposit_to_wallet "), BAD_DIRECTION),
    ("direction_empty", funding(direction=""), BAD_DIRECTION),
    ("amount_as_json_number", funding(amount=10000), "instructed_amount.amount must be a string"),
    ("amount_nan", funding(amount=float("nan")), "instructed_amount.amount must be a string"),
    ("amount_null", funding(amount=None), "instructed_amount.amount must be a string"),
    ("amount_exponent", funding(amount="1e4"), BAD_AMOUNT),
    ("amount_negative", funding(amount="-10000"), BAD_AMOUNT),
    ("amount_leading_zero", funding(amount="010000"), BAD_AMOUNT),
    ("amount_thousands_separator", funding(amount="10,000"), BAD_AMOUNT),
    ("amount_trailing_newline", funding(amount="10000\n"), BAD_AMOUNT),
    ("amount_fullwidth_digits", funding(amount="１００００"), BAD_AMOUNT),
    ("amount_empty", funding(amount=""), BAD_AMOUNT),
    ("amount_zero", funding(amount="0"), "instructed_amount.amount must be greater than zero"),
    (
        "jpy_with_decimals",
        funding(amount="1.5"),
        "instructed_amount.amount has more decimals than JPY allows (0)",
    ),
    (
        "eur_with_three_decimals",
        funding(currency="EUR", amount="1.005"),
        "instructed_amount.amount has more decimals than EUR allows (2)",
    ),
    (
        "amount_beyond_the_range",
        funding(amount=str(MAX_MINOR + 1)),
        "instructed_amount.amount is out of range",
    ),
    (
        "currency_lower_case",
        funding(currency="jpy"),
        "instructed_amount.currency must be a supported ISO 4217 code",
    ),
    ("currency_missing", funding(currency=OMIT), "instructed_amount.currency is required"),
    ("amount_missing", funding(amount=OMIT), "instructed_amount.amount is required"),
    (
        "instructed_amount_extra_member",
        funding(instructed_amount={"currency": "JPY", "amount": "1", "value": "1"}),
        "unknown member instructed_amount.value is not allowed",
    ),
    (
        "instructed_amount_as_string",
        funding(instructed_amount="10000 JPY"),
        "instructed_amount must be an object",
    ),
    ("instructed_amount_missing", funding(instructed_amount=OMIT), "instructed_amount is required"),
    ("deposit_missing", funding(deposit_account=OMIT), "deposit_account is required"),
    ("wallet_missing", funding(wallet_account=OMIT), "wallet_account is required"),
    ("deposit_as_number", funding(deposit_account=12), "deposit_account must be a string"),
    (
        "deposit_not_an_account_id",
        funding(deposit_account="DE89370400440532013000"),
        "deposit_account must be an account id (acc_…)",
    ),
    (
        "wallet_id_too_short",
        funding(wallet_account="acc_" + "A" * 15),
        "wallet_account must be an account id (acc_…)",
    ),
    (
        "wallet_id_with_newline",
        funding(wallet_account=WALLET + "\n"),
        "wallet_account must be an account id (acc_…)",
    ),
    (
        "deposit_equals_wallet",
        funding(wallet_account=DEPOSIT),
        "deposit_account and wallet_account must differ",
    ),
    ("link_id_null", funding(link_id=None), "link_id must be a string"),
    ("link_id_number", funding(link_id=7), "link_id must be a string"),
    ("link_id_empty", funding(link_id=""), BAD_LINK_ID),
    ("link_id_an_account_id", funding(link_id=DEPOSIT), BAD_LINK_ID),
    ("link_id_too_short", funding(link_id="lnk_" + "A" * 15), BAD_LINK_ID),
    ("link_id_too_long", funding(link_id="lnk_" + "A" * 61), BAD_LINK_ID),
    ("link_id_with_padding", funding(link_id="lnk_" + "A" * 16 + "="), BAD_LINK_ID),
    ("link_id_with_newline", funding(link_id=LINK_ID + "\n"), BAD_LINK_ID),
    ("standing_id_null", funding(standing_authorization_id=None), STANDING_ID_STRING),
    ("standing_id_number", funding(standing_authorization_id=1), STANDING_ID_STRING),
    ("standing_id_empty", funding(standing_authorization_id=""), BAD_STANDING_ID),
    ("standing_id_a_link_id", funding(standing_authorization_id=LINK_ID), BAD_STANDING_ID),
    (
        "standing_id_too_short",
        funding(standing_authorization_id="sta_" + "A" * 15),
        BAD_STANDING_ID,
    ),
    ("standing_id_too_long", funding(standing_authorization_id="sta_" + "A" * 61), BAD_STANDING_ID),
    (
        "standing_id_with_newline",
        funding(standing_authorization_id=STANDING_ID + "\n"),
        BAD_STANDING_ID,
    ),
    (
        "standing_id_with_a_dot",
        funding(standing_authorization_id="sta_" + "A" * 16 + "."),
        BAD_STANDING_ID,
    ),
    ("a_standing_member", funding(expires_at=1), "unknown member expires_at is not allowed"),
    (
        "a_standing_funding",
        standing_funding(),
        "unknown member daily_amount is not allowed",
    ),
    ("unknown_member", funding(note="x"), "unknown member note is not allowed"),
    (
        "a_transfer_member",
        funding(debtor_account=DEPOSIT),
        "unknown member debtor_account is not allowed",
    ),
    ("rfc9396_actions", funding(actions=["fund"]), "unknown member actions is not allowed"),
    (
        "rfc9396_locations",
        funding(locations=["https://ledger.example"]),
        "unknown member locations is not allowed",
    ),
    ("rfc9396_privileges", funding(privileges=["x"]), "unknown member privileges is not allowed"),
    (
        "long_unknown_member",
        funding(**{"x" * 33: 1}),
        "an unknown member is not allowed",
    ),
    ("a_value_transfer", transfer(), "unknown member creditor_account is not allowed"),
    ("an_account_link", link(), "unknown member actions is not allowed"),
]


@pytest.mark.parametrize(
    ("entry", "description"),
    [pytest.param(entry, text, id=case) for case, entry, text in FUNDING_REFUSALS],
)
def test_malformed_funding_is_refused_naming_the_member(entry: Any, description: str) -> None:
    assert refusal(entry) == description


def test_unknown_members_are_reported_before_missing_ones_and_in_sorted_order() -> None:
    entry = funding(direction=OMIT, zeta=1, alpha=2)
    assert refusal(entry) == "unknown member alpha is not allowed"


# -- the dataclass view ------------------------------------------------------------------------


def test_the_view_reads_a_normalised_entry() -> None:
    entry = validate(funding(currency="EUR", amount="12.5", direction="wallet_to_deposit"))
    detail = FundingDetail.from_entry(entry)
    assert detail == FundingDetail(
        direction="wallet_to_deposit",
        amount=Amount("EUR", 1250),
        deposit_account=DEPOSIT,
        wallet_account=WALLET,
        link_id=LINK_ID,
    )
    assert detail.to_entry() == entry


def test_the_view_without_link_id() -> None:
    detail = FundingDetail.from_entry(funding(link_id=OMIT))
    assert detail.link_id is None
    assert "link_id" not in detail.to_entry()


def test_debtor_and_creditor_follow_the_direction() -> None:
    top_up = FundingDetail.from_entry(funding(direction="deposit_to_wallet"))
    assert (top_up.debtor_account, top_up.creditor_account) == (DEPOSIT, WALLET)
    sweep = FundingDetail.from_entry(funding(direction="wallet_to_deposit"))
    assert (sweep.debtor_account, sweep.creditor_account) == (WALLET, DEPOSIT)


def test_the_view_validates_what_it_is_given() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="must differ"):
        FundingDetail.from_entry(funding(wallet_account=DEPOSIT))
    with pytest.raises(InvalidAuthorizationDetails, match="link_id must be a link id"):
        FundingDetail("deposit_to_wallet", Amount("JPY", 1), DEPOSIT, WALLET, "lnk_x").to_entry()


def test_find_picks_the_funding_entry() -> None:
    details = [link(), transfer(), funding()]
    found = find(details)
    assert found is not None and found.amount == Amount("JPY", 10000)
    assert found.link_id == LINK_ID
    assert find([link(), transfer()]) is None
    assert find(()) is None


def test_find_refuses_two_funding_entries() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="more than one funding entry"):
        find([funding(), funding(amount="1")])


def test_find_validates_the_entry_it_picks() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="direction"):
        find([funding(direction="sideways")])


# -- properties --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(
        ["10000", "12.50", "0", "1e9", DEPOSIT, WALLET, LINK_ID, STANDING_ID, *DIRECTIONS]
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

near_fundings = st.fixed_dictionaries(
    {
        "type": maybe("funding"),
        "direction": maybe("deposit_to_wallet") | st.sampled_from(DIRECTIONS),
        "instructed_amount": st.one_of(
            st.fixed_dictionaries(
                {"currency": maybe("JPY") | currencies, "amount": maybe("1") | amount_texts}
            ),
            json_values,
        ),
        "deposit_account": maybe(DEPOSIT) | account_ids,
        "wallet_account": maybe(WALLET) | account_ids,
    },
    optional={
        "link_id": maybe(LINK_ID) | link_ids,
        "standing_authorization_id": maybe(STANDING_ID) | standing_ids,
        "locations": json_values,
        "": json_values,
    },
)


@st.composite
def funding_details(draw: st.DrawFn) -> FundingDetail:
    currency = draw(currencies)
    deposit = draw(account_ids)
    wallet = draw(account_ids.filter(lambda value: value != deposit))
    return FundingDetail(
        direction=draw(st.sampled_from(DIRECTIONS)),
        amount=Amount(currency, draw(st.integers(min_value=1, max_value=MAX_MINOR))),
        deposit_account=deposit,
        wallet_account=wallet,
        link_id=draw(st.none() | link_ids),
        standing_authorization_id=draw(st.none() | standing_ids),
    )


def outcome(value: Any) -> dict[str, Any] | str:
    try:
        return validate(value)
    except InvalidAuthorizationDetails as exc:
        assert len(exc.description) <= 160, exc.description
        return exc.description


@settings(max_examples=300)
@given(near_fundings | json_values.filter(lambda value: isinstance(value, dict)))
def test_nothing_but_invalid_authorization_details_escapes(value: Any) -> None:
    outcome(value)


@settings(max_examples=300)
@given(near_fundings)
def test_normalisation_is_idempotent(value: Any) -> None:
    result = outcome(value)
    if isinstance(result, str):
        return
    assert validate(result) == result
    assert list(validate(result)) == list(result)
    # It survives the JSON round trip the grant store and the token claims put it through.
    assert validate(strict_json.loads(strict_json.dumps_canonical(result))) == result


@settings(max_examples=300)
@given(funding_details())
def test_from_entry_of_to_entry_is_the_same_detail(detail: FundingDetail) -> None:
    entry = detail.to_entry()
    assert FundingDetail.from_entry(entry) == detail
    assert validate(entry) == entry
    assert {detail.debtor_account, detail.creditor_account} == {
        detail.deposit_account,
        detail.wallet_account,
    }
    assert (detail.debtor_account == detail.deposit_account) == (
        detail.direction == "deposit_to_wallet"
    )


@settings(max_examples=300)
@given(near_fundings)
def test_the_view_of_an_accepted_entry_gives_back_the_normalised_entry(value: Any) -> None:
    result = outcome(value)
    if isinstance(result, str):
        return
    assert FundingDetail.from_entry(value).to_entry() == result


MARKER = "Zq9-marker-Zq9"


@settings(max_examples=300)
@given(
    member=st.sampled_from(
        [
            "direction",
            "amount",
            "currency",
            "deposit_account",
            "wallet_account",
            "link_id",
            "standing_authorization_id",
        ]
    ),
    prefix=st.sampled_from(["", "acc_", "lnk_", "sta_", "1", "deposit_to_wallet"]),
)
def test_no_client_value_is_repeated_in_a_description(member: str, prefix: str) -> None:
    entry = funding(**{member: prefix + MARKER})
    description = refusal(entry)
    assert MARKER not in description
    assert "marker" not in description.lower()
