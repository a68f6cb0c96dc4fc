"""The demo bank's transfer form, read as a person types it (no Flask).

Amounts: people write ``5,000``, ``５，０００``, ``5000円`` or ``¥5,000``, not the narrow decimal
text of the payment instruction (:func:`trustanchor.domain.money.parse_amount`). :func:`amount`
accepts exactly these styles and nothing looser:

- digits, either with no separator at all or with a comma between every group of three from the
  right (``1,200,000``; ``12,00`` and ``1,2000`` are refused: a comma elsewhere may be a decimal
  comma, and guessing would change the amount);
- a ``.`` and decimals, only as many as the currency has (``12.50`` EUR);
- full-width digits, comma, full stop and yen sign (``０``–``９``, ``，``, ``．``, ``￥``) read as
  their ASCII forms (only these characters: no other Unicode digit or compatibility form);
- for JPY, either a leading ``¥`` or a trailing ``円`` (not both);
- spaces (also the ideographic space) around the number and before ``円``.

The result is an :class:`Amount`; its canonical text is what the bank sends.

Memo: the service's ``remittance_reference`` is the SWIFT "x" character set, 1 to 35 characters
(:data:`trustanchor.oauth.value_transfer.REMITTANCE_REFERENCE`). A memo in other characters (a
Japanese memo) is kept by the bank with its own record of the transfer and not sent; a memo that
fits is sent exactly as typed. The bank never sends what the service would refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustanchor.domain.money import Amount, MoneyError, parse_amount
from trustanchor.oauth.value_transfer import REMITTANCE_REFERENCE

MAX_AMOUNT_TEXT = 64
MAX_MEMO = 140
YEN_SIGN = "¥"
YEN_SUFFIX = "円"
_WIDE = str.maketrans(
    {
        **{chr(0xFF10 + d): str(d) for d in range(10)},
        "，": ",",
        "．": ".",
        "￥": YEN_SIGN,
        "\u3000": " ",
    }
)
_AMOUNT_TEXT = re.compile(
    r"(?P<sign>¥)?[ ]*(?P<whole>[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.(?P<fraction>[0-9]+))?"
    r"[ ]*(?P<suffix>円)?"
)
# Characters no memo may hold: controls (C0, DEL, C1), line and paragraph separators,
# bidirectional controls (they can make a memo read as something else).
_FORBIDDEN_IN_MEMO = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class FormError(ValueError):
    """A form value is refused. ``reason``: ``bad_amount`` (not an amount in the accepted
    styles), a reason of :class:`MoneyError` (``too_many_decimals``, ``not_positive``,
    ``too_large``, ``unknown_currency``), or ``bad_memo``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def amount(text: str, currency: str) -> Amount:
    """The amount ``text`` in ``currency``, in one of the accepted styles (module docstring)."""
    if not isinstance(text, str) or len(text) > MAX_AMOUNT_TEXT:
        raise FormError("bad_amount")
    narrow = text.translate(_WIDE).strip()
    match = _AMOUNT_TEXT.fullmatch(narrow)
    if match is None:
        raise FormError("bad_amount")
    if (match["sign"] or match["suffix"]) and currency != "JPY":
        raise FormError("bad_amount")
    if match["sign"] and match["suffix"]:
        raise FormError("bad_amount")
    digits = match["whole"].replace(",", "")
    if match["fraction"] is not None:
        digits += "." + match["fraction"]
    try:
        return parse_amount(digits, currency)
    except MoneyError as exc:
        raise FormError(exc.reason) from exc


@dataclass(frozen=True, slots=True)
class Memo:
    """The person's memo (``text``, as typed, trimmed) and what of it goes to the service:
    ``reference`` is the same text when it fits ``remittance_reference``, else None (the bank
    keeps the memo with its own record only)."""

    text: str
    reference: str | None

    @property
    def kept_by_bank_only(self) -> bool:
        return self.reference is None


def memo(text: str) -> Memo | None:
    """None for an empty memo; :class:`FormError` ``bad_memo`` for one too long or holding
    control characters."""
    trimmed = text.strip()
    if not trimmed:
        return None
    if len(trimmed) > MAX_MEMO or _FORBIDDEN_IN_MEMO.search(trimmed):
        raise FormError("bad_memo")
    fits = REMITTANCE_REFERENCE.fullmatch(trimmed) is not None
    return Memo(trimmed, trimmed if fits else None)


__all__ = ["MAX_MEMO", "FormError", "Memo", "amount", "memo"]
