"""OpenID4VP 1.0 transaction data (openid4vp/transaction_data.py): our three element types, the
encoding (base64url of compact UTF-8 JSON), the hash over the string as sent (appendix B.3.3.1)
and the strict check of a Key Binding JWT's ``transaction_data_hashes``."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor import strict_json
from trustanchor.oauth import standing_funding
from trustanchor.openid4vp import transaction_data as td
from trustanchor.openid4vp.transaction_data import TransactionDataError

CREDITOR = td.Creditor("Hanako's wallet", "テスト銀行", "…8Q2x")


def transfer_element(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "amount": "5000",
        "currency": "JPY",
        "creditor": CREDITOR,
        "remittance_reference": None,
        "credential_ids": ["identity_credential"],
        **overrides,
    }
    return td.value_transfer_element(**values)


def funding_element(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "direction": "deposit_to_wallet",
        "amount": "10000",
        "currency": "JPY",
        "deposit_account_reference": "…dep1",
        "wallet_account_reference": "…wal1",
        "credential_ids": ["identity_credential"],
        **overrides,
    }
    return td.funding_element(**values)


def standing_element(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "directions": ["deposit_to_wallet"],
        "max_amount": "30000",
        "daily_amount": "100000",
        "currency": "JPY",
        "valid_days": 30,
        "deposit_account_reference": "…dep1",
        "wallet_account_reference": "…wal1",
        "credential_ids": ["identity_credential"],
        **overrides,
    }
    return td.standing_funding_element(**values)


def independent_hash(encoded: str) -> str:
    """sha-256 over the ASCII string as sent, base64url without padding (stdlib only)."""
    digest = hashlib.sha256(encoded.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------------- elements


def test_a_transfer_element_has_exactly_the_documented_members() -> None:
    element = transfer_element(remittance_reference="INV-2026-0001")
    assert element == {
        "type": "urn:trustanchor:transaction:value_transfer:1",
        "credential_ids": ["identity_credential"],
        "transaction_data_hashes_alg": ["sha-256"],
        "amount": "5000",
        "currency": "JPY",
        "creditor": {
            "label": "Hanako's wallet",
            "intermediary": "テスト銀行",
            "account_reference": "…8Q2x",
        },
        "remittance_reference": "INV-2026-0001",
    }
    assert "remittance_reference" not in transfer_element()


def test_a_funding_element_has_exactly_the_documented_members() -> None:
    assert funding_element(direction="wallet_to_deposit") == {
        "type": "urn:trustanchor:transaction:funding:1",
        "credential_ids": ["identity_credential"],
        "transaction_data_hashes_alg": ["sha-256"],
        "direction": "wallet_to_deposit",
        "amount": "10000",
        "currency": "JPY",
        "deposit_account_reference": "…dep1",
        "wallet_account_reference": "…wal1",
    }


def test_a_standing_funding_element_has_exactly_the_documented_members() -> None:
    element = standing_element(directions=["deposit_to_wallet", "wallet_to_deposit"])
    assert element == {
        "type": "urn:trustanchor:transaction:standing_funding:1",
        "credential_ids": ["identity_credential"],
        "transaction_data_hashes_alg": ["sha-256"],
        "directions": ["deposit_to_wallet", "wallet_to_deposit"],
        "max_amount": {"amount": "30000", "currency": "JPY"},
        "daily_amount": {"amount": "100000", "currency": "JPY"},
        "valid_days": 30,
        "deposit_account_reference": "…dep1",
        "wallet_account_reference": "…wal1",
    }
    assert list(element) == [  # the members in this order (docs/DYNAMIC-LINKING.md)
        "type",
        "credential_ids",
        "transaction_data_hashes_alg",
        "directions",
        "max_amount",
        "daily_amount",
        "valid_days",
        "deposit_account_reference",
        "wallet_account_reference",
    ]
    assert td.STANDING_FUNDING in td.TYPES
    assert standing_element(max_amount="100000")["max_amount"]["amount"] == "100000"  # = daily


@pytest.mark.parametrize(
    "overrides",
    [
        {"directions": []},
        {"directions": ["deposit_to_wallet", "deposit_to_wallet"]},
        {"directions": ["wallet_to_deposit", "deposit_to_wallet"]},  # not in canonical order
        {"directions": ["sideways"]},
        {"directions": "deposit_to_wallet"},
        {"max_amount": "30000.0"},
        {"daily_amount": "0"},
        {"max_amount": "100001"},  # above the daily bound
        {"currency": "XXX"},
        {"valid_days": 0},
        {"valid_days": 367},
        {"valid_days": True},
        {"valid_days": 30.0},
        {"valid_days": "30"},
        {"deposit_account_reference": ""},
        {"wallet_account_reference": "…wal1\n"},
        {"credential_ids": []},
    ],
)
def test_a_malformed_standing_funding_element_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(TransactionDataError) as caught:
        standing_element(**overrides)
    assert caught.value.reason == "invalid_element"


def test_a_standing_funding_element_round_trips_and_bounds_its_days_as_the_entry_does() -> None:
    element = standing_element(directions=["wallet_to_deposit"], valid_days=366)
    encoded = td.encode(element)
    assert td.decode(encoded) == element
    td.verify([encoded], [independent_hash(encoded)], "sha-256")
    assert (td.MIN_VALID_DAYS, td.MAX_VALID_DAYS) == (
        standing_funding.MIN_VALID_DAYS,
        standing_funding.MAX_VALID_DAYS,
    )


def test_a_standing_funding_bound_is_exactly_amount_and_currency_in_one_currency() -> None:
    element = standing_element()
    for broken in (
        {**element, "max_amount": {"amount": "30000"}},
        {**element, "max_amount": {"amount": "30000", "currency": "JPY", "extra": "x"}},
        {**element, "max_amount": "30000"},
        {**element, "daily_amount": {"amount": "100.00", "currency": "EUR"}},
        {k: v for k, v in element.items() if k != "valid_days"},
        {**element, "amount": "30000"},
    ):
        with pytest.raises(TransactionDataError) as caught:
            td.validate_element(broken)
        assert caught.value.reason == "invalid_element"


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": "5000.0"},  # not canonical for JPY
        {"amount": "05000"},
        {"amount": "0"},
        {"currency": "XXX"},
        {"credential_ids": []},
        {"credential_ids": ["a", "a"]},
        {"credential_ids": ["bad id"]},
        {"creditor": td.Creditor("", "bank", "…1234")},
        {"creditor": td.Creditor("label\n", "bank", "…1234")},
        {"creditor": td.Creditor("x" * 121, "bank", "…1234")},
        {"remittance_reference": "not allowed: <>"},
    ],
)
def test_a_malformed_transfer_element_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(TransactionDataError) as caught:
        transfer_element(**overrides)
    assert caught.value.reason == "invalid_element"


def test_unknown_members_types_and_directions_are_refused() -> None:
    element = transfer_element()
    for broken in (
        {**element, "extra": 1},
        {k: v for k, v in element.items() if k != "creditor"},
        {**element, "type": "urn:trustanchor:transaction:value_transfer:2"},
        {**element, "creditor": {**element["creditor"], "name": "x"}},
        {**funding_element(), "direction": "sideways"},
        ["not", "an", "object"],
    ):
        with pytest.raises(TransactionDataError):
            td.validate_element(broken)


# --------------------------------------------------------------------------------- encoding


def test_encoding_is_base64url_without_padding_of_compact_utf8_json() -> None:
    element = transfer_element()
    encoded = td.encode(element)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    assert raw == json.dumps(element, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert "テスト銀行".encode() in raw  # UTF-8, not \\u escapes
    assert td.decode(encoded) == element


def test_decoding_refuses_what_we_would_not_send() -> None:
    good = td.encode(transfer_element())
    for bad in (
        good + "=",  # padding
        good.replace("-", "+"),
        "",
        None,
        base64.urlsafe_b64encode(b'{"type":1}').rstrip(b"=").decode(),
        base64.urlsafe_b64encode(b"not json").rstrip(b"=").decode(),
        # duplicate member: strict JSON
        base64.urlsafe_b64encode(b'{"type":"a","type":"b"}').rstrip(b"=").decode(),
    ):
        if bad == good:
            continue
        with pytest.raises(TransactionDataError):
            td.decode(bad)


def test_the_hash_is_over_the_string_as_sent() -> None:
    encoded = td.encode(funding_element())
    assert td.hash_of(encoded) == independent_hash(encoded)
    with pytest.raises(TransactionDataError) as caught:
        td.hash_of(encoded, "md5")
    assert caught.value.reason == "transaction_data_alg_unsupported"


def test_operation_digest_is_sha256_of_canonical_json() -> None:
    entry = {
        "type": "value_transfer",
        "instructed_amount": {"currency": "JPY", "amount": "5000"},
        "debtor_account": "acc_a",
        "creditor_account": "acc_b",
    }
    canonical = strict_json.dumps_canonical(entry).encode("utf-8")
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert td.operation_digest(entry) == expected.decode("ascii")
    assert td.operation_digest(dict(reversed(list(entry.items())))) == td.operation_digest(entry)


# ------------------------------------------------------------------------------ verification


def sent() -> list[str]:
    return [td.encode(transfer_element())]


def test_exactly_the_hashes_of_the_elements_sent_verify() -> None:
    items = [
        td.encode(transfer_element()),
        td.encode(funding_element()),
        td.encode(standing_element()),
    ]
    hashes = [independent_hash(i) for i in items]
    td.verify(items, hashes, "sha-256")
    td.verify(items, list(reversed(hashes)), "sha-256")  # each hash names its element


@pytest.mark.parametrize(
    ("hashes", "alg", "reason"),
    [
        (None, None, "transaction_data_not_signed"),
        (None, "sha-256", "transaction_data_malformed"),
        ([], "sha-256", "transaction_data_malformed"),
        ("hash", "sha-256", "transaction_data_malformed"),
        (["not base64url!"], "sha-256", "transaction_data_malformed"),
        (["AAAA"], "sha-256", "transaction_data_mismatch"),
        ("twice", "sha-256", "transaction_data_mismatch"),
        ("extra", "sha-256", "transaction_data_mismatch"),
        ("right", None, "transaction_data_alg_unsupported"),  # we stated it: required
        ("right", "sha-512", "transaction_data_alg_unsupported"),  # not one we asked for
        ("right", "SHA-256", "transaction_data_alg_unsupported"),
    ],
)
def test_anything_but_one_matching_hash_per_element_is_refused(
    hashes: Any, alg: str | None, reason: str
) -> None:
    items = sent()
    right = independent_hash(items[0])
    shapes = {
        "twice": [right, right],
        "extra": [right, independent_hash(td.encode(funding_element()))],
        "right": [right],
    }
    value = shapes.get(hashes, hashes) if isinstance(hashes, str) else hashes
    with pytest.raises(TransactionDataError) as caught:
        td.verify(items, value, alg)
    assert caught.value.reason == reason


def test_hashes_where_nothing_was_sent_are_refused() -> None:
    td.verify([], None, None)
    for hashes, alg in ((["AAAA"], None), (None, "sha-256"), (["AAAA"], "sha-256")):
        with pytest.raises(TransactionDataError) as caught:
            td.verify([], hashes, alg)
        assert caught.value.reason == "transaction_data_unexpected"


def test_our_elements_always_state_the_algorithm() -> None:
    """Both types require ``transaction_data_hashes_alg`` (so the Key Binding JWT must name its
    algorithm): an element without it is not one of ours."""
    element = {k: v for k, v in transfer_element().items() if k != "transaction_data_hashes_alg"}
    text = json.dumps(element, separators=(",", ":"), ensure_ascii=False).encode()
    encoded = base64.urlsafe_b64encode(text).rstrip(b"=").decode()
    with pytest.raises(TransactionDataError) as caught:
        td.decode(encoded)
    assert caught.value.reason == "invalid_element"


# ---------------------------------------------------------------------------------- properties

texts = st.text(
    alphabet=st.characters(blacklist_categories=("C",)), min_size=1, max_size=40
).filter(lambda s: s.isprintable())
amounts = st.integers(min_value=1, max_value=10**12).map(str)


@st.composite
def standing_elements(draw: st.DrawFn) -> dict[str, Any]:
    directions = draw(st.sets(st.sampled_from(td.DIRECTIONS), min_size=1))
    daily = draw(st.integers(min_value=1, max_value=10**12))
    return td.standing_funding_element(
        directions=[d for d in td.DIRECTIONS if d in directions],
        max_amount=str(draw(st.integers(min_value=1, max_value=daily))),
        daily_amount=str(daily),
        currency="JPY",
        valid_days=draw(st.integers(min_value=td.MIN_VALID_DAYS, max_value=td.MAX_VALID_DAYS)),
        deposit_account_reference=draw(texts),
        wallet_account_reference=draw(texts),
        credential_ids=["identity_credential"],
    )


@st.composite
def elements(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(td.TYPES))
    if kind == td.STANDING_FUNDING:
        return draw(standing_elements())
    if kind == td.VALUE_TRANSFER:
        return td.value_transfer_element(
            amount=draw(amounts),
            currency="JPY",
            creditor=td.Creditor(
                draw(texts), draw(texts), "…" + draw(st.text("abc123", min_size=4, max_size=4))
            ),
            remittance_reference=draw(
                st.none() | st.from_regex(r"[A-Z0-9-]{1,35}", fullmatch=True)
            ),
            credential_ids=["identity_credential"],
        )
    return td.funding_element(
        direction=draw(st.sampled_from(td.DIRECTIONS)),
        amount=draw(amounts),
        currency="JPY",
        deposit_account_reference=draw(texts),
        wallet_account_reference=draw(texts),
        credential_ids=["identity_credential"],
    )


@settings(max_examples=150, deadline=None)
@given(elements())
def test_encode_then_verify_round_trips(element: dict[str, Any]) -> None:
    encoded = td.encode(element)
    assert td.decode(encoded) == element
    td.verify([encoded], [td.hash_of(encoded)], "sha-256")


@settings(max_examples=150, deadline=None)
@given(elements(), st.data())
def test_changing_any_byte_of_an_element_breaks_verification(
    element: dict[str, Any], data: st.DataObject
) -> None:
    encoded = td.encode(element)
    signed = [td.hash_of(encoded)]
    raw = bytearray(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")
    assert changed != encoded
    # What the wallet signed no longer matches what is sent (or the element no longer reads).
    with pytest.raises(TransactionDataError):
        td.verify([changed], signed, "sha-256")
