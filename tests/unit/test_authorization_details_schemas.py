"""The published JSON Schemas of ``account_link``, ``value_transfer`` and ``funding`` agree with
the server's validators: on a table of good and bad examples and on generated ones, an entry
passes the schema exactly when the validator accepts it — except for what JSON Schema cannot
say, documented in the schemas and in docs/AUTHORIZATION-DETAILS.md: the two accounts of one
entry must differ.
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
    WALLET,
    funding,
    link,
    transfer,
)

from trustanchor.config import load_settings
from trustanchor.domain.money import MAX_MINOR, MINOR_UNITS, Amount
from trustanchor.endpoints import Endpoints
from trustanchor.oauth import discovery
from trustanchor.oauth.account_link import validate as validate_link
from trustanchor.oauth.authorization_details import supported_types, type_schema
from trustanchor.oauth.detail_types import SCHEMA_DIALECT
from trustanchor.oauth.errors import InvalidAuthorizationDetails
from trustanchor.oauth.funding import validate as validate_funding
from trustanchor.oauth.value_transfer import validate as validate_transfer

REPO = Path(__file__).resolve().parents[2]
VALIDATORS = {
    "account_link": validate_link,
    "value_transfer": validate_transfer,
    "funding": validate_funding,
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


def schema_validator(type_name: str) -> Any:
    schema = type_schema(type_name)
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
    """The one rule the schemas cannot express."""
    if not isinstance(entry, dict):
        return False
    pairs = (("debtor_account", "creditor_account"), ("deposit_account", "wallet_account"))
    return any(a in entry and entry.get(a) == entry.get(b) for a, b in pairs)


def assert_agree(entry: Any, type_name: str) -> None:
    by_schema = SCHEMAS[type_name].is_valid(entry)
    by_server = validator_accepts(entry, type_name)
    if same_accounts(entry) and by_schema:
        assert not by_server, entry  # documented: the server is stricter here
        return
    assert by_schema == by_server, (entry, by_schema, by_server)


# -- the schema files --------------------------------------------------------------------------


def test_every_supported_type_is_compared_with_its_validator() -> None:
    assert sorted(TYPES) == list(supported_types())


@pytest.mark.parametrize("type_name", TYPES)
def test_every_supported_type_has_a_valid_draft_2020_12_schema(type_name: str) -> None:
    schema = type_schema(type_name)
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

    found = [p for name in supported_types() for p in patterns(type_schema(name))]
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
    # what JSON Schema cannot express: the server refuses, the schema accepts
    ("transfer_to_itself", transfer(creditor_account=DEBTOR)),
    ("link_to_itself", link(wallet_account=DEPOSIT)),
    ("funding_to_itself", funding(wallet_account=DEPOSIT)),
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
    ):
        assert SCHEMAS[type_name].is_valid(entry)
        assert not validator_accepts(entry, type_name)
    description = type_schema("value_transfer")["description"]
    assert "debtor_account equal to creditor_account" in description
    assert "deposit_account equal to wallet_account" in type_schema("account_link")["description"]
    assert "deposit_account equal to wallet_account" in type_schema("funding")["description"]


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


@settings(max_examples=500)
@given(generated_transfers | generated_links | generated_fundings)
def test_schema_and_validator_agree_on_generated_entries(entry: dict[str, Any]) -> None:
    for type_name in TYPES:
        assert_agree(entry, type_name)


@settings(max_examples=500)
@given(st.sampled_from(sorted(MINOR_UNITS)), amount_like)
def test_schema_and_validator_agree_on_every_amount_text(currency: str, amount: str) -> None:
    assert_agree(transfer(currency=currency, amount=amount), "value_transfer")
    assert_agree(funding(currency=currency, amount=amount), "funding")


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
    assert doc["authorization_details_types_supported"] == [
        "account_link",
        "funding",
        "value_transfer",
    ]
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
