"""The audit entry kind ``decision_operation`` (docs/AUDIT-FORMAT.md §1.2): what a ``decision``
decided on (the operation type, its amount in minor units or the link action), written right
after the decision with the same ``decision_id``. It names no account, link or party; every
member is always present, null where it does not apply; ``decision`` keeps exactly the members
it always had, so every entry written before this kind existed keeps its bytes and leaf hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.audit import merkle
from trustanchor.audit.entries import (
    CURRENCIES,
    MAX_INT,
    OPERATIONS,
    Decision,
    DecisionOperation,
    EntryError,
    entry_from_mapping,
    parse_entry,
)
from trustanchor.domain.money import MINOR_UNITS
from trustanchor.oauth.account_link import AccountLinkDetail
from trustanchor.oauth.authorization_details import Operation, supported_types
from trustanchor.oauth.funding import FundingDetail
from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.oauth.value_transfer import ValueTransferDetail
from trustanchor.services.decisions import _operation_entry

T0 = 1_700_000_000
DOC = Path(__file__).parents[2] / "docs" / "AUDIT-FORMAT.md"
# docs/AUDIT-FORMAT.md §1.2 shows this entry and its leaf hash.
TRANSFER = (
    b'{"action":null,"amount":5000,"at":1700000000,"currency":"JPY",'
    b'"decision_id":"dec_4bT0yq1m2x9a","kind":"decision_operation",'
    b'"operation":"value_transfer","v":1}'
)
TRANSFER_LEAF = "86720b6d40dd051ac8789ff3d0a47691543ca3c4c9584f0acf54605e0be672be"
DEPOSIT = "acc_deposit_0001_aaaaaaaa"
WALLET = "acc_wallet_0002_bbbbbbbbb"
OTHER = "acc_wallet_0003_ccccccccc"


def transfer() -> DecisionOperation:
    return DecisionOperation(
        at=T0,
        decision_id="dec_4bT0yq1m2x9a",
        operation="value_transfer",
        currency="JPY",
        amount=5000,
        action=None,
    )


def replaced(entry: DecisionOperation, **changes: object) -> DecisionOperation:
    original: Any = entry
    return dataclasses.replace(original, **changes)  # type: ignore[no-any-return]


def test_canonical_bytes_are_the_documented_ones() -> None:
    assert transfer().to_canonical() == TRANSFER
    assert hashlib.sha256(b"\x00" + TRANSFER).hexdigest() == TRANSFER_LEAF
    assert merkle.leaf_hash(TRANSFER).hex() == TRANSFER_LEAF
    assert parse_entry(TRANSFER) == transfer()
    doc = DOC.read_text(encoding="utf-8")
    assert TRANSFER.decode("utf-8") in doc and TRANSFER_LEAF in doc


def test_the_lists_are_the_operation_types_and_currencies_of_the_service() -> None:
    """Written out in the format module; a type or currency added to the service fails this
    until the format decides about it (docs/AUDIT-FORMAT.md §1.2)."""
    assert supported_types() == OPERATIONS
    assert tuple(sorted(MINOR_UNITS)) == CURRENCIES


def test_a_decision_keeps_exactly_its_members() -> None:
    assert [f.name for f in dataclasses.fields(Decision)] == [
        "at",
        "decision_id",
        "result",
        "reason",
        "anchor_set_id",
    ]


SHAPES = [
    ("value_transfer", "JPY", 5000, None),
    ("funding", "EUR", 1, None),
    ("standing_funding", "USD", MAX_INT, None),
    ("account_link", None, None, "link"),
    ("account_link", None, None, "unlink"),
]


@pytest.mark.parametrize(("operation", "currency", "amount", "action"), SHAPES)
def test_every_operation_round_trips(
    operation: str, currency: str | None, amount: int | None, action: str | None
) -> None:
    entry = DecisionOperation(
        at=T0,
        decision_id="dec_1",
        operation=operation,
        currency=currency,
        amount=amount,
        action=action,
    )
    data = entry.to_canonical()
    assert parse_entry(data) == entry
    assert set(json.loads(data)) == {
        "v",
        "kind",
        "at",
        "decision_id",
        "operation",
        "currency",
        "amount",
        "action",
    }


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"operation": "payment"}, "bad_value", "operation"),
        ({"operation": "VALUE_TRANSFER"}, "bad_value", "operation"),
        ({"currency": "jpy"}, "bad_value", "currency"),
        ({"currency": "XAU"}, "bad_value", "currency"),
        ({"currency": "JPY "}, "bad_value", "currency"),
        ({"amount": 0}, "bad_value", "amount"),
        ({"amount": -5000}, "bad_value", "amount"),
        ({"amount": MAX_INT + 1}, "bad_value", "amount"),
        ({"amount": 5000.0}, "float", "amount"),
        ({"amount": True}, "bad_type", "amount"),
        ({"amount": "5000"}, "bad_type", "amount"),
        ({"action": "link"}, "bad_value", "action"),
        ({"action": "maybe"}, "bad_value", "action"),
        ({"amount": None}, "bad_value", "amount"),
        ({"currency": None}, "bad_value", "amount"),
        ({"decision_id": "dec 1"}, "bad_value", "decision_id"),
        ({"decision_id": "taro@example.com"}, "bad_value", "decision_id"),
        ({"operation": "account_link"}, "bad_value", "amount"),
        ({"operation": "account_link", "currency": None, "amount": None}, "bad_value", "action"),
    ],
)
def test_junk_values_are_refused(changes: dict[str, object], reason: str, field: str) -> None:
    with pytest.raises(EntryError) as info:
        replaced(transfer(), **changes)
    assert (info.value.reason, info.value.field) == (reason, field)


def test_a_link_names_no_amount() -> None:
    link = replaced(transfer(), operation="account_link", currency=None, amount=None, action="link")
    with pytest.raises(EntryError):
        replaced(link, amount=5000)
    with pytest.raises(EntryError):
        replaced(link, currency="JPY")


def test_parties_and_missing_members_are_refused_when_parsed() -> None:
    data = json.loads(TRANSFER)
    for extra in ("debtor_account", "creditor_account", "link_id", "holder"):
        with pytest.raises(EntryError) as info:
            entry_from_mapping(data | {extra: DEPOSIT})
        assert info.value.reason == "unknown_field"
    for member in ("currency", "amount", "action"):
        with pytest.raises(EntryError) as info:
            entry_from_mapping({k: v for k, v in data.items() if k != member})
        assert info.value.reason == "missing_field"  # null is written, never left out
    with pytest.raises(EntryError) as info:
        parse_entry(TRANSFER.replace(b'"amount":5000', b'"amount":5e3'))
    assert info.value.reason in ("not_json", "float", "not_canonical")


def typed(entry: dict[str, Any]) -> Operation:
    readers = {
        "account_link": AccountLinkDetail.from_entry,
        "value_transfer": ValueTransferDetail.from_entry,
        "funding": FundingDetail.from_entry,
        "standing_funding": StandingFundingDetail.from_entry,
    }
    return readers[entry["type"]](entry)


OPERATION_CASES = [
    (
        {
            "type": "account_link",
            "actions": ["link"],
            "deposit_account": DEPOSIT,
            "wallet_account": WALLET,
        },
        ("account_link", None, None, "link"),
    ),
    (
        {
            "type": "value_transfer",
            "instructed_amount": {"currency": "JPY", "amount": "5000"},
            "debtor_account": WALLET,
            "creditor_account": OTHER,
            "remittance_reference": "INV 2026/12",
        },
        ("value_transfer", "JPY", 5000, None),
    ),
    (
        {
            "type": "funding",
            "direction": "deposit_to_wallet",
            "instructed_amount": {"currency": "EUR", "amount": "12.50"},
            "deposit_account": DEPOSIT,
            "wallet_account": WALLET,
        },
        ("funding", "EUR", 1250, None),
    ),
    (
        {
            "type": "standing_funding",
            "directions": ["deposit_to_wallet"],
            "deposit_account": DEPOSIT,
            "wallet_account": WALLET,
            "max_amount": {"currency": "JPY", "amount": "50000"},
            "daily_amount": {"currency": "JPY", "amount": "100000"},
            "valid_days": 90,
        },
        ("standing_funding", "JPY", 50000, None),
    ),
]


@pytest.mark.parametrize(("detail", "expected"), OPERATION_CASES, ids=lambda c: str(c)[:30])
def test_the_service_records_the_operation_without_accounts(
    detail: dict[str, Any], expected: tuple[str, str | None, int | None, str | None]
) -> None:
    """services/decisions.py: the typed operation → its entry; the amount in minor units (a
    standing authorization's per-movement maximum); no account id or reference in the bytes."""
    entry = _operation_entry("dec_1", typed(detail), at=T0)
    assert (entry.operation, entry.currency, entry.amount, entry.action) == expected
    text = entry.to_canonical().decode("utf-8")
    for secret in (DEPOSIT, WALLET, OTHER, "INV", "100000"):
        assert secret not in text
    assert {o for (_, (o, *_)) in OPERATION_CASES} == set(OPERATIONS)


@given(
    operation=st.sampled_from(OPERATIONS),
    currency=st.sampled_from(CURRENCIES),
    amount=st.integers(min_value=1, max_value=MAX_INT),
    action=st.sampled_from(["link", "unlink"]),
    at=st.integers(min_value=0, max_value=MAX_INT),
)
def test_generated_entries_round_trip(
    operation: str, currency: str, amount: int, action: str, at: int
) -> None:
    link = operation == "account_link"
    entry = DecisionOperation(
        at=at,
        decision_id="dec_x",
        operation=operation,
        currency=None if link else currency,
        amount=None if link else amount,
        action=action if link else None,
    )
    data = entry.to_canonical()
    assert parse_entry(data) == entry
    reordered = dict(reversed(list(json.loads(data).items())))
    assert entry_from_mapping(reordered).to_canonical() == data
