"""Well-formed authorization_details entries for tests, and a way to spoil one member.

``transfer(amount="1e9")`` replaces a member, ``transfer(remittance_reference=OMIT)`` drops it;
``instructed_amount`` members are reached with ``currency=`` and ``amount=``."""

from __future__ import annotations

from typing import Any, Final

DEBTOR: Final = "acc_debtorAAAAAAAAAAAAAA"
CREDITOR: Final = "acc_creditorBBBBBBBBBBBB"
DEPOSIT: Final = "acc_deposit-CCCCCCCCCCCC"
WALLET: Final = "acc_wallet_DDDDDDDDDDDDD"
LINK_ID: Final = "lnk_linkEEEEEEEEEEEEEEEE"
STANDING_ID: Final = "sta_standingFFFFFFFFFFFF"
EXPIRES_AT: Final = 1_798_761_600
OMIT: Final = object()


def _apply(entry: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for name, value in overrides.items():
        if value is OMIT:
            entry.pop(name, None)
        else:
            entry[name] = value
    return entry


def transfer(*, currency: Any = "JPY", amount: Any = "5000", **overrides: Any) -> dict[str, Any]:
    instructed = _apply({}, {"currency": currency, "amount": amount})
    entry = {
        "type": "value_transfer",
        "instructed_amount": instructed,
        "debtor_account": DEBTOR,
        "creditor_account": CREDITOR,
        "remittance_reference": "INV-2026-0001",
    }
    return _apply(entry, overrides)


def link(**overrides: Any) -> dict[str, Any]:
    entry = {
        "type": "account_link",
        "actions": ["link"],
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
    }
    return _apply(entry, overrides)


def funding(*, currency: Any = "JPY", amount: Any = "10000", **overrides: Any) -> dict[str, Any]:
    """A ``funding`` entry as granted (with ``link_id``; ``link_id=OMIT`` for a request)."""
    instructed = _apply({}, {"currency": currency, "amount": amount})
    entry = {
        "type": "funding",
        "direction": "deposit_to_wallet",
        "instructed_amount": instructed,
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
        "link_id": LINK_ID,
    }
    return _apply(entry, overrides)


def standing_funding(
    *,
    currency: Any = "JPY",
    max_text: Any = "50000",
    daily_text: Any = "100000",
    daily_currency: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A ``standing_funding`` entry as a request carries it (no ``link_id``,
    ``standing_authorization_id`` or ``expires_at``; see :func:`granted_standing_funding`).
    ``currency`` sets both amounts' currency unless ``daily_currency`` is given, ``max_text`` and
    ``daily_text`` their amount texts (each may be ``OMIT``); ``max_amount=`` and
    ``daily_amount=`` replace the whole member."""
    entry = {
        "type": "standing_funding",
        "directions": ["deposit_to_wallet"],
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
        "max_amount": _apply({}, {"currency": currency, "amount": max_text}),
        "daily_amount": _apply(
            {},
            {
                "currency": currency if daily_currency is None else daily_currency,
                "amount": daily_text,
            },
        ),
        "valid_days": 90,
    }
    return _apply(entry, overrides)


def granted_standing_funding(**overrides: Any) -> dict[str, Any]:
    """A ``standing_funding`` entry as the service grants it (with ``link_id``,
    ``standing_authorization_id`` and ``expires_at``)."""
    granted = {
        "link_id": LINK_ID,
        "standing_authorization_id": STANDING_ID,
        "expires_at": EXPIRES_AT,
    }
    granted.update(overrides)
    return standing_funding(**granted)
