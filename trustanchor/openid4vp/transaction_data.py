"""OpenID4VP 1.0 ``transaction_data``: the operation a wallet presentation authorises.

Dynamic linking (docs/DYNAMIC-LINKING.md): for a transfer, a funding movement or a standing
authorization of funding, the signed Request Object carries the operation as transaction data,
and the Key Binding JWT of the SD-JWT VC presentation signs its hash, so the login is valid for
this amount and this payee (or these bounds) only.

The protocol, as OpenID4VP 1.0 defines it:

- section 5.1 (``transaction_data`` request parameter): a non-empty array of strings, each the
  base64url encoding of a JSON object with ``type`` and ``credential_ids`` (non-empty, each the
  ``id`` of a DCQL Credential Query) and the members the type defines; a wallet must return an
  error when it does not recognise even one type (section 8.4, error ``invalid_transaction_data``
  of section 8.5);
- appendix B.3.3.1 (the SD-JWT VC profile, which our types adopt): the element may carry
  ``transaction_data_hashes_alg``, a non-empty array of hash algorithm names (IANA "Named
  Information Hash Algorithm" registry), default ``sha-256``; the Key Binding JWT carries
  ``transaction_data_hashes``, a non-empty array of base64url hashes, each computed over the
  string *received* in ``transaction_data`` (no base64url decoding before hashing), and
  ``transaction_data_hashes_alg`` (a string), required when the request stated the parameter.

Our three types, each element a JSON object with exactly these members (the amount a canonical
decimal string as in ``authorization_details``; accounts only as masked references):

``urn:trustanchor:transaction:value_transfer:1``
    ``type``, ``credential_ids``, ``transaction_data_hashes_alg``, ``amount``, ``currency``,
    ``creditor`` (``label``: the label the payee's intermediary registered, shortened;
    ``intermediary``: that intermediary's name; ``account_reference``: the creditor account,
    masked — the words of ``services/payee.py``, which the consent page shows), and
    ``remittance_reference`` when the transfer has one.

``urn:trustanchor:transaction:funding:1``
    ``type``, ``credential_ids``, ``transaction_data_hashes_alg``, ``direction``
    (``deposit_to_wallet`` or ``wallet_to_deposit``), ``amount``, ``currency``,
    ``deposit_account_reference``, ``wallet_account_reference``.

``urn:trustanchor:transaction:standing_funding:1``
    ``type``, ``credential_ids``, ``transaction_data_hashes_alg``, ``directions`` (one or both
    directions, in the order of :data:`DIRECTIONS`), ``max_amount`` and ``daily_amount`` (each
    exactly ``amount`` and ``currency``; one currency, ``max_amount`` not above
    ``daily_amount``), ``valid_days`` (an integer from 1 to 366),
    ``deposit_account_reference``, ``wallet_account_reference``.

We always state ``transaction_data_hashes_alg`` as ``["sha-256"]`` (so the Key Binding JWT must
name its algorithm) and accept no other algorithm. :func:`verify` is strict: exactly as many
hashes as elements, each element's hash present exactly once, nothing else, the stated
algorithm; any other answer is refused with one of :data:`REASONS`.

This module is pure: no storage, no clock. ``operation_digest`` names the authorization_details
entry an element was built from, so the login can record which operations its presentation
signed (``Authentication.signed_operations``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from trustanchor import digests, strict_json
from trustanchor.domain.money import MINOR_UNITS, Amount, MoneyError, parse_amount

VALUE_TRANSFER: Final = "urn:trustanchor:transaction:value_transfer:1"
FUNDING: Final = "urn:trustanchor:transaction:funding:1"
STANDING_FUNDING: Final = "urn:trustanchor:transaction:standing_funding:1"
TYPES: Final = (VALUE_TRANSFER, FUNDING, STANDING_FUNDING)
SHA_256: Final = "sha-256"
# IANA "Named Information Hash Algorithm" names we can compute. Only sha-256 is ever stated.
_HASHES: Final[Mapping[str, Callable[[bytes], Any]]] = {SHA_256: hashlib.sha256}
STATED_ALGS: Final = (SHA_256,)
DIRECTIONS: Final = ("deposit_to_wallet", "wallet_to_deposit")
# valid_days of a standing authorization (oauth/standing_funding.py: MIN/MAX_VALID_DAYS).
MIN_VALID_DAYS: Final = 1
MAX_VALID_DAYS: Final = 366

MAX_ELEMENTS = 4
MAX_ELEMENT_CHARS = 4096
_MAX_TEXT = 120
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_REFERENCE = re.compile(r"[A-Za-z0-9/?:().,'+ -]{1,35}")

REASONS: dict[str, str] = {
    "transaction_data_not_signed": "Your wallet did not sign the payment it was shown.",
    "transaction_data_mismatch": "Your wallet signed a different payment from the one requested.",
    "transaction_data_alg_unsupported": "Your wallet signed the payment in a way we do not accept.",
    "transaction_data_malformed": "Your wallet's signature of the payment could not be read.",
    "transaction_data_unexpected": "Your wallet signed a payment that was not requested.",
}


class TransactionDataError(ValueError):
    """Transaction data cannot be built, read or verified. ``reason`` is a key of
    :data:`REASONS` for a refused presentation, ``invalid_element`` for a malformed element."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class Creditor:
    """The payee in the words of ``services/payee.py``: registered label, intermediary name,
    masked account reference."""

    label: str
    intermediary: str
    account_reference: str


# -- building ------------------------------------------------------------------------------------


def value_transfer_element(
    *,
    amount: str,
    currency: str,
    creditor: Creditor,
    remittance_reference: str | None,
    credential_ids: Sequence[str],
) -> dict[str, Any]:
    """The element for a transfer (validated: what we send is what a wallet may check)."""
    element: dict[str, Any] = {
        "type": VALUE_TRANSFER,
        "credential_ids": list(credential_ids),
        "transaction_data_hashes_alg": list(STATED_ALGS),
        "amount": amount,
        "currency": currency,
        "creditor": {
            "label": creditor.label,
            "intermediary": creditor.intermediary,
            "account_reference": creditor.account_reference,
        },
    }
    if remittance_reference is not None:
        element["remittance_reference"] = remittance_reference
    return validate_element(element)


def funding_element(
    *,
    direction: str,
    amount: str,
    currency: str,
    deposit_account_reference: str,
    wallet_account_reference: str,
    credential_ids: Sequence[str],
) -> dict[str, Any]:
    """The element for a funding movement between the holder's own accounts."""
    return validate_element(
        {
            "type": FUNDING,
            "credential_ids": list(credential_ids),
            "transaction_data_hashes_alg": list(STATED_ALGS),
            "direction": direction,
            "amount": amount,
            "currency": currency,
            "deposit_account_reference": deposit_account_reference,
            "wallet_account_reference": wallet_account_reference,
        }
    )


def standing_funding_element(
    *,
    directions: Sequence[str],
    max_amount: str,
    daily_amount: str,
    currency: str,
    valid_days: int,
    deposit_account_reference: str,
    wallet_account_reference: str,
    credential_ids: Sequence[str],
) -> dict[str, Any]:
    """The element for a standing authorization of funding: the bounds the person approves
    once (per movement, per day, how many days) between their two accounts."""
    return validate_element(
        {
            "type": STANDING_FUNDING,
            "credential_ids": list(credential_ids),
            "transaction_data_hashes_alg": list(STATED_ALGS),
            "directions": list(directions),
            "max_amount": {"amount": max_amount, "currency": currency},
            "daily_amount": {"amount": daily_amount, "currency": currency},
            "valid_days": valid_days,
            "deposit_account_reference": deposit_account_reference,
            "wallet_account_reference": wallet_account_reference,
        }
    )


def encode(element: Mapping[str, Any]) -> str:
    """base64url (no padding) of the compact UTF-8 JSON of a valid element: the exact string
    sent, stored and hashed."""
    checked = validate_element(element)
    text = json.dumps(checked, separators=(",", ":"), ensure_ascii=False)
    encoded = digests.b64url_encode(text.encode("utf-8"))
    if len(encoded) > MAX_ELEMENT_CHARS:
        raise TransactionDataError("invalid_element", "element too large")
    return encoded


def decode(encoded: Any) -> dict[str, Any]:
    """The element a string carries (strict JSON, a valid element of one of our types), for a
    wallet and for checking what we send. Raises TransactionDataError("invalid_element")."""
    if not isinstance(encoded, str) or not 0 < len(encoded) <= MAX_ELEMENT_CHARS:
        raise TransactionDataError("invalid_element", "not a string of the allowed size")
    try:
        raw = digests.b64url_decode(encoded)
        if digests.b64url_encode(raw) != encoded:
            raise ValueError("not canonical base64url")
        element = strict_json.loads(raw, max_depth=4, max_bytes=MAX_ELEMENT_CHARS)
    except (ValueError, strict_json.StrictJSONError) as exc:
        raise TransactionDataError("invalid_element", "not base64url JSON") from exc
    return validate_element(element)


def hash_of(encoded: str, alg: str = SHA_256) -> str:
    """base64url of the hash of the string as sent (its ASCII bytes, not decoded)."""
    function = _HASHES.get(alg)
    if function is None:
        raise TransactionDataError("transaction_data_alg_unsupported", "unknown algorithm")
    return digests.b64url_encode(function(encoded.encode("ascii")).digest())


def operation_digest(entry: Mapping[str, Any]) -> str:
    """sha-256 (base64url) of the canonical JSON of an authorization_details entry: the name of
    the operation in ``Authentication.signed_operations``."""
    return digests.sha256_b64url(strict_json.dumps_canonical(entry).encode("utf-8"))


# -- validation of one element ------------------------------------------------------------------


def validate_element(element: Any) -> dict[str, Any]:
    """The element itself when it is one of our types with exactly its members, else
    TransactionDataError("invalid_element")."""
    if not isinstance(element, Mapping):
        raise _invalid("an element is a JSON object")
    kind = element.get("type")
    if kind == VALUE_TRANSFER:
        _members(element, ("amount", "currency", "creditor"), ("remittance_reference",))
        _common(element)
        _money(element)
        creditor = element["creditor"]
        if not isinstance(creditor, Mapping) or set(creditor) != {
            "label",
            "intermediary",
            "account_reference",
        }:
            raise _invalid("creditor has label, intermediary and account_reference")
        for name in ("label", "intermediary", "account_reference"):
            _text(creditor[name], f"creditor.{name}")
        if "remittance_reference" in element:
            reference = element["remittance_reference"]
            if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
                raise _invalid("remittance_reference")
    elif kind == FUNDING:
        _members(
            element,
            (
                "direction",
                "amount",
                "currency",
                "deposit_account_reference",
                "wallet_account_reference",
            ),
            (),
        )
        _common(element)
        _money(element)
        if element["direction"] not in DIRECTIONS:
            raise _invalid("direction")
        _text(element["deposit_account_reference"], "deposit_account_reference")
        _text(element["wallet_account_reference"], "wallet_account_reference")
    elif kind == STANDING_FUNDING:
        _members(
            element,
            (
                "directions",
                "max_amount",
                "daily_amount",
                "valid_days",
                "deposit_account_reference",
                "wallet_account_reference",
            ),
            (),
        )
        _common(element)
        directions = element["directions"]
        if (
            not isinstance(directions, list)
            or not directions
            or any(not isinstance(d, str) for d in directions)
            or directions != [d for d in DIRECTIONS if d in directions]
        ):
            raise _invalid("directions: one or both directions, each once, in order")
        max_amount = _bound(element["max_amount"], "max_amount")
        daily_amount = _bound(element["daily_amount"], "daily_amount")
        if max_amount.currency != daily_amount.currency or max_amount > daily_amount:
            raise _invalid("max_amount is in daily_amount's currency and not above it")
        days = element["valid_days"]
        if type(days) is not int or not MIN_VALID_DAYS <= days <= MAX_VALID_DAYS:
            raise _invalid(f"valid_days is an integer from {MIN_VALID_DAYS} to {MAX_VALID_DAYS}")
        _text(element["deposit_account_reference"], "deposit_account_reference")
        _text(element["wallet_account_reference"], "wallet_account_reference")
    else:
        raise _invalid("unknown type")
    return dict(element)


def _members(
    element: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    base = ("type", "credential_ids", "transaction_data_hashes_alg")
    names = set(element)
    missing = [n for n in (*base, *required) if n not in names]
    extra = names - set(base) - set(required) - set(optional)
    if missing or extra:
        raise _invalid("members differ from the type's")


def _common(element: Mapping[str, Any]) -> None:
    ids = element["credential_ids"]
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, str) and _CREDENTIAL_ID.fullmatch(i) for i in ids)
        or len(set(ids)) != len(ids)
    ):
        raise _invalid("credential_ids is a non-empty array of credential query ids")
    algs = element["transaction_data_hashes_alg"]
    if (
        not isinstance(algs, list)
        or not algs
        or not all(isinstance(a, str) and 0 < len(a) <= 32 for a in algs)
        or len(set(algs)) != len(algs)
    ):
        raise _invalid("transaction_data_hashes_alg is a non-empty array of names")


def _money(element: Mapping[str, Any]) -> Amount:
    amount, currency = element["amount"], element["currency"]
    if not isinstance(amount, str) or not isinstance(currency, str) or currency not in MINOR_UNITS:
        raise _invalid("amount and currency")
    try:
        parsed = parse_amount(amount, currency)
    except MoneyError as exc:
        raise _invalid("amount") from exc
    if str(parsed) != amount:
        raise _invalid("amount is not in canonical form")
    return parsed


def _bound(value: Any, name: str) -> Amount:
    """A standing authorization's bound: exactly ``amount`` and ``currency``."""
    if not isinstance(value, Mapping) or set(value) != {"amount", "currency"}:
        raise _invalid(f"{name} has amount and currency")
    return _money(value)


def _text(value: Any, name: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT or not value.isprintable():
        raise _invalid(f"{name} is 1-{_MAX_TEXT} printable characters")


def _invalid(detail: str) -> TransactionDataError:
    return TransactionDataError("invalid_element", detail)


# -- verification of a Key Binding JWT ----------------------------------------------------------


def verify(sent: Sequence[str], hashes: Sequence[str] | None, alg: str | None) -> None:
    """Check the Key Binding JWT's ``transaction_data_hashes`` (``hashes``) and
    ``transaction_data_hashes_alg`` (``alg``), None when absent, against the exact strings
    ``sent`` in the request. Returns only when every element's hash is there exactly once and
    nothing else is (order is not significant: each hash names its element)."""
    if not sent:
        if hashes is not None or alg is not None:
            raise TransactionDataError("transaction_data_unexpected", "no transaction data sent")
        return
    if hashes is None:
        if alg is not None:
            raise TransactionDataError("transaction_data_malformed", "an algorithm, no hashes")
        raise TransactionDataError("transaction_data_not_signed", "no transaction_data_hashes")
    if (
        isinstance(hashes, str)
        or not hashes
        or not all(
            isinstance(h, str) and 0 < len(h) <= 128 and _B64URL.fullmatch(h) for h in hashes
        )
    ):
        raise TransactionDataError("transaction_data_malformed", "hashes are base64url strings")
    used = _agreed_alg([decode(item) for item in sent], alg)
    expected = [hash_of(item, used) for item in sent]
    if len(hashes) != len(expected):
        raise TransactionDataError(
            "transaction_data_mismatch", f"{len(hashes)} hashes for {len(expected)} elements"
        )
    for value in expected:
        if sum(1 for h in hashes if digests.equal(h, value)) != 1:
            raise TransactionDataError("transaction_data_mismatch", "an element is not signed once")


def _agreed_alg(elements: Sequence[Mapping[str, Any]], alg: str | None) -> str:
    """The algorithm the hashes must use: the one the Key Binding JWT states. Every element of
    ours states ``transaction_data_hashes_alg``, so the claim is required (appendix B.3.3.1);
    it must be in every element's list and be one we compute."""
    if alg is None:
        raise TransactionDataError(
            "transaction_data_alg_unsupported", "transaction_data_hashes_alg is required"
        )
    if not isinstance(alg, str):
        raise TransactionDataError("transaction_data_malformed", "the algorithm is a string")
    if any(alg not in element["transaction_data_hashes_alg"] for element in elements):
        raise TransactionDataError("transaction_data_alg_unsupported", "not a requested one")
    if alg not in _HASHES:
        raise TransactionDataError("transaction_data_alg_unsupported", "not one we compute")
    return alg


__all__ = [
    "DIRECTIONS",
    "FUNDING",
    "MAX_VALID_DAYS",
    "MIN_VALID_DAYS",
    "REASONS",
    "SHA_256",
    "STANDING_FUNDING",
    "TYPES",
    "VALUE_TRANSFER",
    "Creditor",
    "TransactionDataError",
    "decode",
    "encode",
    "funding_element",
    "hash_of",
    "operation_digest",
    "standing_funding_element",
    "validate_element",
    "value_transfer_element",
    "verify",
]
