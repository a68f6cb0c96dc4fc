"""The published JSON Schemas of ``account_link``, ``value_transfer``, ``funding`` and
``standing_funding`` agree with the server's validators (of a request): on a table of good and
bad examples and on generated ones, an entry passes the schema exactly when the validator accepts
it — except for what JSON Schema cannot say, documented in the schemas and in
docs/AUTHORIZATION-DETAILS.md: the two accounts of one entry must differ, and in
``standing_funding`` the two amounts share one currency, ``max_amount`` does not exceed
``daily_amount``, and ``valid_days`` is written without a fraction.

The schemas are read from the package files (``detail_types.load_schema``), so a type's schema is
checked before the type is registered; every registered type must be among those compared.
(Duplicate keys and "one entry per type" are about the request text and the array, outside one
entry's schema.)

JSON Schema patterns are ECMA-262 regular expressions, where ``$`` matches only at the end of
the input; Python's ``re`` (used by the ``jsonschema`` package) also lets ``$`` match before a
final newline. The schemas avoid every other difference (``[0-9]``, never ``\\d``), and the
validator below gives ``pattern`` its ECMA-262 meaning, so "5000\\n" is judged as a JavaScript
or Java validator would judge it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError, validators
from support.details import (
    CREDITOR,
    DEBTOR,
    DEPOSIT,
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

from trustanchor.config import load_settings
from trustanchor.domain.money import MAX_MINOR, MINOR_UNITS, Amount, MoneyError, parse_amount
from trustanchor.endpoints import Endpoints
from trustanchor.oauth import discovery
from trustanchor.oauth.account_link import validate as validate_link
from trustanchor.oauth.authorization_details import supported_types, type_schema
from trustanchor.oauth.detail_types import SCHEMA_DIALECT, load_schema
from trustanchor.oauth.errors import InvalidAuthorizationDetails
from trustanchor.oauth.funding import DIRECTIONS
from trustanchor.oauth.funding import validate as validate_funding
from trustanchor.oauth.standing_funding import (
    MAX_VALID_DAYS,
    MIN_VALID_DAYS,
    STANDING_AUTHORIZATION_ID,
)
from trustanchor.oauth.standing_funding import validate as validate_standing_funding
from trustanchor.oauth.value_transfer import validate as validate_transfer

REPO = Path(__file__).resolve().parents[2]
VALIDATORS = {
    "account_link": validate_link,
    "value_transfer": validate_transfer,
    "funding": validate_funding,
    "standing_funding": validate_standing_funding,  # a request: granted=False
}
TYPES = tuple(VALIDATORS)


def _ecma_pattern(pattern: str) -> str:
    return (
        pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    )


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not re.search(_ecma_pattern(pattern), instance):
        yield ValidationError(f"does not match {pattern!r}")


EcmaDraft202012Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


def packaged_schema(type_name: str) -> dict[str, Any]:
    """The type's schema file as packaged (what ``type_schema`` serves once it is registered)."""
    return load_schema(f"{type_name}.schema.json")


def schema_validator(type_name: str) -> Any:
    schema = packaged_schema(type_name)
    Draft202012Validator.check_schema(schema)
    return EcmaDraft202012Validator(schema)


SCHEMAS = {name: schema_validator(name) for name in TYPES}


def schema_accepts(entry: Any) -> bool:
    type_name = entry.get("type") if isinstance(entry, dict) else None
    schema = SCHEMAS.get(type_name if isinstance(type_name, str) else "value_transfer")
    assert schema is not None
    return bool(schema.is_valid(entry))


def validator_accepts(entry: Any, type_name: str) -> bool:
    try:
        VALIDATORS[type_name](entry)
    except InvalidAuthorizationDetails:
        return False
    return True


def same_accounts(entry: Any) -> bool:
    """The rule the schemas cannot express for every type."""
    if not isinstance(entry, dict):
        return False
    pairs = (("debtor_account", "creditor_account"), ("deposit_account", "wallet_account"))
    return any(a in entry and entry.get(a) == entry.get(b) for a, b in pairs)


def standing_bounds_broken(entry: Any) -> bool:
    """The ``standing_funding`` rules the schema cannot express: one currency in both amounts,
    ``max_amount`` not above ``daily_amount``, ``valid_days`` without a fraction (JSON Schema's
    ``integer`` admits ``90.0``)."""
    if not isinstance(entry, dict):
        return False
    if isinstance(entry.get("valid_days"), float):
        return True
    try:
        maximum = parse_amount(entry["max_amount"]["amount"], entry["max_amount"]["currency"])
        daily = parse_amount(entry["daily_amount"]["amount"], entry["daily_amount"]["currency"])
    except (KeyError, TypeError, MoneyError):
        return False
    return maximum.currency != daily.currency or maximum > daily


def assert_agree(entry: Any, type_name: str) -> None:
    by_schema = SCHEMAS[type_name].is_valid(entry)
    by_server = validator_accepts(entry, type_name)
    server_only = same_accounts(entry) or (
        type_name == "standing_funding" and standing_bounds_broken(entry)
    )
    if server_only and by_schema:
        assert not by_server, entry  # documented: the server is stricter here
        return
    assert by_schema == by_server, (entry, by_schema, by_server)


# -- the schema files --------------------------------------------------------------------------


def test_every_supported_type_is_compared_with_its_validator() -> None:
    assert set(supported_types()) <= set(TYPES)
    # standing_funding is registered by the lead together with its policy decision.
    assert set(TYPES) - set(supported_types()) <= {"standing_funding"}
    for type_name in supported_types():
        assert type_schema(type_name) == packaged_schema(type_name)


@pytest.mark.parametrize("type_name", TYPES)
def test_every_supported_type_has_a_valid_draft_2020_12_schema(type_name: str) -> None:
    schema = packaged_schema(type_name)
    assert schema["$schema"] == SCHEMA_DIALECT
    assert "$id" not in schema  # added by the web layer: the URL it is served at
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["type"] == {"const": type_name}


def test_patterns_are_anchored_and_use_no_class_escapes_that_differ_between_dialects() -> None:
    def patterns(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern":
                    yield value
                else:
                    yield from patterns(value)
        elif isinstance(node, list):
            for item in node:
                yield from patterns(item)

    found = [p for name in TYPES for p in patterns(packaged_schema(name))]
    assert found
    for pattern in found:
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        assert not re.search(r"\\[dDwWsSbB]", pattern), pattern  # Unicode-aware in Python


def test_the_schema_lists_exactly_our_currencies_grouped_by_decimals() -> None:
    instructed = type_schema("value_transfer")["$defs"]["instructed_amount"]
    assert instructed["properties"]["currency"]["enum"] == sorted(MINOR_UNITS)
    groups: dict[int, list[str]] = {}
    for code, decimals in MINOR_UNITS.items():
        groups.setdefault(decimals, []).append(code)
    by_schema = [
        sorted(rule["if"]["properties"]["currency"]["enum"]) for rule in instructed["allOf"]
    ]
    assert sorted(by_schema) == sorted(sorted(codes) for codes in groups.values())


def test_funding_amounts_and_account_ids_follow_the_transfer_rules() -> None:
    funding_schema = type_schema("funding")
    transfer_schema = type_schema("value_transfer")
    assert funding_schema["$defs"] == transfer_schema["$defs"]
    assert funding_schema["properties"]["direction"]["enum"] == [
        "deposit_to_wallet",
        "wallet_to_deposit",
    ]
    assert "link_id" not in funding_schema["required"]  # optional in a request
    assert "standing_authorization_id" not in funding_schema["required"]  # the service's


def test_standing_funding_amounts_and_ids_follow_the_funding_rules() -> None:
    standing = packaged_schema("standing_funding")
    funding_schema = packaged_schema("funding")
    assert standing["$defs"]["amount"] == funding_schema["$defs"]["instructed_amount"]
    assert standing["$defs"]["account_id"] == funding_schema["$defs"]["account_id"]
    assert (
        standing["properties"]["link_id"]["pattern"]
        == (funding_schema["properties"]["link_id"]["pattern"])
    )
    assert standing["properties"]["directions"]["items"]["enum"] == list(DIRECTIONS)
    assert (
        standing["properties"]["valid_days"]["minimum"],
        standing["properties"]["valid_days"]["maximum"],
    ) == (MIN_VALID_DAYS, MAX_VALID_DAYS)
    # A request never carries the service's members, and the schema is the request's.
    assert "link_id" not in standing["required"]
    assert "standing_authorization_id" not in standing["properties"]
    assert "expires_at" not in standing["properties"]
    assert (
        STANDING_AUTHORIZATION_ID.pattern
        in (funding_schema["properties"]["standing_authorization_id"]["pattern"])
    )


# -- good and bad examples ---------------------------------------------------------------------

EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("transfer", transfer()),
    ("transfer_without_reference", transfer(remittance_reference=OMIT)),
    ("transfer_eur", transfer(currency="EUR", amount="12.5")),
    ("transfer_eur_cents", transfer(currency="EUR", amount="0.01")),
    ("transfer_jpy_maximum", transfer(amount=str(MAX_MINOR))),
    ("transfer_usd_maximum", transfer(currency="USD", amount=str(Amount("USD", MAX_MINOR)))),
    ("transfer_usd_maximum_short", transfer(currency="USD", amount="10000000000000.0")),
    ("transfer_reference_35", transfer(remittance_reference="A" * 35)),
    ("transfer_reference_all_characters", transfer(remittance_reference="aZ09/?:().,'+ -")),
    ("amount_number", transfer(amount=5000)),
    ("amount_nan", transfer(amount=float("nan"))),
    ("amount_exponent", transfer(amount="1e9")),
    ("amount_negative", transfer(amount="-1")),
    ("amount_leading_zero", transfer(amount="01")),
    ("amount_trailing_newline", transfer(amount="5000\n")),
    ("amount_zero", transfer(amount="0")),
    ("amount_zero_cents", transfer(currency="EUR", amount="0.00")),
    ("jpy_decimals", transfer(amount="1.5")),
    ("jpy_zero_decimal", transfer(amount="1.0")),
    ("eur_three_decimals", transfer(currency="EUR", amount="0.001")),
    ("jpy_beyond_range", transfer(amount=str(MAX_MINOR + 1))),
    ("usd_beyond_range", transfer(currency="USD", amount="10000000000000.01")),
    ("usd_far_beyond_range", transfer(currency="USD", amount="100000000000000")),
    ("currency_lower_case", transfer(currency="eur")),
    ("currency_missing", transfer(currency=OMIT)),
    (
        "instructed_amount_extra",
        transfer(instructed_amount={"currency": "JPY", "amount": "1", "x": 1}),
    ),
    ("instructed_amount_string", transfer(instructed_amount="1 JPY")),
    ("debtor_missing", transfer(debtor_account=OMIT)),
    ("debtor_bad_id", transfer(debtor_account="acc_short")),
    ("debtor_id_newline", transfer(debtor_account=DEBTOR + "\n")),
    ("reference_empty", transfer(remittance_reference="")),
    ("reference_too_long", transfer(remittance_reference="A" * 36)),
    ("reference_bad_character", transfer(remittance_reference="a_b")),
    ("reference_null", transfer(remittance_reference=None)),
    ("transfer_unknown_member", transfer(locations=["x"])),
    ("transfer_wrong_type", transfer(type="account_link")),
    ("link", link()),
    ("unlink", link(actions=["unlink"])),
    ("link_actions_string", link(actions="link")),
    ("link_no_action", link(actions=[])),
    ("link_two_actions", link(actions=["link", "unlink"])),
    ("link_unknown_action", link(actions=["merge"])),
    ("link_wallet_missing", link(wallet_account=OMIT)),
    ("link_wallet_number", link(wallet_account=1)),
    ("link_unknown_member", link(identifier="x")),
    ("link_wrong_type", link(type="value_transfer")),
    ("funding", funding()),
    ("funding_request_without_link_id", funding(link_id=OMIT)),
    ("funding_sweep", funding(direction="wallet_to_deposit", currency="EUR", amount="12.5")),
    ("funding_link_id_60", funding(link_id="lnk_" + "a" * 60)),
    ("funding_link_id_61", funding(link_id="lnk_" + "a" * 61)),
    ("funding_link_id_15", funding(link_id="lnk_" + "a" * 15)),
    ("funding_link_id_newline", funding(link_id=LINK_ID + "\n")),
    ("funding_link_id_account_id", funding(link_id=DEPOSIT)),
    ("funding_link_id_null", funding(link_id=None)),
    ("funding_direction_unknown", funding(direction="sweep")),
    ("funding_direction_missing", funding(direction=OMIT)),
    ("funding_direction_number", funding(direction=1)),
    ("funding_amount_number", funding(amount=10000)),
    ("funding_jpy_decimals", funding(amount="1.5")),
    ("funding_deposit_missing", funding(deposit_account=OMIT)),
    ("funding_transfer_member", funding(debtor_account=DEBTOR)),
    ("funding_wrong_type", funding(type="value_transfer")),
    ("funding_from_a_standing_authorization", funding(standing_authorization_id=STANDING_ID)),
    ("funding_standing_id_a_link_id", funding(standing_authorization_id=LINK_ID)),
    ("funding_standing_id_61", funding(standing_authorization_id="sta_" + "a" * 61)),
    ("funding_standing_id_newline", funding(standing_authorization_id=STANDING_ID + "\n")),
    ("funding_standing_id_null", funding(standing_authorization_id=None)),
    ("funding_expires_at", funding(expires_at=1)),
    ("standing", standing_funding()),
    ("standing_both_directions", standing_funding(directions=list(DIRECTIONS))),
    ("standing_directions_reversed", standing_funding(directions=list(reversed(DIRECTIONS)))),
    ("standing_eur", standing_funding(currency="EUR", max_text="12.5", daily_text="100")),
    ("standing_with_link", standing_funding(link_id=LINK_ID)),
    ("standing_max_equals_daily", standing_funding(max_text="100000")),
    ("standing_one_day", standing_funding(valid_days=1)),
    ("standing_366_days", standing_funding(valid_days=366)),
    ("standing_0_days", standing_funding(valid_days=0)),
    ("standing_367_days", standing_funding(valid_days=367)),
    ("standing_days_string", standing_funding(valid_days="90")),
    ("standing_days_true", standing_funding(valid_days=True)),
    ("standing_no_directions", standing_funding(directions=[])),
    ("standing_direction_string", standing_funding(directions="deposit_to_wallet")),
    ("standing_direction_repeated", standing_funding(directions=["deposit_to_wallet"] * 2)),
    ("standing_direction_unknown", standing_funding(directions=["sweep"])),
    ("standing_max_missing", standing_funding(max_amount=OMIT)),
    ("standing_max_number", standing_funding(max_text=50000)),
    ("standing_daily_jpy_decimals", standing_funding(daily_text="100000.5")),
    (
        "standing_daily_extra",
        standing_funding(daily_amount={"currency": "JPY", "amount": "1", "x": 1}),
    ),
    ("standing_link_id_bad", standing_funding(link_id=DEPOSIT)),
    ("standing_granted_entry", granted_standing_funding()),
    ("standing_request_with_id", standing_funding(standing_authorization_id=STANDING_ID)),
    ("standing_request_with_expiry", standing_funding(expires_at=1_798_761_600)),
    ("standing_a_funding_member", standing_funding(direction="deposit_to_wallet")),
    ("standing_wrong_type", standing_funding(type="funding")),
    # what JSON Schema cannot express: the server refuses, the schema accepts
    ("transfer_to_itself", transfer(creditor_account=DEBTOR)),
    ("link_to_itself", link(wallet_account=DEPOSIT)),
    ("funding_to_itself", funding(wallet_account=DEPOSIT)),
    ("standing_to_itself", standing_funding(wallet_account=DEPOSIT)),
    ("standing_two_currencies", standing_funding(daily_currency="EUR")),
    ("standing_max_above_daily", standing_funding(max_text="100001")),
    ("standing_days_with_a_fraction", standing_funding(valid_days=90.0)),
]


@pytest.mark.parametrize(
    ("entry", "type_name"),
    [
        pytest.param(entry, type_name, id=f"{case}-{type_name}")
        for case, entry in EXAMPLES
        for type_name in TYPES
    ],
)
def test_schema_and_validator_agree_on_the_examples(entry: dict[str, Any], type_name: str) -> None:
    assert_agree(entry, type_name)


def test_the_examples_cover_both_answers_for_every_type() -> None:
    for type_name in TYPES:
        answers = {validator_accepts(entry, type_name) for _, entry in EXAMPLES}
        assert answers == {True, False}


def test_accounts_that_do_not_differ_are_the_documented_disagreement() -> None:
    for entry, type_name in (
        (transfer(creditor_account=DEBTOR), "value_transfer"),
        (link(wallet_account=DEPOSIT), "account_link"),
        (funding(wallet_account=DEPOSIT), "funding"),
        (standing_funding(wallet_account=DEPOSIT), "standing_funding"),
    ):
        assert SCHEMAS[type_name].is_valid(entry)
        assert not validator_accepts(entry, type_name)
    description = type_schema("value_transfer")["description"]
    assert "debtor_account equal to creditor_account" in description
    assert "deposit_account equal to wallet_account" in type_schema("account_link")["description"]
    assert "deposit_account equal to wallet_account" in type_schema("funding")["description"]
    standing = packaged_schema("standing_funding")["description"]
    assert "deposit_account equal to wallet_account" in standing


def test_the_standing_bounds_are_the_documented_disagreement() -> None:
    for entry in (
        standing_funding(daily_currency="EUR"),
        standing_funding(max_text="100001"),
        standing_funding(valid_days=90.0),
    ):
        assert SCHEMAS["standing_funding"].is_valid(entry)
        assert not validator_accepts(entry, "standing_funding")
    description = packaged_schema("standing_funding")["description"]
    for words in (
        "max_amount and daily_amount in different currencies",
        "max_amount above daily_amount",
        "valid_days written with a fraction (90.0)",
    ):
        assert words in description


# -- generated examples ------------------------------------------------------------------------

amount_like = st.text(alphabet="0123456789.eE+- \n", max_size=20) | st.from_regex(
    r"(0|[1-9][0-9]{0,16})(\.[0-9]{0,3})?", fullmatch=True
)
any_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
ids = st.sampled_from([DEBTOR, CREDITOR, DEPOSIT, WALLET]) | st.from_regex(
    r"acc_[A-Za-z0-9_\-=.]{14,62}\n?", fullmatch=True
)
generated_transfers = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["value_transfer", "account_link"]),
        "instructed_amount": st.fixed_dictionaries(
            {
                "currency": st.sampled_from([*sorted(MINOR_UNITS), "jpy", "XXX"]),
                "amount": amount_like | any_scalar,
            },
            optional={"extra": any_scalar},
        )
        | any_scalar,
        "debtor_account": ids | any_scalar,
        "creditor_account": ids,
    },
    optional={
        "remittance_reference": st.text(alphabet="AZaz09/?:().,'+ -_#\n", max_size=40) | any_scalar,
        "locations": any_scalar,
    },
)
generated_links = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["account_link", "value_transfer"]),
        "actions": st.lists(st.sampled_from(["link", "unlink", "LINK", ""]), max_size=3)
        | any_scalar,
        "deposit_account": ids | any_scalar,
        "wallet_account": ids,
    },
    optional={"privileges": any_scalar},
)
link_ids = st.sampled_from([LINK_ID, DEPOSIT]) | st.from_regex(
    r"lnk_[A-Za-z0-9_\-=.]{14,62}\n?", fullmatch=True
)
generated_fundings = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["funding", "value_transfer"]),
        "direction": st.sampled_from(["deposit_to_wallet", "wallet_to_deposit", "sweep", ""])
        | any_scalar,
        "instructed_amount": st.fixed_dictionaries(
            {
                "currency": st.sampled_from([*sorted(MINOR_UNITS), "jpy", "XXX"]),
                "amount": amount_like | any_scalar,
            },
            optional={"extra": any_scalar},
        )
        | any_scalar,
        "deposit_account": ids | any_scalar,
        "wallet_account": ids,
    },
    optional={"link_id": link_ids | any_scalar, "actions": any_scalar},
)


standing_ids = st.sampled_from([STANDING_ID, LINK_ID]) | st.from_regex(
    r"sta_[A-Za-z0-9_\-=.]{14,62}\n?", fullmatch=True
)


def spoiled(draw: st.DrawFn, good: Any, bad: st.SearchStrategy[Any], *, one_in: int = 8) -> Any:
    """``good``, or about one time in ``one_in`` a draw from ``bad`` (a value in the middle of
    the range, as hypothesis favours the ends)."""
    return draw(bad) if draw(st.integers(0, one_in - 1)) == one_in // 2 else good


def amount_near(draw: st.DrawFn, currency: str) -> dict[str, Any]:
    """An amount object of the currency, in canonical or short text, sometimes broken."""
    text = str(Amount(currency, draw(st.integers(1, 10**7))))
    if "." in text and draw(st.booleans()):
        text = text.rstrip("0").rstrip(".")
    return {"currency": currency, "amount": spoiled(draw, text, amount_like | any_scalar)}


@st.composite
def generated_fundings_from_standing(draw: st.DrawFn) -> dict[str, Any]:
    """Movement entries as a standing authorization's tokens carry them, sometimes broken."""
    entry = funding(standing_authorization_id=spoiled(draw, STANDING_ID, standing_ids | any_scalar))
    entry["instructed_amount"] = amount_near(draw, draw(st.sampled_from(sorted(MINOR_UNITS))))
    entry["direction"] = draw(st.sampled_from(DIRECTIONS))
    if draw(st.integers(0, 3)) == 2:
        entry[draw(st.sampled_from(["link_id", "expires_at", "directions"]))] = draw(
            link_ids | any_scalar
        )
    return entry


@st.composite
def generated_standing(draw: st.DrawFn) -> dict[str, Any]:
    """standing_funding entries near the edges: mostly well-formed, with amounts of one or two
    currencies around each other, directions of any shape, days around the bounds, a request
    member of another type or the service's members sometimes."""
    currency = draw(st.sampled_from(sorted(MINOR_UNITS)))
    other_currency = spoiled(draw, currency, st.sampled_from([*sorted(MINOR_UNITS), "jpy"]))
    directions = draw(st.sampled_from([DIRECTIONS[:1], DIRECTIONS[1:], DIRECTIONS]))
    entry: dict[str, Any] = {
        "type": spoiled(draw, "standing_funding", st.sampled_from(["funding", "x"])),
        "directions": spoiled(
            draw,
            list(directions if draw(st.booleans()) else reversed(directions)),
            st.lists(
                st.sampled_from(["deposit_to_wallet", "wallet_to_deposit", "sweep", ""]),
                max_size=3,
            )
            | any_scalar,
        ),
        "deposit_account": spoiled(draw, DEPOSIT, ids | any_scalar),
        "wallet_account": spoiled(draw, WALLET, ids),
        "max_amount": spoiled(draw, amount_near(draw, currency), any_scalar, one_in=16),
        "daily_amount": amount_near(draw, other_currency)
        if other_currency in MINOR_UNITS
        else {
            "currency": other_currency,
            "amount": "1",
        },
        "valid_days": spoiled(
            draw,
            draw(st.integers(1, 366)),
            st.sampled_from([-1, 0, 367, 90.0, 90.5, True, "90"]) | st.integers() | any_scalar,
            one_in=4,
        ),
    }
    if draw(st.booleans()):
        entry["link_id"] = spoiled(draw, draw(link_ids), any_scalar)
    if draw(st.integers(0, 5)) == 3:
        entry[draw(st.sampled_from(["standing_authorization_id", "expires_at", "direction"]))] = (
            draw(standing_ids | st.integers(0, 2**40))
        )
    return entry


@settings(max_examples=500)
@given(
    generated_transfers
    | generated_links
    | generated_fundings
    | generated_fundings_from_standing()
    | generated_standing()
)
def test_schema_and_validator_agree_on_generated_entries(entry: dict[str, Any]) -> None:
    for type_name in TYPES:
        assert_agree(entry, type_name)


@settings(max_examples=500)
@given(st.sampled_from(sorted(MINOR_UNITS)), amount_like)
def test_schema_and_validator_agree_on_every_amount_text(currency: str, amount: str) -> None:
    assert_agree(transfer(currency=currency, amount=amount), "value_transfer")
    assert_agree(funding(currency=currency, amount=amount), "funding")
    assert_agree(standing_funding(currency=currency, max_text=amount), "standing_funding")
    assert_agree(standing_funding(currency=currency, daily_text=amount), "standing_funding")


@settings(max_examples=300)
@given(st.sampled_from(sorted(MINOR_UNITS)), st.integers(1, MAX_MINOR), st.integers(1, MAX_MINOR))
def test_schema_and_validator_agree_on_every_pair_of_bounds(
    currency: str, maximum: int, daily: int
) -> None:
    entry = standing_funding(
        currency=currency,
        max_text=str(Amount(currency, maximum)),
        daily_text=str(Amount(currency, daily)),
    )
    assert_agree(entry, "standing_funding")
    assert validator_accepts(entry, "standing_funding") == (maximum <= daily)


# -- discovery ---------------------------------------------------------------------------------


def discovery_document() -> dict[str, Any]:
    settings = load_settings(REPO / "config" / "test.toml", environ={})
    return discovery.metadata(
        settings,
        Endpoints(settings.issuer),
        trust_frameworks=[],
        claims=[],
        demo_secret_auth=False,
    )


def test_discovery_names_a_schema_url_for_each_supported_type() -> None:
    doc = discovery_document()
    discovery.validate(doc)
    supported = doc["authorization_details_types_supported"]
    assert supported == list(supported_types())
    # standing_funding joins when the lead registers it with its decision.
    assert set(supported) - {"standing_funding"} == {"account_link", "funding", "value_transfer"}
    assert doc["authorization_details_schemas"] == {
        name: f"{doc['issuer']}/schemas/{name}.json" for name in supported_types()
    }


def test_discovery_without_a_schema_for_a_supported_type_is_refused() -> None:
    doc = discovery_document()
    del doc["authorization_details_schemas"]["value_transfer"]
    with pytest.raises(ValueError, match="exactly the supported types"):
        discovery.validate(doc)


def test_discovery_with_a_schema_url_outside_the_issuer_is_refused() -> None:
    doc = discovery_document()
    doc["authorization_details_schemas"]["account_link"] = "https://elsewhere.example/s.json"
    with pytest.raises(ValueError, match="not under the issuer"):
        discovery.validate(doc)


def test_discovery_naming_a_type_without_a_packaged_schema_is_refused() -> None:
    doc = discovery_document()
    doc["authorization_details_types_supported"].append("payment_initiation")
    doc["authorization_details_schemas"]["payment_initiation"] = doc["issuer"] + "/schemas/p.json"
    with pytest.raises(LookupError, match="no schema"):
        discovery.validate(doc)
