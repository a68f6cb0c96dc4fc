"""services/payee.py: the payee's registered label as the consent page and the wallet's
transaction data show it — another party's free text, bounded and made visible."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.services.payee import MAX_SHOWN_LABEL, masked_reference, shown_label


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("Refund\nfrom\tyour  bank", "Refund from your bank"),
        ("Taro\u202e knaB", "Taro knaB"),  # a bidi override is dropped, not obeyed
        ("A\u200bB\u2060C", "ABC"),  # zero-width format characters
        ("A\u034fB\u3164C\u2800D\u115fE", "ABCDE"),  # letters that show as nothing
        ("x\u0301\u0302\u0303\u0304\u0305", "x\u0301\u0302"),  # stacked marks cut to two
        ("スズキ タロウ", "スズキ タロウ"),
        ("  padded  ", "padded"),
    ],
)
def test_a_label_is_shown_as_visible_text(label: str, shown: str) -> None:
    assert shown_label(label) == shown


def test_a_long_label_is_clipped_with_an_ellipsis() -> None:
    shown = shown_label("x" * 64)
    assert len(shown) == MAX_SHOWN_LABEL and shown.endswith("…")


@given(st.text(max_size=200))
def test_any_label_is_bounded_and_has_no_control_or_format_characters(label: str) -> None:
    shown = shown_label(label)
    assert len(shown) <= MAX_SHOWN_LABEL
    assert not any(ch in shown for ch in "\n\r\t\u202e\u200b\u2800\u3164")
    assert shown == shown.strip()


def test_an_account_is_referred_to_by_its_last_four_characters() -> None:
    assert masked_reference("acc_ABCDEFGHIJKLMNOP8Q2x") == "…8Q2x"
