"""The demo bank's transfer form as a person types it: amounts with grouping commas, full-width
digits, a yen sign or a trailing 円 read as the same Amount; anything looser refused; a memo the
service's remittance_reference cannot carry kept by the bank only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.demo.bank import form
from trustanchor.demo.bank.form import FormError
from trustanchor.domain.money import MAX_MINOR, Amount
from trustanchor.oauth import value_transfer

FULL_WIDTH = str.maketrans({**{str(d): chr(0xFF10 + d) for d in range(10)}, ",": "，", ".": "．"})


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("5000", "JPY", 5000),
        ("5,000", "JPY", 5000),
        ("1,200,000", "JPY", 1200000),
        ("５，０００", "JPY", 5000),
        ("５０００", "JPY", 5000),
        ("5000円", "JPY", 5000),
        ("5,000 円", "JPY", 5000),
        ("５，０００円", "JPY", 5000),
        ("¥5,000", "JPY", 5000),
        ("￥５，０００", "JPY", 5000),
        ("  5,000\u3000", "JPY", 5000),
        ("999", "JPY", 999),
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("1,234.56", "EUR", 123456),
        ("１２．５０", "EUR", 1250),
        ("0.50", "EUR", 50),
    ],
)
def test_accepted_styles(text: str, currency: str, minor: int) -> None:
    assert form.amount(text, currency) == Amount(currency, minor)


@pytest.mark.parametrize(
    ("text", "currency", "reason"),
    [
        ("", "JPY", "bad_amount"),
        ("five thousand", "JPY", "bad_amount"),
        ("5.000", "JPY", "too_many_decimals"),  # a decimal point, not a thousands separator
        ("12,00", "JPY", "bad_amount"),  # a decimal comma? never guessed
        ("1,2000", "JPY", "bad_amount"),
        ("5,000,", "JPY", "bad_amount"),
        (",500", "JPY", "bad_amount"),
        ("5 000", "JPY", "bad_amount"),
        ("-5000", "JPY", "bad_amount"),
        ("+5000", "JPY", "bad_amount"),
        ("5e3", "JPY", "bad_amount"),
        ("0", "JPY", "not_positive"),
        ("0,000", "JPY", "bad_amount"),
        ("007", "JPY", "bad_amount"),
        ("¥5,000円", "JPY", "bad_amount"),  # one currency mark
        ("5000円", "EUR", "bad_amount"),  # 円 only for yen
        ("¥12.50", "EUR", "bad_amount"),
        ("12.505", "EUR", "too_many_decimals"),
        ("٥٠٠٠", "JPY", "bad_amount"),  # Arabic-Indic digits: not one of the accepted styles
        ("5²", "JPY", "bad_amount"),  # no compatibility forms beyond the full-width ones
        ("50\n00", "JPY", "bad_amount"),
        ("1" * 17, "JPY", "too_large"),
        ("5" * 65, "JPY", "bad_amount"),
    ],
)
def test_refused(text: str, currency: str, reason: str) -> None:
    with pytest.raises(FormError) as refused:
        form.amount(text, currency)
    assert refused.value.reason == reason


def _grouped(whole: str) -> str:
    return f"{int(whole):,}"


@st.composite
def amount_texts(draw: st.DrawFn) -> tuple[Amount, str]:
    """An amount and one well-formed way a person could type it."""
    currency = draw(st.sampled_from(["JPY", "EUR", "USD"]))
    minor = draw(st.integers(min_value=1, max_value=MAX_MINOR))
    amount = Amount(currency, minor)
    canonical = str(amount)
    whole, _, fraction = canonical.partition(".")
    if fraction and draw(st.booleans()):
        fraction = fraction.rstrip("0")  # "12.5" for 12.50
    number = _grouped(whole) if draw(st.booleans()) else whole
    if fraction:
        number += "." + fraction
    if draw(st.booleans()):
        number = number.translate(FULL_WIDTH)
    if currency == "JPY":
        mark = draw(st.sampled_from(["", "¥", "￥", "円", " 円"]))
        number = number + mark if "円" in mark else mark + number
    space = st.sampled_from(["", " ", "\u3000", "  "])
    return amount, draw(space) + number + draw(space)


@given(amount_texts())
def test_every_well_formed_text_is_the_same_amount(case: tuple[Amount, str]) -> None:
    amount, text = case
    assert form.amount(text, amount.currency) == amount
    # What the bank then sends is the canonical text, which the service reads as the same.
    detail = value_transfer.validate(
        {
            "type": "value_transfer",
            "instructed_amount": {"currency": amount.currency, "amount": str(amount)},
            "debtor_account": "acc_AAAAAAAAAAAAAAAAAAAAAA",
            "creditor_account": "acc_BBBBBBBBBBBBBBBBBBBBBB",
        }
    )
    assert detail["instructed_amount"]["amount"] == str(amount)


@given(st.text(max_size=20))
def test_anything_else_is_refused_or_an_amount_never_an_exception(text: str) -> None:
    try:
        parsed = form.amount(text, "JPY")
    except FormError as refused:
        assert refused.reason in ("bad_amount", "too_many_decimals", "not_positive", "too_large")
    else:
        assert parsed.currency == "JPY" and parsed.minor > 0


# -- memo -----------------------------------------------------------------------------------------


def test_a_memo_in_the_reference_characters_is_sent_as_typed() -> None:
    memo = form.memo("  INV-2026/001 (rent)  ")
    assert memo == form.Memo("INV-2026/001 (rent)", "INV-2026/001 (rent)")
    assert not memo.kept_by_bank_only


@pytest.mark.parametrize(
    "text",
    [
        "お誕生日おめでとう",
        "家賃 12月分",
        "ＩＮＶ１２３",  # full-width letters: not the reference characters, not rewritten
        "rent & bills",  # & is outside SWIFT x
        "A" * 36,  # longer than a reference
    ],
)
def test_any_other_memo_is_kept_by_the_bank_only(text: str) -> None:
    memo = form.memo(text)
    assert memo is not None
    assert memo.text == text and memo.reference is None and memo.kept_by_bank_only


@pytest.mark.parametrize("text", ["", "   ", "\u3000"])
def test_an_empty_memo_is_none(text: str) -> None:
    assert form.memo(text) is None


@pytest.mark.parametrize("text", ["a\x00b", "line\nbreak", "\u202eevil", "x" * 141])
def test_a_memo_with_controls_or_too_long_is_refused(text: str) -> None:
    with pytest.raises(FormError) as refused:
        form.memo(text)
    assert refused.value.reason == "bad_memo"


@given(st.text(max_size=160))
def test_what_is_sent_is_always_a_reference_the_service_accepts(text: str) -> None:
    try:
        memo = form.memo(text)
    except FormError:
        return
    if memo is not None and memo.reference is not None:
        assert value_transfer.REMITTANCE_REFERENCE.fullmatch(memo.reference)
        assert memo.reference == memo.text
