"""The ``standing_funding`` authorization_details type: a holder approves, once, automatic funding
movements between their own bank deposit account and CBDC wallet, over the link that joins them,
within bounds; the client then obtains one movement token at a time with its refresh token.

    {"type": "standing_funding",
     "directions": ["deposit_to_wallet"],           # or ["wallet_to_deposit"], or both
     "deposit_account": "acc_…", "wallet_account": "acc_…",
     "max_amount": {"currency": "JPY", "amount": "50000"},       # per movement
     "daily_amount": {"currency": "JPY", "amount": "100000"},    # all movements of one day
     "valid_days": 90,                              # 1 to 366
     "link_id": "lnk_…",                            # optional in a request; always granted
     "standing_authorization_id": "sta_…",          # never in a request; always granted
     "expires_at": 1798761600}                      # never in a request; always granted

``directions`` holds one or both of :data:`trustanchor.oauth.funding.DIRECTIONS`, each at most
once, in any order; the normalised entry lists them in that tuple's order. Both amounts follow the
rules of ``value_transfer`` (decimal *strings*, canonical text) in one currency, and
``max_amount`` must not exceed ``daily_amount``. The two accounts must differ. ``valid_days`` is
a JSON integer (not a boolean, not ``90.0``).

``standing_authorization_id`` and ``expires_at`` (seconds since the epoch) are the service's: it
assigns them when it grants the entry, so a request carrying either is refused
(``validate(entry)``), and a granted entry must carry both and ``link_id``
(``validate(entry, granted=True)``). :meth:`StandingFundingDetail.from_entry` reads either form.
Which accounts are whose, the link, the policy's bounds (``standing_funding_max_days``), the
expiry and the daily total are the service's business; this module checks the shape, and
:meth:`StandingFundingDetail.covers` says whether one concrete ``funding`` movement lies within
the per-movement bounds. The JSON Schema (of a request) is ``schemas/standing_funding.schema.json``
(docs/AUTHORIZATION-DETAILS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
from trustanchor.oauth.funding import DIRECTIONS, Direction, FundingDetail

TYPE = "standing_funding"
MIN_VALID_DAYS = 1
MAX_VALID_DAYS = 366
MAX_EXPIRES_AT = 253_402_300_799
"""9999-12-31T23:59:59Z: the last second a calendar date can name."""

_MEMBERS = (
    "type",
    "directions",
    "deposit_account",
    "wallet_account",
    "max_amount",
    "daily_amount",
    "valid_days",
)
_GRANTED = ("link_id", "standing_authorization_id", "expires_at")
_SERVICE_ONLY = ("standing_authorization_id", "expires_at")
_BAD_DIRECTION = 'directions may hold only "deposit_to_wallet" and "wallet_to_deposit"'

__all__ = [
    "MAX_EXPIRES_AT",
    "MAX_VALID_DAYS",
    "MIN_VALID_DAYS",
    "STANDING_AUTHORIZATION_ID",
    "TYPE",
    "StandingFundingDetail",
    "find",
    "validate",
]


def validate(entry: Mapping[str, Any], *, granted: bool = False) -> dict[str, Any]:
    """The normalised entry (members in a fixed order, directions in canonical order, canonical
    amount text), or InvalidAuthorizationDetails.

    ``granted=False`` (a request, as PAR receives it): ``link_id`` is optional, and
    ``standing_authorization_id`` / ``expires_at`` are refused. ``granted=True`` (an entry the
    service granted): all three are required."""
    if granted:
        exact_members(entry, where="", required=_MEMBERS + _GRANTED)
    else:
        exact_members(entry, where="", required=_MEMBERS, optional=_GRANTED)
        for name in _SERVICE_ONLY:
            if name in entry:
                raise InvalidAuthorizationDetails(
                    f"{name} is set by the service and is not allowed in a request"
                )
    if entry["type"] != TYPE:
        raise InvalidAuthorizationDetails(f"type must be {TYPE!r}")
    directions = _directions(entry["directions"])
    deposit = account_member(entry, "deposit_account")
    wallet = account_member(entry, "wallet_account")
    if deposit == wallet:
        raise InvalidAuthorizationDetails("deposit_account and wallet_account must differ")
    max_amount = amount_member(entry, "max_amount")
    daily_amount = amount_member(entry, "daily_amount")
    if max_amount.currency != daily_amount.currency:
        raise InvalidAuthorizationDetails("max_amount and daily_amount must be in one currency")
    if max_amount > daily_amount:
        raise InvalidAuthorizationDetails("max_amount must not exceed daily_amount")
    valid_days = _integer(entry, "valid_days", MIN_VALID_DAYS, MAX_VALID_DAYS)
    normalised: dict[str, Any] = {
        "type": TYPE,
        "directions": list(directions),
        "deposit_account": deposit,
        "wallet_account": wallet,
        "max_amount": {"currency": max_amount.currency, "amount": str(max_amount)},
        "daily_amount": {"currency": daily_amount.currency, "amount": str(daily_amount)},
        "valid_days": valid_days,
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
    if "expires_at" in entry:
        normalised["expires_at"] = _integer(entry, "expires_at", 1, MAX_EXPIRES_AT)
    return normalised


def _directions(value: Any) -> tuple[Direction, ...]:
    if not isinstance(value, list):
        raise InvalidAuthorizationDetails("directions must be an array")
    if not value:
        raise InvalidAuthorizationDetails("directions must not be empty")
    for item in value:
        if not isinstance(item, str):
            raise InvalidAuthorizationDetails("directions must hold strings")
        if item not in DIRECTIONS:
            raise InvalidAuthorizationDetails(_BAD_DIRECTION)
    if len(set(value)) != len(value):
        raise InvalidAuthorizationDetails("directions must not repeat a direction")
    return tuple(direction for direction in DIRECTIONS if direction in value)


def _integer(entry: Mapping[str, Any], name: str, low: int, high: int) -> int:
    """A JSON integer (``True`` and ``90.0`` are not) from ``low`` to ``high``."""
    value = entry[name]
    if type(value) is not int:
        raise InvalidAuthorizationDetails(f"{name} must be an integer")
    if not low <= value <= high:
        raise InvalidAuthorizationDetails(f"{name} must be from {low} to {high}")
    return value


def _is_granted(entry: Mapping[str, Any]) -> bool:
    """An entry naming either service-only member claims to be granted, and is read as one (so
    a half-granted entry is refused for what it lacks)."""
    return any(name in entry for name in _SERVICE_ONLY)


@dataclass(frozen=True, slots=True)
class StandingFundingDetail:
    """A validated ``standing_funding`` entry, requested or granted, for the policy and the
    services. ``link_id``, ``standing_authorization_id`` and ``expires_at`` are ``None`` in a
    request (``link_id`` may be set), and all set in a granted entry."""

    directions: tuple[Direction, ...]
    deposit_account: str
    wallet_account: str
    max_amount: Amount
    daily_amount: Amount
    valid_days: int
    link_id: str | None = None
    standing_authorization_id: str | None = None
    expires_at: int | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> StandingFundingDetail:
        """From a request entry or a granted one, validated again (a stored entry is not
        trusted blindly). An entry with ``standing_authorization_id`` or ``expires_at`` is read
        as granted and must then carry all three granted members."""
        normalised = validate(entry, granted=_is_granted(entry))
        max_amount = normalised["max_amount"]
        daily_amount = normalised["daily_amount"]
        return cls(
            directions=tuple(normalised["directions"]),
            deposit_account=normalised["deposit_account"],
            wallet_account=normalised["wallet_account"],
            max_amount=parse_amount(max_amount["amount"], max_amount["currency"]),
            daily_amount=parse_amount(daily_amount["amount"], daily_amount["currency"]),
            valid_days=normalised["valid_days"],
            link_id=normalised.get("link_id"),
            standing_authorization_id=normalised.get("standing_authorization_id"),
            expires_at=normalised.get("expires_at"),
        )

    def to_entry(self) -> dict[str, Any]:
        """The normalised entry (validated: a detail that breaks a rule raises)."""
        entry: dict[str, Any] = {
            "type": TYPE,
            "directions": list(self.directions),
            "deposit_account": self.deposit_account,
            "wallet_account": self.wallet_account,
            "max_amount": {"currency": self.max_amount.currency, "amount": str(self.max_amount)},
            "daily_amount": {
                "currency": self.daily_amount.currency,
                "amount": str(self.daily_amount),
            },
            "valid_days": self.valid_days,
        }
        if self.link_id is not None:
            entry["link_id"] = self.link_id
        if self.standing_authorization_id is not None:
            entry["standing_authorization_id"] = self.standing_authorization_id
        if self.expires_at is not None:
            entry["expires_at"] = self.expires_at
        return validate(entry, granted=_is_granted(entry))

    @property
    def granted(self) -> bool:
        """Whether this is a granted entry (it names its standing authorization)."""
        return self.standing_authorization_id is not None

    def covers(self, movement: FundingDetail) -> bool:
        """Whether ``movement`` lies within this authorization's per-movement bounds: the same
        deposit and wallet accounts, a direction among ``directions``, the same currency, an
        amount of at most ``max_amount``, a ``link_id`` that is absent or this one's, and a
        ``standing_authorization_id`` that is absent or this one's.

        Neither time nor totals: the expiry, the daily total and whether the link and the
        authorization are still active are the service's checks when it mints the movement."""
        return (
            movement.deposit_account == self.deposit_account
            and movement.wallet_account == self.wallet_account
            and movement.direction in self.directions
            and movement.amount.currency == self.max_amount.currency
            and movement.amount <= self.max_amount
            and (movement.link_id is None or movement.link_id == self.link_id)
            and (
                movement.standing_authorization_id is None
                or movement.standing_authorization_id == self.standing_authorization_id
            )
        )


def find(details: Sequence[Mapping[str, Any]]) -> StandingFundingDetail | None:
    """The ``standing_funding`` entry of a request or grant, if any (two of them are refused)."""
    entry = single_entry(details, TYPE)
    return None if entry is None else StandingFundingDetail.from_entry(entry)
