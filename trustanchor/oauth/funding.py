"""The ``funding`` authorization_details type: move an amount between one holder's own bank
deposit account and CBDC wallet, over an existing active link, in either direction.

    {"type": "funding",
     "direction": "deposit_to_wallet",                          # or "wallet_to_deposit"
     "instructed_amount": {"currency": "JPY", "amount": "10000"},
     "deposit_account": "acc_…", "wallet_account": "acc_…",
     "link_id": "lnk_…",                                        # optional in a request
     "standing_authorization_id": "sta_…"}                      # the service's (see below)

The amount follows the rules of ``value_transfer`` (a decimal *string*, normalised to the
currency's canonical text) and is read by the same code. The two accounts must differ. The
``link_id`` may be left out of a request; a granted entry always carries it, filled in by the
service from the active link that joins the two accounts, so the token names the concrete
movement and the link it relies on. Which accounts are whose, and whether the link exists and is
active, is the policy's business (it needs storage); this module only checks the shape.

``standing_authorization_id`` is the service's member: it is set only in the entry of a movement
token minted from a standing authorization (:mod:`trustanchor.oauth.standing_funding`), naming
that authorization. The validator accepts it wherever it appears (so a token request naming a
movement may repeat it); whether it names the standing authorization the request is made under
is the token endpoint's business. The JSON Schema is ``schemas/funding.schema.json``
(docs/AUTHORIZATION-DETAILS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trustanchor.domain.accounts import LINK_ID
from trustanchor.domain.money import Amount, parse_amount
from trustanchor.oauth.detail_members import (
    STANDING_AUTHORIZATION_ID,
    account_member,
    amount_member,
    exact_members,
    single_entry,
    string_member,
)
from trustanchor.oauth.errors import InvalidAuthorizationDetails

TYPE = "funding"
Direction = Literal["deposit_to_wallet", "wallet_to_deposit"]
DIRECTIONS: tuple[Direction, ...] = ("deposit_to_wallet", "wallet_to_deposit")
_MEMBERS = ("type", "direction", "instructed_amount", "deposit_account", "wallet_account")
_OPTIONAL = ("link_id", "standing_authorization_id")


def validate(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised entry (members in a fixed order, canonical amount text), or
    InvalidAuthorizationDetails."""
    exact_members(entry, where="", required=_MEMBERS, optional=_OPTIONAL)
    if entry["type"] != TYPE:
        raise InvalidAuthorizationDetails(f"type must be {TYPE!r}")
    direction = _direction(entry["direction"])
    # One reader of amounts for every type, so a funding amount is refused for exactly the
    # reasons (and with exactly the descriptions) a transfer amount is.
    amount = amount_member(entry, "instructed_amount")
    deposit = account_member(entry, "deposit_account")
    wallet = account_member(entry, "wallet_account")
    if deposit == wallet:
        raise InvalidAuthorizationDetails("deposit_account and wallet_account must differ")
    normalised: dict[str, Any] = {
        "type": TYPE,
        "direction": direction,
        "instructed_amount": {"currency": amount.currency, "amount": str(amount)},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }
    if "link_id" in entry:
        normalised["link_id"] = string_member(entry, "link_id", LINK_ID, "a link id (lnk_…)")
    if "standing_authorization_id" in entry:
        normalised["standing_authorization_id"] = string_member(
            entry,
            "standing_authorization_id",
            STANDING_AUTHORIZATION_ID,
            "a standing authorization id (sta_…)",
        )
    return normalised


def _direction(direction: Any) -> Direction:
    if not isinstance(direction, str):
        raise InvalidAuthorizationDetails("direction must be a string")
    if direction == "deposit_to_wallet":
        return "deposit_to_wallet"
    if direction == "wallet_to_deposit":
        return "wallet_to_deposit"
    raise InvalidAuthorizationDetails(
        'direction must be "deposit_to_wallet" or "wallet_to_deposit"'
    )


@dataclass(frozen=True, slots=True)
class FundingDetail:
    """A validated ``funding`` entry, for the policy, the services and the ledger."""

    direction: Direction
    amount: Amount
    deposit_account: str
    wallet_account: str
    link_id: str | None = None
    standing_authorization_id: str | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> FundingDetail:
        """From an entry, validated again (a stored entry is not trusted blindly)."""
        normalised = validate(entry)
        instructed = normalised["instructed_amount"]
        return cls(
            direction=normalised["direction"],
            amount=parse_amount(instructed["amount"], instructed["currency"]),
            deposit_account=normalised["deposit_account"],
            wallet_account=normalised["wallet_account"],
            link_id=normalised.get("link_id"),
            standing_authorization_id=normalised.get("standing_authorization_id"),
        )

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": TYPE,
            "direction": self.direction,
            "instructed_amount": {"currency": self.amount.currency, "amount": str(self.amount)},
            "deposit_account": self.deposit_account,
            "wallet_account": self.wallet_account,
        }
        if self.link_id is not None:
            entry["link_id"] = self.link_id
        if self.standing_authorization_id is not None:
            entry["standing_authorization_id"] = self.standing_authorization_id
        return validate(entry)

    @property
    def debtor_account(self) -> str:
        """The account the value leaves."""
        if self.direction == "deposit_to_wallet":
            return self.deposit_account
        return self.wallet_account

    @property
    def creditor_account(self) -> str:
        """The account the value reaches."""
        if self.direction == "deposit_to_wallet":
            return self.wallet_account
        return self.deposit_account


def find(details: Sequence[Mapping[str, Any]]) -> FundingDetail | None:
    """The ``funding`` entry of a request or grant, if any (two of them are refused)."""
    entry = single_entry(details, TYPE)
    return None if entry is None else FundingDetail.from_entry(entry)
