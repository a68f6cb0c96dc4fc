"""Money: currencies with their ISO 4217 minor units, and amounts kept as integer minor units.

Amounts arrive as JSON *strings* in plain decimal notation (``"5000"``, ``"12.50"``): a JSON
number would pass through binary floating point in most parsers, and exponents or NaN have no
place in a payment instruction. :func:`parse_amount` is deliberately narrow:

- ASCII digits, at most one ``.``, no sign, no exponent, no whitespace, no leading zeros
  (``"0.50"`` is fine, ``"007"`` is not), no digit separators;
- no more decimals than the currency has (``"1.5"`` JPY is refused, ``"1.5"`` EUR is 1.50 EUR);
- strictly positive and at most :data:`MAX_MINOR` minor units (far above any real transfer, far
  below 2^53 so every JSON implementation carries it exactly).

An :class:`Amount` compares by (currency, minor units); comparing amounts of two currencies is a
programming error and raises. ``str(amount)`` is the canonical text: exactly the currency's number
of decimals (``"5000"`` JPY, ``"12.50"`` EUR).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# ISO 4217 minor units of the currencies this service handles. Extending the list is a code
# change on purpose: a currency's precision must never come from a request.
MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "AUD": 2,
        "CAD": 2,
        "CHF": 2,
        "CNY": 2,
        "EUR": 2,
        "GBP": 2,
        "HKD": 2,
        "JPY": 0,
        "KRW": 0,
        "SEK": 2,
        "SGD": 2,
        "USD": 2,
    }
)
MAX_MINOR = 10**15
MAX_AMOUNT_CHARS = 32
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


class MoneyError(ValueError):
    """An amount or currency was refused. ``reason``: ``unknown_currency``, ``bad_amount``,
    ``too_many_decimals``, ``not_positive`` or ``too_large``."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def currency(value: object) -> str:
    """A supported ISO 4217 code, exactly as listed (upper case)."""
    if not isinstance(value, str) or value not in MINOR_UNITS:
        raise MoneyError("unknown_currency", "currency must be a supported ISO 4217 code")
    return value


@dataclass(frozen=True, slots=True, order=False)
class Amount:
    currency: str
    minor: int  # in the currency's minor unit (yen, cents)

    def __post_init__(self) -> None:
        currency(self.currency)
        if type(self.minor) is not int or not 0 < self.minor <= MAX_MINOR:
            raise MoneyError("bad_amount", "minor units must be a positive integer in range")

    def _same(self, other: Amount) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot compare {self.currency} with {other.currency}")

    def __lt__(self, other: Amount) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Amount) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Amount) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Amount) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def __str__(self) -> str:
        decimals = MINOR_UNITS[self.currency]
        if decimals == 0:
            return str(self.minor)
        units, fraction = divmod(self.minor, 10**decimals)
        return f"{units}.{fraction:0{decimals}d}"


def parse_amount(value: object, currency_code: object) -> Amount:
    """The amount ``value`` (a decimal string) in ``currency_code``; see the module docstring."""
    code = currency(currency_code)
    if not isinstance(value, str):
        raise MoneyError("bad_amount", "amount must be a string of decimal digits")
    if len(value) > MAX_AMOUNT_CHARS or not value.isascii():
        raise MoneyError("bad_amount", "amount is not a plain decimal number")
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise MoneyError("bad_amount", "amount is not a plain decimal number")
    whole, fraction = match.group(1), match.group(2) or ""
    if match.group(2) is not None and fraction == "":  # pragma: no cover - the regex needs 1+
        raise MoneyError("bad_amount", "amount is not a plain decimal number")
    decimals = MINOR_UNITS[code]
    if len(fraction) > decimals:
        raise MoneyError("too_many_decimals", f"{code} has {decimals} decimal places")
    minor = int(whole) * 10**decimals + (int(fraction.ljust(decimals, "0")) if decimals else 0)
    if minor <= 0:
        raise MoneyError("not_positive", "amount must be greater than zero")
    if minor > MAX_MINOR:
        raise MoneyError("too_large", "amount is out of range")
    return Amount(code, minor)
