"""The ``account_link`` and ``value_transfer`` authorization_details types (issue 4): every rule
with its exact description, the structural checks around them, the registry, the dataclass
views, and properties over arbitrary JSON (nothing but invalid_authorization_details ever
escapes; normalisation is idempotent; amounts round-trip)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.details import CREDITOR, DEBTOR, DEPOSIT, OMIT, WALLET, link, transfer

from trustanchor import strict_json
from trustanchor.domain.money import MAX_MINOR, MINOR_UNITS, Amount, parse_amount
from trustanchor.oauth import account_link, value_transfer
from trustanchor.oauth.account_link import AccountLinkDetail
from trustanchor.oauth.authorization_details import (
    is_one_time,
    is_subset,
    parse_authorization_details,
    parse_operations,
    supported_types,
    validate_authorization_details,
)
from trustanchor.oauth.errors import InvalidAuthorizationDetails
from trustanchor.oauth.value_transfer import ValueTransferDetail
from trustanchor.services.operation_kinds import KINDS

BOTH = ("account_link", "value_transfer")
MAX_ENTRIES = 16
BAD_AMOUNT = (
    "instructed_amount.amount must be a string of decimal digits with an optional fraction "
    "(no sign, exponent, spaces or leading zeros)"
)
BAD_REFERENCE = (
    "remittance_reference must be 1 to 35 characters of A-Z a-z 0-9 / ? : ( ) . , ' + - and space"
)


def validate(value: Any, allowed: tuple[str, ...] = BOTH) -> tuple[dict[str, Any], ...]:
    return validate_authorization_details(value, allowed_types=allowed, max_entries=MAX_ENTRIES)


def parse(raw: str, allowed: tuple[str, ...] = BOTH) -> tuple[dict[str, Any], ...]:
    return parse_authorization_details(
        raw, allowed_types=allowed, max_entries=MAX_ENTRIES, max_depth=8
    )


def refusal(value: Any, allowed: tuple[str, ...] = BOTH) -> str:
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        validate(value, allowed)
    assert caught.value.error == "invalid_authorization_details"
    return caught.value.description


# -- well-formed entries -------------------------------------------------------------------------


def test_a_well_formed_value_transfer_is_returned_normalised() -> None:
    (entry,) = validate([transfer(currency="EUR", amount="12.5")])
    assert entry == {
        "type": "value_transfer",
        "instructed_amount": {"currency": "EUR", "amount": "12.50"},
        "debtor_account": DEBTOR,
        "creditor_account": CREDITOR,
        "remittance_reference": "INV-2026-0001",
    }
    assert list(entry) == [
        "type",
        "instructed_amount",
        "debtor_account",
        "creditor_account",
        "remittance_reference",
    ]


def test_the_remittance_reference_is_optional() -> None:
    (entry,) = validate([transfer(remittance_reference=OMIT)])
    assert "remittance_reference" not in entry


@pytest.mark.parametrize("action", ["link", "unlink"])
def test_a_well_formed_account_link_is_returned_normalised(action: str) -> None:
    (entry,) = validate([link(actions=[action])])
    assert entry == {
        "type": "account_link",
        "actions": [action],
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
    }


def test_one_entry_of_each_type_in_one_request_is_accepted() -> None:
    entries = validate([link(), transfer()])
    assert [e["type"] for e in entries] == ["account_link", "value_transfer"]


@pytest.mark.parametrize(
    ("currency", "amount", "canonical"),
    [
        ("JPY", "5000", "5000"),
        ("JPY", "1000000000000000", "1000000000000000"),
        ("KRW", "1", "1"),
        ("EUR", "12", "12.00"),
        ("EUR", "12.5", "12.50"),
        ("EUR", "0.01", "0.01"),
        ("USD", "0.1", "0.10"),
        ("USD", "10000000000000.00", "10000000000000.00"),
    ],
)
def test_amounts_are_normalised_to_the_currencys_canonical_text(
    currency: str, amount: str, canonical: str
) -> None:
    (entry,) = validate([transfer(currency=currency, amount=amount)])
    assert entry["instructed_amount"] == {"currency": currency, "amount": canonical}


# -- value_transfer refusals, each with its exact description -------------------------------------

VALUE_TRANSFER_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("amount_as_json_number", transfer(amount=5000), "instructed_amount.amount must be a string"),
    ("amount_as_float", transfer(amount=50.5), "instructed_amount.amount must be a string"),
    ("amount_nan", transfer(amount=float("nan")), "instructed_amount.amount must be a string"),
    ("amount_infinity", transfer(amount=float("inf")), "instructed_amount.amount must be a string"),
    ("amount_true", transfer(amount=True), "instructed_amount.amount must be a string"),
    ("amount_null", transfer(amount=None), "instructed_amount.amount must be a string"),
    ("amount_exponent", transfer(amount="1e9"), BAD_AMOUNT),
    ("amount_huge_exponent", transfer(amount="1E999999"), BAD_AMOUNT),
    ("amount_nan_text", transfer(amount="NaN"), BAD_AMOUNT),
    ("amount_infinity_text", transfer(amount="Infinity"), BAD_AMOUNT),
    ("amount_negative", transfer(amount="-5000"), BAD_AMOUNT),
    ("amount_plus_sign", transfer(amount="+5000"), BAD_AMOUNT),
    ("amount_leading_space", transfer(amount=" 5000"), BAD_AMOUNT),
    ("amount_trailing_newline", transfer(amount="5000\n"), BAD_AMOUNT),
    ("amount_leading_zero", transfer(amount="05000"), BAD_AMOUNT),
    ("amount_thousands_separator", transfer(amount="5,000"), BAD_AMOUNT),
    ("amount_fullwidth_digits", transfer(amount="５０００"), BAD_AMOUNT),
    ("amount_trailing_dot", transfer(currency="EUR", amount="5."), BAD_AMOUNT),
    ("amount_leading_dot", transfer(currency="EUR", amount=".5"), BAD_AMOUNT),
    ("amount_hex", transfer(amount="0x10"), BAD_AMOUNT),
    ("amount_empty", transfer(amount=""), BAD_AMOUNT),
    ("amount_zero", transfer(amount="0"), "instructed_amount.amount must be greater than zero"),
    (
        "amount_zero_cents",
        transfer(currency="EUR", amount="0.00"),
        "instructed_amount.amount must be greater than zero",
    ),
    (
        "jpy_with_decimals",
        transfer(currency="JPY", amount="1.5"),
        "instructed_amount.amount has more decimals than JPY allows (0)",
    ),
    (
        "jpy_with_zero_decimals",
        transfer(currency="JPY", amount="1.0"),
        "instructed_amount.amount has more decimals than JPY allows (0)",
    ),
    (
        "eur_with_three_decimals",
        transfer(currency="EUR", amount="1.005"),
        "instructed_amount.amount has more decimals than EUR allows (2)",
    ),
    (
        "amount_beyond_the_range",
        transfer(amount="1000000000000001"),
        "instructed_amount.amount is out of range",
    ),
    (
        "currency_lower_case",
        transfer(currency="jpy"),
        "instructed_amount.currency must be a supported ISO 4217 code",
    ),
    (
        "currency_unknown",
        transfer(currency="XXX"),
        "instructed_amount.currency must be a supported ISO 4217 code",
    ),
    (
        "currency_numeric_code",
        transfer(currency=392),
        "instructed_amount.currency must be a supported ISO 4217 code",
    ),
    ("currency_missing", transfer(currency=OMIT), "instructed_amount.currency is required"),
    ("amount_missing", transfer(amount=OMIT), "instructed_amount.amount is required"),
    (
        "instructed_amount_extra_member",
        transfer(instructed_amount={"currency": "JPY", "amount": "1", "value": "1"}),
        "unknown member instructed_amount.value is not allowed",
    ),
    (
        "instructed_amount_as_string",
        transfer(instructed_amount="5000 JPY"),
        "instructed_amount must be an object",
    ),
    (
        "instructed_amount_missing",
        transfer(instructed_amount=OMIT),
        "instructed_amount is required",
    ),
    ("debtor_missing", transfer(debtor_account=OMIT), "debtor_account is required"),
    ("creditor_missing", transfer(creditor_account=OMIT), "creditor_account is required"),
    ("debtor_as_number", transfer(debtor_account=12), "debtor_account must be a string"),
    (
        "debtor_not_an_account_id",
        transfer(debtor_account="DE89370400440532013000"),
        "debtor_account must be an account id (acc_…)",
    ),
    (
        "creditor_id_too_short",
        transfer(creditor_account="acc_" + "A" * 15),
        "creditor_account must be an account id (acc_…)",
    ),
    (
        "creditor_id_too_long",
        transfer(creditor_account="acc_" + "A" * 61),
        "creditor_account must be an account id (acc_…)",
    ),
    (
        "creditor_id_with_padding",
        transfer(creditor_account="acc_" + "A" * 16 + "="),
        "creditor_account must be an account id (acc_…)",
    ),
    (
        "debtor_equals_creditor",
        transfer(creditor_account=DEBTOR),
        "debtor_account and creditor_account must differ",
    ),
    ("remittance_empty", transfer(remittance_reference=""), BAD_REFERENCE),
    ("remittance_36_characters", transfer(remittance_reference="A" * 36), BAD_REFERENCE),
    ("remittance_hash_sign", transfer(remittance_reference="INV#1"), BAD_REFERENCE),
    ("remittance_newline", transfer(remittance_reference="INV\n1"), BAD_REFERENCE),
    ("remittance_non_ascii", transfer(remittance_reference="請求書1"), BAD_REFERENCE),
    (
        "remittance_null",
        transfer(remittance_reference=None),
        "remittance_reference must be a string",
    ),
    ("unknown_member", transfer(note="x"), "unknown member note is not allowed"),
    (
        "rfc9396_locations",
        transfer(locations=["https://ledger.example"]),
        "unknown member locations is not allowed",
    ),
    ("rfc9396_actions", transfer(actions=["pay"]), "unknown member actions is not allowed"),
    ("rfc9396_datatypes", transfer(datatypes=["x"]), "unknown member datatypes is not allowed"),
    ("rfc9396_identifier", transfer(identifier="x"), "unknown member identifier is not allowed"),
    ("rfc9396_privileges", transfer(privileges=["x"]), "unknown member privileges is not allowed"),
]


@pytest.mark.parametrize(
    ("entry", "description"),
    [pytest.param(entry, text, id=case) for case, entry, text in VALUE_TRANSFER_REFUSALS],
)
def test_malformed_value_transfer_is_refused_naming_the_member(
    entry: dict[str, Any], description: str
) -> None:
    assert refusal([entry]) == f"entry 0 (value_transfer): {description}"


# -- account_link refusals ----------------------------------------------------------------------

ACCOUNT_LINK_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("actions_as_string", link(actions="link"), "actions must be an array"),
    ("actions_empty", link(actions=[]), "actions must hold exactly one action"),
    ("two_actions", link(actions=["link", "unlink"]), "actions must hold exactly one action"),
    ("same_action_twice", link(actions=["link", "link"]), "actions must hold exactly one action"),
    ("unknown_action", link(actions=["delete"]), 'actions[0] must be "link" or "unlink"'),
    ("action_upper_case", link(actions=["LINK"]), 'actions[0] must be "link" or "unlink"'),
    ("action_as_number", link(actions=[1]), 'actions[0] must be "link" or "unlink"'),
    ("actions_missing", link(actions=OMIT), "actions is required"),
    ("deposit_missing", link(deposit_account=OMIT), "deposit_account is required"),
    ("wallet_missing", link(wallet_account=OMIT), "wallet_account is required"),
    ("wallet_as_object", link(wallet_account={"id": WALLET}), "wallet_account must be a string"),
    (
        "deposit_not_an_account_id",
        link(deposit_account="1234567"),
        "deposit_account must be an account id (acc_…)",
    ),
    (
        "deposit_equals_wallet",
        link(wallet_account=DEPOSIT),
        "deposit_account and wallet_account must differ",
    ),
    ("rfc9396_privileges", link(privileges=["x"]), "unknown member privileges is not allowed"),
    ("unknown_member", link(holder="me"), "unknown member holder is not allowed"),
]


@pytest.mark.parametrize(
    ("entry", "description"),
    [pytest.param(entry, text, id=case) for case, entry, text in ACCOUNT_LINK_REFUSALS],
)
def test_malformed_account_link_is_refused_naming_the_member(
    entry: dict[str, Any], description: str
) -> None:
    assert refusal([entry]) == f"entry 0 (account_link): {description}"


def test_unknown_members_are_reported_before_missing_ones_and_in_sorted_order() -> None:
    entry = {"type": "account_link", "zeta": 1, "alpha": 2}
    assert refusal([entry]) == "entry 0 (account_link): unknown member alpha is not allowed"


# -- structure around the entries --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "description"),
    [
        pytest.param(transfer(), "authorization_details must be a JSON array", id="not_an_array"),
        pytest.param("[]", "authorization_details must be a JSON array", id="a_string"),
        pytest.param([], "authorization_details must not be empty", id="empty_array"),
        pytest.param(
            [{}] * (MAX_ENTRIES + 1), "too many authorization_details entries", id="too_many"
        ),
        pytest.param([transfer(), "x"], "entry 1 is not an object", id="member_not_an_object"),
        pytest.param([[transfer()]], "entry 0 is not an object", id="nested_array"),
        pytest.param([{"actions": ["link"]}], "entry 0 has no type", id="type_missing"),
        pytest.param([{"type": ""}], "entry 0 has no type", id="type_empty"),
        pytest.param([{"type": 7}], "entry 0 has no type", id="type_not_a_string"),
        pytest.param(
            [{"type": "payment_initiation"}],
            "entry 0: the type is not supported",
            id="unsupported_type",
        ),
        pytest.param(
            [transfer(), transfer(amount="1")],
            "entry 1: at most one value_transfer entry is allowed per request",
            id="two_transfers",
        ),
        pytest.param(
            [link(), transfer(), link(actions=["unlink"])],
            "entry 2: at most one account_link entry is allowed per request",
            id="two_links",
        ),
        pytest.param(
            [transfer(), transfer()],
            "entry 1: at most one value_transfer entry is allowed per request",
            id="the_same_transfer_twice",
        ),
    ],
)
def test_structural_refusals(value: Any, description: str) -> None:
    assert refusal(value) == description


def test_a_type_the_client_is_not_registered_for_is_refused() -> None:
    description = refusal([transfer()], allowed=("account_link",))
    assert description == "entry 0: type value_transfer is not allowed for this client"


def test_a_client_registered_for_no_type_gets_none() -> None:
    assert refusal([link()], allowed=()) == (
        "entry 0: type account_link is not allowed for this client"
    )


def test_an_unsupported_type_is_not_repeated_back() -> None:
    description = refusal([{"type": "<script>" + "x" * 5000}])
    assert description == "entry 0: the type is not supported"


def test_a_long_unknown_member_name_is_not_repeated_back() -> None:
    name = "x" * 33
    description = refusal([transfer(**{name: 1})])
    assert description == "entry 0 (value_transfer): an unknown member is not allowed"
    nested = transfer(instructed_amount={"currency": "JPY", "amount": "1", "a-b": 1})
    assert refusal([nested]) == (
        "entry 0 (value_transfer): an unknown member of instructed_amount is not allowed"
    )


def test_a_duplicate_key_is_refused_naming_the_member() -> None:
    raw = (
        '[{"type":"value_transfer","instructed_amount":{"currency":"JPY","amount":"1",'
        f'"amount":"9999"}},"debtor_account":"{DEBTOR}","creditor_account":"{CREDITOR}"}}]'
    )
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        parse(raw)
    assert caught.value.description == (
        "authorization_details is not valid JSON: duplicate member 'amount'"
    )


def test_a_duplicate_key_with_a_long_name_is_clipped() -> None:
    raw = '[{"' + "k" * 5000 + '":1,"' + "k" * 5000 + '":2}]'
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        parse_authorization_details(
            raw, allowed_types=BOTH, max_entries=MAX_ENTRIES, max_depth=8, max_bytes=20000
        )
    assert caught.value.description.startswith("authorization_details is not valid JSON: dupl")
    assert len(caught.value.description) < 150


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('[{"type":"value_transfer","instructed_amount":{"amount":NaN}}]', id="nan"),
        pytest.param('[{"type":"value_transfer","x":Infinity}]', id="infinity"),
        pytest.param('[{"type":"value_transfer","x":' + "[" * 20 + "]" * 20 + "}]", id="deep"),
        pytest.param("[{", id="truncated"),
    ],
)
def test_json_the_strict_parser_refuses_is_invalid_authorization_details(raw: str) -> None:
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        parse(raw)
    assert caught.value.description.startswith("authorization_details is not valid JSON: ")


def test_an_amount_with_a_huge_json_exponent_is_refused_as_not_a_string() -> None:
    entry = json.dumps(transfer()).replace('"amount": "5000"', '"amount": 1e999')
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        parse(f"[{entry}]")
    assert caught.value.description == (
        "entry 0 (value_transfer): instructed_amount.amount must be a string"
    )


# -- registry ----------------------------------------------------------------------------------


def test_every_builtin_type_is_registered_from_the_start() -> None:
    assert supported_types() == ("account_link", "funding", "standing_funding", "value_transfer")


def test_every_type_has_its_decision_in_the_service_registry() -> None:
    """The protocol table and the service table (services/operation_kinds.py) name the same
    types: a type that validates but has no decision would reach consent undecided."""
    assert tuple(sorted(KINDS)) == supported_types()


def test_operations_are_parsed_once_into_their_dataclasses() -> None:
    entries = validate([transfer()])
    (operation,) = parse_operations(entries)
    assert isinstance(operation, ValueTransferDetail)
    assert operation.to_entry() == entries[0]
    assert is_one_time(entries)
    assert not is_one_time(validate([link()]))
    with pytest.raises(InvalidAuthorizationDetails):
        parse_operations([{"type": "teleport"}])


# -- the dataclass views -----------------------------------------------------------------------


def test_value_transfer_view_reads_a_normalised_entry() -> None:
    (entry,) = validate([transfer(currency="EUR", amount="12.5")])
    detail = ValueTransferDetail.from_entry(entry)
    assert detail == ValueTransferDetail(
        amount=Amount("EUR", 1250),
        debtor_account=DEBTOR,
        creditor_account=CREDITOR,
        remittance_reference="INV-2026-0001",
    )
    assert detail.to_entry() == entry


def test_value_transfer_view_without_reference() -> None:
    detail = ValueTransferDetail.from_entry(transfer(remittance_reference=OMIT))
    assert detail.remittance_reference is None
    assert "remittance_reference" not in detail.to_entry()


def test_account_link_view_reads_a_normalised_entry() -> None:
    (entry,) = validate([link(actions=["unlink"])])
    detail = AccountLinkDetail.from_entry(entry)
    assert detail == AccountLinkDetail("unlink", DEPOSIT, WALLET)
    assert detail.to_entry() == entry


def test_views_validate_what_they_are_given() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="must differ"):
        ValueTransferDetail.from_entry(transfer(creditor_account=DEBTOR))
    with pytest.raises(InvalidAuthorizationDetails, match="type must be 'account_link'"):
        AccountLinkDetail.from_entry({**link(), "type": "value_transfer"})


def test_find_picks_the_entry_of_its_type() -> None:
    details = validate([link(), transfer()])
    assert account_link.find(details) == AccountLinkDetail("link", DEPOSIT, WALLET)
    found = value_transfer.find(details)
    assert found is not None and found.amount == Amount("JPY", 5000)
    assert value_transfer.find(validate([link()])) is None
    assert account_link.find(()) is None


def test_find_refuses_two_entries_of_its_type() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="more than one value_transfer"):
        value_transfer.find([transfer(), transfer(amount="1")])


# -- refresh comparison ------------------------------------------------------------------------


def test_a_differently_spelled_amount_is_the_same_granted_entry() -> None:
    granted = validate([transfer(currency="EUR", amount="12.50")])
    assert is_subset(validate([transfer(currency="EUR", amount="12.5")]), granted)
    assert not is_subset(validate([transfer(currency="EUR", amount="12.51")]), granted)


# -- properties --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["5000", "12.50", "0", "1e9", "NaN", DEBTOR, CREDITOR, "link", "JPY"])
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
amount_texts = st.from_regex(r"(0|[1-9][0-9]{0,16})(\.[0-9]{1,3})?", fullmatch=True)

near_transfers = st.fixed_dictionaries(
    {
        "type": st.just("value_transfer"),
        "instructed_amount": st.one_of(
            st.fixed_dictionaries(
                {
                    "currency": maybe("JPY") | st.sampled_from(sorted(MINOR_UNITS)),
                    "amount": maybe("1") | amount_texts,
                }
            ),
            json_values,
        ),
        "debtor_account": maybe(DEBTOR) | account_ids,
        "creditor_account": maybe(CREDITOR) | account_ids,
    },
    optional={
        "remittance_reference": maybe("INV-1"),
        "locations": json_values,
        "": json_values,
    },
)
near_links = st.fixed_dictionaries(
    {
        "type": st.just("account_link"),
        "actions": maybe(["link"]) | st.just(["unlink"]),
        "deposit_account": maybe(DEPOSIT) | account_ids,
        "wallet_account": maybe(WALLET) | account_ids,
    },
    optional={"privileges": json_values},
)
near_requests = st.lists(near_transfers | near_links | json_values, min_size=0, max_size=4)


def outcome(value: Any) -> tuple[dict[str, Any], ...] | str:
    try:
        return validate(value)
    except InvalidAuthorizationDetails as exc:
        assert len(exc.description) <= 160, exc.description
        return exc.description


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_values_raise_nothing_but_invalid_authorization_details(value: Any) -> None:
    outcome(value)
    outcome([value])


@settings(max_examples=300)
@given(near_requests)
def test_near_miss_requests_raise_nothing_but_invalid_authorization_details(value: Any) -> None:
    outcome(value)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_arbitrary_parameter_text_raises_nothing_but_invalid_authorization_details(
    raw: str,
) -> None:
    with contextlib.suppress(InvalidAuthorizationDetails):
        parse(raw)


@settings(max_examples=300)
@given(near_requests)
def test_normalisation_is_idempotent(value: Any) -> None:
    result = outcome(value)
    if isinstance(result, str):
        return
    assert validate(list(result)) == result
    # It survives the JSON round trip the grant store and the token claims put it through.
    assert parse(strict_json.dumps_canonical(list(result))) == result


@settings(max_examples=300)
@given(st.sampled_from(sorted(MINOR_UNITS)), st.integers(min_value=1, max_value=MAX_MINOR))
def test_amounts_round_trip(currency: str, minor: int) -> None:
    amount = Amount(currency, minor)
    (entry,) = validate([transfer(currency=currency, amount=str(amount))])
    assert entry["instructed_amount"]["amount"] == str(amount)
    assert ValueTransferDetail.from_entry(entry).amount == amount
    assert parse_amount(entry["instructed_amount"]["amount"], currency) == amount


@settings(max_examples=300)
@given(st.sampled_from(sorted(MINOR_UNITS)), amount_texts)
def test_an_accepted_amount_text_means_the_same_amount_after_normalisation(
    currency: str, text: str
) -> None:
    result = outcome([transfer(currency=currency, amount=text)])
    if isinstance(result, str):
        return
    canonical = result[0]["instructed_amount"]["amount"]
    assert parse_amount(canonical, currency) == parse_amount(text, currency)
    assert canonical == str(parse_amount(text, currency))


def test_a_standing_authorization_must_be_alone_in_its_request() -> None:
    """Beside a one-time movement it would get no refresh token, yet be recorded as active."""
    standing = {
        "type": "standing_funding",
        "directions": ["deposit_to_wallet"],
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
        "max_amount": {"currency": "JPY", "amount": "30000"},
        "daily_amount": {"currency": "JPY", "amount": "100000"},
        "valid_days": 30,
    }
    allowed = ("account_link", "standing_funding")
    assert validate([standing], allowed)[0]["type"] == "standing_funding"
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        validate([standing, link()], allowed)
    assert caught.value.description == (
        "entry 0: standing_funding must be the only entry of its request"
    )
