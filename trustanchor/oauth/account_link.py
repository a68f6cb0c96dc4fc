"""The ``account_link`` authorization_details type: link (or unlink) a holder's bank deposit
account and CBDC wallet.

    {"type": "account_link", "actions": ["link"],
     "deposit_account": "acc_…", "wallet_account": "acc_…"}

Exactly one action, ``link`` or ``unlink``; both accounts are our opaque account ids and must
differ. Which kind each account really is, and whose, is the policy's business (it needs
storage); this module only checks the shape. The JSON Schema is
``schemas/account_link.schema.json`` (docs/AUTHORIZATION-DETAILS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trustanchor.oauth.detail_members import account_member, exact_members, single_entry
from trustanchor.oauth.errors import InvalidAuthorizationDetails

TYPE = "account_link"
ACTIONS: tuple[str, ...] = ("link", "unlink")
Action = Literal["link", "unlink"]
_MEMBERS = ("type", "actions", "deposit_account", "wallet_account")


def validate(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised entry (members in a fixed order), or InvalidAuthorizationDetails."""
    exact_members(entry, where="", required=_MEMBERS)
    if entry["type"] != TYPE:
        raise InvalidAuthorizationDetails(f"type must be {TYPE!r}")
    action = _action(entry["actions"])
    deposit = account_member(entry, "deposit_account")
    wallet = account_member(entry, "wallet_account")
    if deposit == wallet:
        raise InvalidAuthorizationDetails("deposit_account and wallet_account must differ")
    return {
        "type": TYPE,
        "actions": [action],
        "deposit_account": deposit,
        "wallet_account": wallet,
    }


def _action(actions: Any) -> Action:
    if not isinstance(actions, list):
        raise InvalidAuthorizationDetails("actions must be an array")
    if len(actions) != 1:
        raise InvalidAuthorizationDetails("actions must hold exactly one action")
    if actions[0] == "link":
        return "link"
    if actions[0] == "unlink":
        return "unlink"
    raise InvalidAuthorizationDetails('actions[0] must be "link" or "unlink"')


@dataclass(frozen=True, slots=True)
class AccountLinkDetail:
    """A validated ``account_link`` entry, for the policy and the services."""

    action: Action
    deposit_account: str
    wallet_account: str

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> AccountLinkDetail:
        """From an entry, validated again (a stored entry is not trusted blindly)."""
        normalised = validate(entry)
        return cls(
            action=normalised["actions"][0],
            deposit_account=normalised["deposit_account"],
            wallet_account=normalised["wallet_account"],
        )

    def to_entry(self) -> dict[str, Any]:
        return validate(
            {
                "type": TYPE,
                "actions": [self.action],
                "deposit_account": self.deposit_account,
                "wallet_account": self.wallet_account,
            }
        )


def find(details: Sequence[Mapping[str, Any]]) -> AccountLinkDetail | None:
    """The ``account_link`` entry of a request or grant, if any (two of them are refused)."""
    entry = single_entry(details, TYPE)
    return None if entry is None else AccountLinkDetail.from_entry(entry)
