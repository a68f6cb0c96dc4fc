"""Readers for the members of one ``authorization_details`` entry, shared by the type modules.

Every refusal is an :class:`InvalidAuthorizationDetails` whose description names the member by
its path (``instructed_amount.amount``) and says what was expected. A value sent by the client is
never repeated back: the description is built from our own member names and rules only, except
that an unknown member's *name* is quoted when it is a short plain identifier (so an integrator
sees which one to drop) — anything else is reported as "an unknown member".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from trustanchor.domain.money import MINOR_UNITS, Amount, MoneyError, parse_amount
from trustanchor.oauth.errors import InvalidAuthorizationDetails

ACCOUNT_ID = re.compile(r"acc_[A-Za-z0-9_-]{16,60}")
"""Our opaque account ids (assigned when an intermediary registers the account)."""

STANDING_AUTHORIZATION_ID = re.compile(r"sta_[A-Za-z0-9_-]{16,60}")
"""Our opaque standing authorization ids (assigned when a holder approves a standing_funding)."""

_AMOUNT_MEMBERS = ("currency", "amount")
_QUOTABLE_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")


def exact_members(
    obj: Mapping[str, Any], *, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    """No member outside ``required + optional``, and every required one present.

    Unknown members are checked first and in sorted order, so the same input always gets the
    same description. ``where`` prefixes member names (``""`` for the entry itself)."""
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        raise InvalidAuthorizationDetails(f"{_describe_unknown(unknown[0], where)} is not allowed")
    for name in required:
        if name not in obj:
            raise InvalidAuthorizationDetails(f"{where}{name} is required")


def _describe_unknown(name: str, where: str) -> str:
    if _QUOTABLE_NAME.fullmatch(name):
        return f"unknown member {where}{name}"
    return f"an unknown member{' of ' + where.rstrip('.') if where else ''}"


def object_member(obj: Mapping[str, Any], name: str, *, where: str = "") -> Mapping[str, Any]:
    value = obj[name]
    if not isinstance(value, dict):
        raise InvalidAuthorizationDetails(f"{where}{name} must be an object")
    return value


def string_member(
    obj: Mapping[str, Any], name: str, pattern: re.Pattern[str], expected: str, *, where: str = ""
) -> str:
    """The member as a string matching ``pattern`` in full; ``expected`` says what that means."""
    value = obj[name]
    if not isinstance(value, str):
        raise InvalidAuthorizationDetails(f"{where}{name} must be a string")
    if not pattern.fullmatch(value):
        raise InvalidAuthorizationDetails(f"{where}{name} must be {expected}")
    return value


def account_member(obj: Mapping[str, Any], name: str) -> str:
    return string_member(obj, name, ACCOUNT_ID, "an account id (acc_…)")


def amount_member(obj: Mapping[str, Any], name: str) -> Amount:
    """The member ``name`` as an amount object ``{"currency": …, "amount": "…"}``: exactly those
    two members, the amount a decimal *string* read by
    :func:`trustanchor.domain.money.parse_amount`. Descriptions name ``<name>.currency`` and
    ``<name>.amount``."""
    where = f"{name}."
    value = object_member(obj, name)
    exact_members(value, where=where, required=_AMOUNT_MEMBERS)
    if not isinstance(value["amount"], str):
        # A JSON number would have passed through binary floating point already.
        raise InvalidAuthorizationDetails(f"{name}.amount must be a string")
    try:
        return parse_amount(value["amount"], value["currency"])
    except MoneyError as exc:
        raise InvalidAuthorizationDetails(_money_problem(exc, name, value["currency"])) from exc


def _money_problem(exc: MoneyError, name: str, currency: Any) -> str:
    """Our own words for each refusal reason of domain/money.py (no client value repeated,
    except a currency code once it is known to be one of ours)."""
    if exc.reason == "unknown_currency":
        return f"{name}.currency must be a supported ISO 4217 code"
    if exc.reason == "too_many_decimals":
        return f"{name}.amount has more decimals than {currency} allows ({MINOR_UNITS[currency]})"
    if exc.reason == "not_positive":
        return f"{name}.amount must be greater than zero"
    if exc.reason == "too_large":
        return f"{name}.amount is out of range"
    return (
        f"{name}.amount must be a string of decimal digits with an optional "
        "fraction (no sign, exponent, spaces or leading zeros)"
    )


def single_entry(details: Sequence[Mapping[str, Any]], type_name: str) -> Mapping[str, Any] | None:
    """The one entry of ``type_name`` among ``details``, if any; two are refused (fail closed,
    even though the structural validator already allows at most one of each type)."""
    found = [entry for entry in details if entry.get("type") == type_name]
    if len(found) > 1:
        raise InvalidAuthorizationDetails(f"more than one {type_name} entry")
    return found[0] if found else None
