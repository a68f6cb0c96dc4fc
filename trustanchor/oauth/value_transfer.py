"""The ``value_transfer`` authorization_details type: move an instructed amount from a debtor
account to a creditor account.

    {"type": "value_transfer",
     "instructed_amount": {"currency": "JPY", "amount": "5000"},
     "debtor_account": "acc_…", "creditor_account": "acc_…",
     "remittance_reference": "INV-2026-0001"}                  # optional

The amount is a decimal *string* read by :func:`trustanchor.domain.money.parse_amount` (no sign,
exponent or JSON number; no more decimals than the currency has; > 0) and normalised to its
canonical text (``"12.5"`` EUR becomes ``"12.50"``), so that the token, the audit digest and the
refresh comparison all see one spelling. Debtor and creditor must differ. The remittance
reference uses the SWIFT "x" character set, 1 to 35 characters. The JSON Schema is
``schemas/value_transfer.schema.json`` (docs/AUTHORIZATION-DETAILS.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustanchor.domain.money import Amount, parse_amount
from trustanchor.oauth.detail_members import (
    account_member,
    amount_member,
    exact_members,
    single_entry,
    string_member,
)
from trustanchor.oauth.errors import InvalidAuthorizationDetails

TYPE = "value_transfer"
REMITTANCE_REFERENCE = re.compile(r"[A-Za-z0-9/?:().,'+ -]{1,35}")
_MEMBERS = ("type", "instructed_amount", "debtor_account", "creditor_account")
_OPTIONAL = ("remittance_reference",)


def validate(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised entry (members in a fixed order, canonical amount text), or
    InvalidAuthorizationDetails."""
    exact_members(entry, where="", required=_MEMBERS, optional=_OPTIONAL)
    if entry["type"] != TYPE:
        raise InvalidAuthorizationDetails(f"type must be {TYPE!r}")
    amount = amount_member(entry, "instructed_amount")
    debtor = account_member(entry, "debtor_account")
    creditor = account_member(entry, "creditor_account")
    if debtor == creditor:
        raise InvalidAuthorizationDetails("debtor_account and creditor_account must differ")
    normalised: dict[str, Any] = {
        "type": TYPE,
        "instructed_amount": {"currency": amount.currency, "amount": str(amount)},
        "debtor_account": debtor,
        "creditor_account": creditor,
    }
    if "remittance_reference" in entry:
        normalised["remittance_reference"] = string_member(
            entry,
            "remittance_reference",
            REMITTANCE_REFERENCE,
            "1 to 35 characters of A-Z a-z 0-9 / ? : ( ) . , ' + - and space",
        )
    return normalised


@dataclass(frozen=True, slots=True)
class ValueTransferDetail:
    """A validated ``value_transfer`` entry, for the policy and the services."""

    amount: Amount
    debtor_account: str
    creditor_account: str
    remittance_reference: str | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> ValueTransferDetail:
        """From an entry, validated again (a stored entry is not trusted blindly)."""
        normalised = validate(entry)
        instructed = normalised["instructed_amount"]
        return cls(
            amount=parse_amount(instructed["amount"], instructed["currency"]),
            debtor_account=normalised["debtor_account"],
            creditor_account=normalised["creditor_account"],
            remittance_reference=normalised.get("remittance_reference"),
        )

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": TYPE,
            "instructed_amount": {"currency": self.amount.currency, "amount": str(self.amount)},
            "debtor_account": self.debtor_account,
            "creditor_account": self.creditor_account,
        }
        if self.remittance_reference is not None:
            entry["remittance_reference"] = self.remittance_reference
        return validate(entry)


def find(details: Sequence[Mapping[str, Any]]) -> ValueTransferDetail | None:
    """The ``value_transfer`` entry of a request or grant, if any (two of them are refused)."""
    entry = single_entry(details, TYPE)
    return None if entry is None else ValueTransferDetail.from_entry(entry)
